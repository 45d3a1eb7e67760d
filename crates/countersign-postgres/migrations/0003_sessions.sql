-- Sessions, refresh-token families and JWT signing keys.
--
-- Tokens are stored only as the SHA-256 (hex) of their value. Durations are
-- bigint microseconds (the precision of timestamptz). A user's sessions and
-- refresh families go with the user; a tenant's signing keys with the
-- tenant.

-- Keyed by the token hash: validation, the hot path, is one primary-key
-- probe. Renewal rewrites expires_at (indexed through cs_sessions_expiry),
-- so renewals are not HOT updates: they happen at most once per
-- (idle_timeout - renew_within) per session.
CREATE TABLE cs_sessions (
    key                 text        COLLATE "C" PRIMARY KEY,
    id                  uuid        NOT NULL UNIQUE,
    tenant_id           uuid        NOT NULL,
    user_id             uuid        NOT NULL,
    auth                jsonb       NOT NULL,
    ip                  text,
    user_agent          text,
    created_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    idle_timeout_us     bigint      NOT NULL CHECK (idle_timeout_us >= 0),
    renew_within_us     bigint      NOT NULL CHECK (renew_within_us >= 0),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX cs_sessions_user ON cs_sessions (tenant_id, user_id, created_at DESC, id DESC);
-- A session is dead once either deadline has passed: the cleanup's index.
CREATE INDEX cs_sessions_expiry ON cs_sessions (LEAST(expires_at, absolute_expires_at));

-- One row per login with refresh tokens. session_id has no foreign key: a
-- family outlives its session (revoked) until the cleanup removes it.
-- Rotations touch no indexed column: with room left on the page
-- (fillfactor) they are HOT updates.
CREATE TABLE cs_refresh_families (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    session_id     uuid        NOT NULL,
    current_hash   text        COLLATE "C" NOT NULL,
    previous_hash  text        COLLATE "C",
    generation     bigint      NOT NULL CHECK (generation >= 0),
    rotated_at     timestamptz,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    reuse_grace_us bigint      NOT NULL CHECK (reuse_grace_us >= 0),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
) WITH (fillfactor = 70);
CREATE INDEX cs_refresh_families_session ON cs_refresh_families (session_id);
CREATE INDEX cs_refresh_families_user ON cs_refresh_families (tenant_id, user_id);
CREATE INDEX cs_refresh_families_expires ON cs_refresh_families (expires_at);
CREATE INDEX cs_refresh_families_revoked ON cs_refresh_families (revoked_at)
    WHERE revoked_at IS NOT NULL;

-- Every token ever issued in a family (presenting an old one is reuse),
-- so a presented token finds its family by one primary-key probe.
CREATE TABLE cs_refresh_tokens (
    hash      text COLLATE "C" PRIMARY KEY,
    family_id uuid NOT NULL REFERENCES cs_refresh_families (id) ON DELETE CASCADE
);
CREATE INDEX cs_refresh_tokens_family ON cs_refresh_tokens (family_id);

CREATE TABLE cs_signing_keys (
    tenant_id    uuid        NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    kid          text        COLLATE "C" NOT NULL,
    private_key  bytea       NOT NULL,
    public_key   bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    retired_at   timestamptz,
    verify_until timestamptz,
    PRIMARY KEY (tenant_id, kid)
);
CREATE INDEX cs_signing_keys_verify_until ON cs_signing_keys (verify_until)
    WHERE verify_until IS NOT NULL;
