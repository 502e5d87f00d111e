-- Audit log: append-only, hash-chained per workspace; and revocable embed tokens.

-- One row per entry. `seq` numbers a workspace's entries 1, 2, 3 … without gaps;
-- hash = sha256(prev_hash || canonical entry) (services/audit/chain.py), prev_hash of seq 1
-- is 32 zero bytes. No foreign key to workspaces: the log outlives what it describes.
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    workspace_id   bigint NOT NULL,
    seq            bigint NOT NULL CHECK (seq > 0),
    created_at     timestamptz NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    target         text NOT NULL DEFAULT '',
    outcome        text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    request_id     text NOT NULL DEFAULT '',
    source_address text NOT NULL DEFAULT '',
    prev_hash      bytea NOT NULL,
    hash           bytea NOT NULL,
    UNIQUE (workspace_id, seq)
);

CREATE INDEX audit_log_time ON audit_log (workspace_id, created_at);
CREATE INDEX audit_log_actor ON audit_log (workspace_id, actor, seq);
CREATE INDEX audit_log_action ON audit_log (workspace_id, action, seq);

-- The last entry of each workspace's chain; appends lock this row, so they are serialized per
-- workspace, and `audit verify` compares it with the last entry to notice removals at the tail.
CREATE TABLE audit_chain_heads (
    workspace_id bigint PRIMARY KEY,
    seq          bigint NOT NULL,
    hash         bytea NOT NULL
);

-- Entries are never updated or deleted by the application. A superuser can still bypass this
-- (session_replication_role = replica, or disabling the trigger); `audit verify` then finds it.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Embed tokens: the signed token carries the row's id; a token is honoured only while its row
-- is neither revoked nor expired. link_id NULL: the whole workspace.
CREATE TABLE embed_tokens (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    link_id      bigint,
    -- The widget shows at most the last max_days days.
    max_days     integer NOT NULL CHECK (max_days > 0),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    FOREIGN KEY (link_id, workspace_id) REFERENCES links (id, workspace_id) ON DELETE CASCADE
);

CREATE INDEX embed_tokens_workspace ON embed_tokens (workspace_id, id);
