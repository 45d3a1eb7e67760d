-- Pending one-time proofs (address confirmations, password resets) and
-- identities at other issuers linked to local accounts.
--
-- A verification is at most one per (tenant, user, purpose), kept only as
-- the hash of its secret (hex); its secret is found by
-- (tenant, purpose, secret_hash) for tokens that name no user. A linked
-- identity is at most one per (tenant, issuer, subject): the primary key
-- is what makes concurrent first sign-ins with one identity, on any number
-- of nodes, end with one account. Both belong to a user by
-- (tenant_id, user_id) and go with it (ON DELETE CASCADE).

CREATE TABLE cs_verifications (
    tenant_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    purpose     text        COLLATE "C" NOT NULL,
    secret_hash text        COLLATE "C" NOT NULL,
    payload     text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    sends       bigint      NOT NULL CHECK (sends >= 0),
    failures    bigint      NOT NULL CHECK (failures >= 0),
    PRIMARY KEY (tenant_id, user_id, purpose),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX cs_verifications_hash ON cs_verifications (tenant_id, purpose, secret_hash);
CREATE INDEX cs_verifications_expires ON cs_verifications (expires_at);

CREATE TABLE cs_linked_identities (
    tenant_id uuid        NOT NULL,
    issuer    text        COLLATE "C" NOT NULL,
    subject   text        COLLATE "C" NOT NULL,
    user_id   uuid        NOT NULL,
    email     text,
    linked_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, issuer, subject),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX cs_linked_identities_user ON cs_linked_identities (tenant_id, user_id);
