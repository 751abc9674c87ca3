-- The audit log: who deployed, changed a credential or access, or started runs.
--
-- project_id has no foreign key: the events of a deleted project, its deletion
-- included, must outlive it. Events about users and tokens have no project.
-- details never holds a credential value, only names.

CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    project_id  uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    subject     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_by_project ON audit_events (project_id, at DESC);

ALTER TABLE credentials ADD COLUMN updated_by text;
