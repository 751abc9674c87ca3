-- Passwords for signing in to the console, and the console's sessions.

-- An Argon2id hash in PHC string form; NULL for a user who signs in with
-- API tokens only.
ALTER TABLE users ADD COLUMN password_hash text;

-- The cookie carries a random session id; only its SHA-256 hash is kept, so a
-- leaked table gives no usable session. The CSRF token is not a secret from
-- the signed-in browser, only from other sites.
CREATE TABLE console_sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- Consecutive failed password sign-ins per username, known or not, so that
-- guessing slows down after a few tries. A successful sign-in clears the row.
CREATE TABLE sign_in_failures (
    username        text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL
);
CREATE INDEX sign_in_failures_by_time ON sign_in_failures (last_failure_at);
