-- Tenancy, access and link metadata.
CREATE TABLE plans (
    code                text PRIMARY KEY,
    name                text NOT NULL,
    max_days            integer NOT NULL CHECK (max_days > 0),
    features            text[] NOT NULL DEFAULT '{}',
    monthly_events      bigint NOT NULL,
    requests_per_minute integer NOT NULL
);

INSERT INTO plans (code, name, max_days, features, monthly_events, requests_per_minute) VALUES
    ('free', 'Free', 30, '{}', 10000, 60),
    ('pro', 'Pro', 365, '{device_analytics}', 1000000, 600),
    ('business', 'Business', 1095, '{device_analytics,deep_links}', 10000000, 3000),
    ('enterprise', 'Enterprise', 3650, '{device_analytics,deep_links}', 1000000000, 20000);

CREATE TABLE currencies (
    code        char(3) PRIMARY KEY,
    name        text NOT NULL,
    minor_units smallint NOT NULL CHECK (minor_units BETWEEN 0 AND 4)
);

INSERT INTO currencies (code, name, minor_units) VALUES
    ('USD', 'US Dollar', 2), ('EUR', 'Euro', 2), ('GBP', 'Pound Sterling', 2),
    ('JPY', 'Yen', 0), ('CAD', 'Canadian Dollar', 2), ('AUD', 'Australian Dollar', 2),
    ('CHF', 'Swiss Franc', 2), ('INR', 'Indian Rupee', 2), ('BRL', 'Brazilian Real', 2),
    ('SEK', 'Swedish Krona', 2);

-- Value of one major unit of `currency` in USD, per day; the latest row on or before a day applies.
CREATE TABLE fx_rates (
    currency     char(3) NOT NULL REFERENCES currencies (code),
    rate_date    date NOT NULL,
    usd_per_unit numeric(20, 10) NOT NULL CHECK (usd_per_unit > 0),
    PRIMARY KEY (currency, rate_date)
);

INSERT INTO fx_rates (currency, rate_date, usd_per_unit) VALUES
    ('USD', '2000-01-01', 1), ('EUR', '2000-01-01', 1.08), ('GBP', '2000-01-01', 1.27),
    ('JPY', '2000-01-01', 0.0067), ('CAD', '2000-01-01', 0.73), ('AUD', '2000-01-01', 0.66),
    ('CHF', '2000-01-01', 1.13), ('INR', '2000-01-01', 0.012), ('BRL', '2000-01-01', 0.18),
    ('SEK', '2000-01-01', 0.095);

CREATE TABLE organizations (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspaces (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id),
    name             text NOT NULL,
    slug             text NOT NULL UNIQUE,
    plan             text NOT NULL DEFAULT 'free' REFERENCES plans (code),
    default_currency char(3) NOT NULL DEFAULT 'USD' REFERENCES currencies (code),
    timezone         text NOT NULL DEFAULT 'UTC',
    -- Features granted beyond the plan's.
    extra_features   text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, workspace_id)
);

-- Only a SHA-256 of the key is stored; `prefix` identifies a key in listings.
CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE campaigns (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name),
    UNIQUE (id, workspace_id)
);

CREATE TABLE budgets (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL,
    campaign_id  bigint NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency     char(3) NOT NULL REFERENCES currencies (code),
    -- What one click costs the campaign, in minor units of `currency`.
    cost_per_click_minor bigint NOT NULL DEFAULT 0 CHECK (cost_per_click_minor >= 0),
    period_start date NOT NULL,
    period_end   date NOT NULL CHECK (period_end >= period_start),
    FOREIGN KEY (campaign_id, workspace_id) REFERENCES campaigns (id, workspace_id) ON DELETE CASCADE
);

CREATE TABLE folders (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name),
    UNIQUE (id, workspace_id)
);

CREATE TABLE tags (
    id           bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    color        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name),
    UNIQUE (id, workspace_id)
);

-- Composite foreign keys keep a link's folder and campaign inside its own workspace.
CREATE TABLE links (
    id              bigserial PRIMARY KEY,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    domain          text NOT NULL,
    slug            text NOT NULL,
    destination_url text NOT NULL,
    folder_id       bigint,
    campaign_id     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz,
    UNIQUE (domain, slug),
    UNIQUE (id, workspace_id),
    FOREIGN KEY (folder_id, workspace_id) REFERENCES folders (id, workspace_id),
    FOREIGN KEY (campaign_id, workspace_id) REFERENCES campaigns (id, workspace_id)
);

CREATE INDEX links_workspace ON links (workspace_id);
CREATE INDEX links_campaign ON links (workspace_id, campaign_id);
CREATE INDEX links_folder ON links (workspace_id, folder_id);

CREATE TABLE link_tags (
    link_id      bigint NOT NULL,
    tag_id       bigint NOT NULL,
    workspace_id bigint NOT NULL,
    PRIMARY KEY (link_id, tag_id),
    FOREIGN KEY (link_id, workspace_id) REFERENCES links (id, workspace_id) ON DELETE CASCADE,
    FOREIGN KEY (tag_id, workspace_id) REFERENCES tags (id, workspace_id) ON DELETE CASCADE
);

CREATE INDEX link_tags_tag ON link_tags (workspace_id, tag_id);

-- Redirect rules of a link, tried by priority; a click records the rule (and condition) that matched.
CREATE TABLE link_rules (
    id              bigserial PRIMARY KEY,
    link_id         bigint NOT NULL,
    workspace_id    bigint NOT NULL,
    name            text NOT NULL,
    destination_url text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    UNIQUE (id, workspace_id),
    FOREIGN KEY (link_id, workspace_id) REFERENCES links (id, workspace_id) ON DELETE CASCADE
);

CREATE TABLE rule_conditions (
    id           bigserial PRIMARY KEY,
    rule_id      bigint NOT NULL,
    workspace_id bigint NOT NULL,
    field        text NOT NULL,
    operator     text NOT NULL CHECK (operator IN ('eq', 'neq', 'in', 'not_in', 'contains')),
    value        text NOT NULL,
    FOREIGN KEY (rule_id, workspace_id) REFERENCES link_rules (id, workspace_id) ON DELETE CASCADE
);
