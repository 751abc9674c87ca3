-- An administrator's request to stop a run in progress. The runner holding
-- the run's claim kills it and reports exit code 6; if no runner answers, the
-- scheduler's lost-run check reports the run aborted instead of lost, so it
-- is not retried.
CREATE TABLE run_aborts (
    run_id       uuid PRIMARY KEY,
    project_id   uuid NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
