-- Full-text search and filter indexes for the activity history and the inbox.
--
-- Each searchable table keeps its words in a stored generated column: a page
-- of a common word is found by walking the newest rows and testing each, and
-- testing a stored tsvector costs a fraction of computing one from the jsonb.
-- The words are 'simple' lexemes (lower-cased, unstemmed): what people look
-- for here are ids, names, places and URLs more than prose.

-- A run's words: its log lines' text and its error.
ALTER TABLE runs ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    jsonb_to_tsvector(
        'simple', jsonb_path_query_array(logs, '$[*].message'), '["string"]'
    )
    || to_tsvector('simple', coalesce(error, ''))
) STORED;

-- A message's words: its body's string and number values. Keys are left out
-- because every message of a form has the same ones.
ALTER TABLE messages ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    jsonb_to_tsvector('simple', body, '["string", "numeric"]')
) STORED;

CREATE INDEX runs_search ON runs USING gin (search_document);
CREATE INDEX messages_search ON messages USING gin (search_document);

-- With the default target only words in about 1 row in 100 get a frequency of
-- their own and every rarer word (a patient id, a name) is guessed at half
-- that, which makes reading a GIN index for a handful of rows look dear.
ALTER TABLE runs ALTER COLUMN search_document SET STATISTICS 1000;
ALTER TABLE messages ALTER COLUMN search_document SET STATISTICS 1000;

-- The job and status filters walk these newest first, as the unfiltered
-- history walks runs_by_project.
CREATE INDEX runs_by_project_job ON runs (project_id, job_name, created_at DESC, id DESC);
CREATE INDEX runs_by_project_status ON runs (project_id, status, created_at DESC, id DESC);
