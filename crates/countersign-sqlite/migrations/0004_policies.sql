-- Each tenant's authorization model (Cedar schema and policies), saved by
-- compare-and-save on a version column.
CREATE TABLE cs_policy_documents (
    tenant_id   TEXT PRIMARY KEY NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    schema      TEXT NOT NULL,
    policies    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
