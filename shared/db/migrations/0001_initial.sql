-- Projects as deployed from project.yaml, and the history derived from events.

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    inbox_id    uuid NOT NULL UNIQUE,
    revision    bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE triggers (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('message', 'cron', 'success', 'failure')),
    criteria    jsonb,
    exclusion   jsonb,
    cron        text,
    upstream_job text,
    UNIQUE (project_id, name)
);

CREATE TABLE jobs (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    trigger_name text NOT NULL,
    adaptor     text NOT NULL,
    credential  text,
    expression  text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    version     text NOT NULL,
    UNIQUE (project_id, name)
);

-- One row per deploy; its sequence is the catalog revision services poll.
CREATE TABLE deployments (
    id          bigserial PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    deployed_at timestamptz NOT NULL DEFAULT now(),
    document    text NOT NULL
);

CREATE TABLE messages (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL,
    received_at  timestamptz NOT NULL,
    content_type text NOT NULL,
    headers      jsonb NOT NULL,
    body         jsonb NOT NULL,
    raw_body     text
);
CREATE INDEX messages_by_project ON messages (project_id, received_at DESC, id DESC);

CREATE TABLE runs (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL,
    job_id       uuid NOT NULL,
    job_name     text NOT NULL,
    trigger_id   uuid,
    trigger_kind text NOT NULL,
    message_id   uuid,
    status       text NOT NULL,
    exit_code    integer,
    started_at   timestamptz,
    finished_at  timestamptz,
    input_state  jsonb,
    final_state  jsonb,
    logs         jsonb NOT NULL DEFAULT '[]'::jsonb,
    error        text,
    runner       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_by_message ON runs (message_id, job_id);
CREATE INDEX runs_by_project ON runs (project_id, created_at DESC, id DESC);

-- The derived job state of each message/job pair: its last run by finish
-- time, then start time, then id.
CREATE TABLE job_states (
    message_id  uuid NOT NULL,
    job_id      uuid NOT NULL,
    project_id  uuid NOT NULL,
    job_name    text NOT NULL,
    run_id      uuid NOT NULL,
    status      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, job_id)
);
