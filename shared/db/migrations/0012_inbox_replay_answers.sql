-- A signed request sent again under a webhook id already accepted is answered
-- as the first delivery was: with its message id once that message is stored.
ALTER TABLE inbox_replays ADD COLUMN message_id uuid, ADD COLUMN stored_at timestamptz;
