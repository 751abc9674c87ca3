-- Runs that used up their retries, for an operator to look at and send again.

CREATE TABLE dead_letters (
    run_id      uuid PRIMARY KEY,
    project_id  uuid NOT NULL,
    job_id      uuid NOT NULL,
    job_name    text NOT NULL,
    message_id  uuid,
    trigger     jsonb NOT NULL,
    input_state jsonb NOT NULL,
    exit_code   integer NOT NULL,
    error       text,
    attempts    integer NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT now(),
    redriven_at timestamptz,
    redriven_as uuid
);
CREATE INDEX dead_letters_waiting ON dead_letters (project_id, dead_at DESC)
    WHERE redriven_at IS NULL;
