-- Each tenant's RBAC model: services, roles and permissions (one table
-- per kind, so grants and assignments can reference them), the grants and
-- assignments naming them, and a per-tenant version that every change
-- bumps (no row: version 0). Deleting a name or a user removes what names
-- it by cascade. A role grant's service is NULL when it is not limited to
-- one service.
CREATE TABLE cs_rbac_versions (
    tenant_id  TEXT PRIMARY KEY NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL
) STRICT;

CREATE TABLE cs_rbac_services (
    tenant_id  TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

CREATE TABLE cs_rbac_roles (
    tenant_id  TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

CREATE TABLE cs_rbac_permissions (
    tenant_id  TEXT NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

CREATE TABLE cs_rbac_role_grants (
    tenant_id   TEXT NOT NULL,
    role        TEXT NOT NULL,
    permission  TEXT NOT NULL,
    service     TEXT,
    FOREIGN KEY (tenant_id, role) REFERENCES cs_rbac_roles (tenant_id, name) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, permission)
        REFERENCES cs_rbac_permissions (tenant_id, name) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service)
        REFERENCES cs_rbac_services (tenant_id, name) ON DELETE CASCADE
) STRICT;
-- One grant per (role, permission, service or none): '' is no valid name.
CREATE UNIQUE INDEX cs_rbac_role_grants_key
    ON cs_rbac_role_grants (tenant_id, role, permission, COALESCE(service, ''));
CREATE INDEX cs_rbac_role_grants_permission ON cs_rbac_role_grants (tenant_id, permission);
CREATE INDEX cs_rbac_role_grants_service ON cs_rbac_role_grants (tenant_id, service);

CREATE TABLE cs_rbac_assignments (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    service    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role, service),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role) REFERENCES cs_rbac_roles (tenant_id, name) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service)
        REFERENCES cs_rbac_services (tenant_id, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_rbac_assignments_role ON cs_rbac_assignments (tenant_id, role, service);
CREATE INDEX cs_rbac_assignments_service ON cs_rbac_assignments (tenant_id, service, role);

CREATE TABLE cs_rbac_direct_grants (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    permission  TEXT NOT NULL,
    service     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, permission, service),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, permission)
        REFERENCES cs_rbac_permissions (tenant_id, name) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service)
        REFERENCES cs_rbac_services (tenant_id, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX cs_rbac_direct_grants_permission ON cs_rbac_direct_grants (tenant_id, permission);
CREATE INDEX cs_rbac_direct_grants_service ON cs_rbac_direct_grants (tenant_id, service);
