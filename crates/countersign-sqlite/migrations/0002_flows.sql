-- Login flows and ceremonies in progress, keyed by the SHA-256 (hex) of
-- their token.
CREATE TABLE cs_flows (
    key         TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    user_id     TEXT,
    state       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_flows_expires ON cs_flows (expires_at);
