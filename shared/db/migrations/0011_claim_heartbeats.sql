-- A runner renews its open claims on a heartbeat. A claim whose runner stopped
-- renewing it, on a run whose start was never recorded, may be taken over by
-- the runner that receives the run's request again.
ALTER TABLE run_claims ADD COLUMN heartbeat_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX run_claims_open_by_runner ON run_claims (runner) WHERE finished_at IS NULL;
