-- User profiles: a tier (NULL: none) and the tenant-declared attributes
-- (a JSON object, checked against the tenant's profile schema by the
-- service). Users written before this migration have no tier and no
-- attributes.
ALTER TABLE cs_users ADD COLUMN tier text COLLATE "C";
ALTER TABLE cs_users ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'::jsonb;
-- Administrators' searches by tier page by id within a tenant.
CREATE INDEX cs_users_tenant_tier ON cs_users (tenant_id, tier, id);
