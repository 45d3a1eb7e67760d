-- Login flows and ceremonies in progress, keyed by the SHA-256 (hex) of
-- their token. A user's flows go with the user.
CREATE TABLE cs_flows (
    key         text        COLLATE "C" PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    user_id     uuid,
    state       jsonb       NOT NULL,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX cs_flows_expires ON cs_flows (expires_at);
