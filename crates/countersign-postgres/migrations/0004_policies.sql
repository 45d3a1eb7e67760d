-- Each tenant's authorization model (Cedar schema and policies), saved by
-- compare-and-save on its version. It goes with the tenant.
CREATE TABLE cs_policy_documents (
    tenant_id  uuid        PRIMARY KEY REFERENCES cs_tenants (id) ON DELETE CASCADE,
    schema     text        NOT NULL,
    policies   text        NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    updated_at timestamptz NOT NULL
);
