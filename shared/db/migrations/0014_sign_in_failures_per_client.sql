-- Failed console sign-ins are counted per username and client address, so
-- that guessing from one address does not lock the username's owner out; the
-- sum over addresses still locks it, with a higher allowance. The counts are
-- transient (a day at most), so the old per-username rows are not carried over.
DROP TABLE sign_in_failures;
CREATE TABLE sign_in_failures (
    username        text NOT NULL,
    client          text NOT NULL,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    PRIMARY KEY (username, client)
);
CREATE INDEX sign_in_failures_by_time ON sign_in_failures (last_failure_at);
