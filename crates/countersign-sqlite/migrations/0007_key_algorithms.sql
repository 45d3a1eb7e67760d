-- The JWS algorithm of each signing key (EdDSA, ES256 or RS256). Keys
-- written before this migration are Ed25519 keys: they read as 'EdDSA'.
ALTER TABLE cs_signing_keys ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'EdDSA'
    CHECK (algorithm IN ('EdDSA', 'ES256', 'RS256'));
