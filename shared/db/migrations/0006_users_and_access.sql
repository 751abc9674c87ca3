-- Users, their API tokens, and who may do what in which project.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    username    text NOT NULL UNIQUE,
    is_admin    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A token is "ofn_<id>_<secret>"; only a hash of the whole token is kept.
CREATE TABLE api_tokens (
    id           text PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

CREATE TABLE project_members (
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_by_user ON project_members (user_id);
CREATE UNIQUE INDEX project_members_one_owner ON project_members (project_id)
    WHERE role = 'owner';

-- Deleting a project must still move the deployment counter that the gateway
-- and dispatcher poll, so it is recorded as a deployment row without a project.
ALTER TABLE deployments
    ALTER COLUMN project_id DROP NOT NULL,
    DROP CONSTRAINT deployments_project_id_fkey,
    ADD CONSTRAINT deployments_project_id_fkey FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE SET NULL;
