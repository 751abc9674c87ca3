-- Which credentials a project has (their bodies are in Vault only), and which
-- runner has taken which run, so that a redelivered run request is not run twice.

CREATE TABLE credentials (
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    fields      text[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, name)
);

CREATE TABLE run_claims (
    run_id      uuid PRIMARY KEY,
    runner      text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- The adaptor and version a run used.
ALTER TABLE runs ADD COLUMN adaptor text, ADD COLUMN adaptor_version text;
