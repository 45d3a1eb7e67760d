-- Sessions (keyed by the SHA-256 hex of their token), refresh-token
-- families with every token hash they issued, and JWT signing keys.
-- Durations are INTEGER microseconds.
CREATE TABLE cs_sessions (
    key                  TEXT PRIMARY KEY NOT NULL,
    id                   TEXT NOT NULL UNIQUE,
    tenant_id            TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    auth                 TEXT NOT NULL,
    ip                   TEXT,
    user_agent           TEXT,
    created_at           INTEGER NOT NULL,
    last_seen_at         INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    absolute_expires_at  INTEGER NOT NULL,
    idle_timeout         INTEGER NOT NULL,
    renew_within         INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_sessions_user ON cs_sessions (tenant_id, user_id);
CREATE INDEX cs_sessions_expires ON cs_sessions (expires_at);

CREATE TABLE cs_refresh_families (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    current      TEXT NOT NULL,
    previous     TEXT,
    generation   INTEGER NOT NULL,
    rotated_at   INTEGER,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    reuse_grace  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_refresh_families_session ON cs_refresh_families (session_id);

CREATE TABLE cs_refresh_tokens (
    hash       TEXT PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL REFERENCES cs_refresh_families (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_refresh_tokens_family ON cs_refresh_tokens (family_id);

CREATE TABLE cs_signing_keys (
    tenant_id     TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    kid           TEXT NOT NULL,
    private_key   BLOB NOT NULL,
    public_key    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    verify_until  INTEGER,
    PRIMARY KEY (tenant_id, kid)
) STRICT;
