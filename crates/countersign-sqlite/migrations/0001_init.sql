-- countersign SQLite schema, version 1.
-- Ids are lowercase hyphenated UUID text; times are INTEGER microseconds
-- since the Unix epoch (UTC); JSON is TEXT.

CREATE TABLE cs_tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE cs_users (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES cs_tenants (id),
    identifier     TEXT NOT NULL,
    display_name   TEXT,
    email          TEXT,
    state          TEXT NOT NULL,
    state_reason   TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER,
    UNIQUE (tenant_id, identifier),
    UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE cs_failures (
    tenant_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    count         INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE cs_audit_events (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL,
    user_id     TEXT,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    factor      TEXT,
    ip          TEXT,
    user_agent  TEXT,
    at          INTEGER NOT NULL,
    detail      TEXT
) STRICT;
CREATE INDEX cs_audit_events_tenant_at ON cs_audit_events (tenant_id, at DESC, id DESC);
CREATE INDEX cs_audit_events_tenant_user ON cs_audit_events (tenant_id, user_id, at DESC);

CREATE TABLE cs_tenant_factors (
    tenant_id  TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    config     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) STRICT;

CREATE TABLE cs_user_factors (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    config     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, kind),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE cs_tenant_methods (
    tenant_id  TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    method     TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

CREATE TABLE cs_user_methods (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    method     TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE cs_password_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    phc        TEXT NOT NULL,
    at         INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_password_history_user ON cs_password_history (tenant_id, user_id, id DESC);
