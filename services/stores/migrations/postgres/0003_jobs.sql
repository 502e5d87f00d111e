-- Asynchronous jobs run by the arq workers: exports and batch queries.

-- One export: what was asked (the resolved query in `spec`), where it stands, where the file is.
-- `request_key` identifies an identical request: while one is queued or running, asking again
-- returns it instead of starting another. `attempt` counts the worker runs; a run finishes the
-- job only if no later run has claimed it.
CREATE TABLE export_jobs (
    id             text PRIMARY KEY,
    workspace_id   bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    actor          text NOT NULL,
    request_key    text NOT NULL,
    dataset        text NOT NULL,
    format         text NOT NULL,
    columns        text[] NOT NULL,
    spec           jsonb NOT NULL,
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    rows_written   bigint NOT NULL DEFAULT 0,
    rows_estimated bigint NOT NULL DEFAULT 0,
    size_bytes     bigint NOT NULL DEFAULT 0,
    file_name      text NOT NULL DEFAULT '',
    error          text NOT NULL DEFAULT '',
    attempt        integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    heartbeat_at   timestamptz,
    finished_at    timestamptz,
    expires_at     timestamptz
);

CREATE INDEX export_jobs_listing ON export_jobs (workspace_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX export_jobs_in_flight ON export_jobs (workspace_id, request_key)
    WHERE status IN ('queued', 'running');
CREATE INDEX export_jobs_expiry ON export_jobs (expires_at) WHERE file_name <> '';

-- One batch: its items (route, params) and, once run, one result or error per item. The
-- principal is the caller as resolved when the batch was accepted; the worker acts as it.
CREATE TABLE batch_jobs (
    id           text PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    actor        text NOT NULL,
    request_key  text NOT NULL,
    principal    jsonb NOT NULL,
    items        jsonb NOT NULL,
    results      jsonb,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error        text NOT NULL DEFAULT '',
    attempt      integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz,
    finished_at  timestamptz
);

CREATE INDEX batch_jobs_listing ON batch_jobs (workspace_id, created_at DESC);
CREATE UNIQUE INDEX batch_jobs_in_flight ON batch_jobs (workspace_id, request_key)
    WHERE status IN ('queued', 'running');
