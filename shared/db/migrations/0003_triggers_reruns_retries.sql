-- What a run came from, the 10-second gate, cron schedules and delayed runs.

ALTER TABLE runs
    ADD COLUMN origin text NOT NULL DEFAULT 'message',
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN chain_depth integer NOT NULL DEFAULT 0;
CREATE INDEX runs_by_job ON runs (job_id, finished_at DESC) WHERE status = 'succeeded';

ALTER TABLE run_claims ADD COLUMN lost boolean NOT NULL DEFAULT false;
CREATE INDEX run_claims_open ON run_claims (claimed_at) WHERE finished_at IS NULL;

-- A message/job pair creates at most one run per window (10 s by default).
CREATE TABLE run_gate (
    message_id  uuid NOT NULL,
    job_id      uuid NOT NULL,
    run_id      uuid NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, job_id)
);

ALTER TABLE triggers
    ADD COLUMN missed text NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'run_once'));
ALTER TABLE projects ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
ALTER TABLE jobs ADD COLUMN retries integer NOT NULL DEFAULT 0;

-- The last tick each cron trigger fired; a row is locked by the scheduler
-- replica firing it.
CREATE TABLE cron_state (
    trigger_id  uuid PRIMARY KEY REFERENCES triggers (id) ON DELETE CASCADE,
    last_tick   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Run requests to send later: retries waiting for their back-off.
CREATE TABLE scheduled_runs (
    run_id      uuid PRIMARY KEY,
    due_at      timestamptz NOT NULL,
    request     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduled_runs_due ON scheduled_runs (due_at);
