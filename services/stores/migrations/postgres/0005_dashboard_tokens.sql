-- Dashboard links: signed, expiring, revocable read-only grants to one workspace's dashboard.
-- Only this row is stored; the signed token (which carries the row's id) is shown once.
CREATE TABLE dashboard_tokens (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Who or what the link is for, as its creator wrote it.
    label        text NOT NULL DEFAULT '',
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

CREATE INDEX dashboard_tokens_workspace ON dashboard_tokens (workspace_id, id);
