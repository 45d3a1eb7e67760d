-- The JWS algorithm of each signing key (EdDSA, ES256 or RS256). Keys
-- written before this migration are Ed25519 keys: they read as 'EdDSA'.
-- A constant default adds the column without rewriting the table.
ALTER TABLE cs_signing_keys ADD COLUMN algorithm text NOT NULL DEFAULT 'EdDSA'
    CONSTRAINT cs_signing_keys_algorithm CHECK (algorithm IN ('EdDSA', 'ES256', 'RS256'));
