-- Pending one-time proofs (address confirmations, password resets), at
-- most one per (tenant, user, purpose), kept only as the hash of their
-- secret; and identities at other issuers linked to local accounts, at
-- most one link per (tenant, issuer, subject). Both belong to a user and
-- go with it (ON DELETE CASCADE), as every user-owned table does.
CREATE TABLE cs_verifications (
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    payload      TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    sends        INTEGER NOT NULL CHECK (sends >= 0),
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    PRIMARY KEY (tenant_id, user_id, purpose),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_verifications_hash ON cs_verifications (tenant_id, purpose, secret_hash);
CREATE INDEX cs_verifications_expires ON cs_verifications (expires_at);

CREATE TABLE cs_linked_identities (
    tenant_id  TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    email      TEXT,
    linked_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, issuer, subject),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_linked_identities_user ON cs_linked_identities (tenant_id, user_id);
