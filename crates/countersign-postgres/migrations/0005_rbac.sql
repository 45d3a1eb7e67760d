-- Each tenant's role-based access model: services, roles and permissions
-- (one table per kind, names unique per tenant), the grants of permissions
-- to roles, the roles users hold within services and the permissions
-- granted to users directly, and the model's version.
--
-- Every grant and assignment references the names it uses, so deleting a
-- service, role or permission removes every row naming it (ON DELETE
-- CASCADE), and the user it names by (tenant_id, user_id), so it belongs to
-- a user of its own tenant and goes with the user. Everything goes with the
-- tenant. Names are compared and ordered bytewise (COLLATE "C").

-- The model's version: no row reads as 0; each applied change adds 1 in
-- its transaction, which takes this row's lock first (so the changes of a
-- tenant run one after the other).
CREATE TABLE cs_rbac_versions (
    tenant_id uuid   PRIMARY KEY REFERENCES cs_tenants (id) ON DELETE CASCADE,
    version   bigint NOT NULL CHECK (version >= 1)
);

CREATE TABLE cs_rbac_services (
    tenant_id uuid NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name      text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE cs_rbac_roles (
    tenant_id uuid NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name      text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE cs_rbac_permissions (
    tenant_id uuid NOT NULL REFERENCES cs_tenants (id) ON DELETE CASCADE,
    name      text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- A permission granted to a role, within one service or (service NULL) in
-- every service the role is held in.
CREATE TABLE cs_rbac_role_grants (
    tenant_id  uuid NOT NULL,
    role       text COLLATE "C" NOT NULL,
    permission text COLLATE "C" NOT NULL,
    service    text COLLATE "C",
    FOREIGN KEY (tenant_id, role) REFERENCES cs_rbac_roles (tenant_id, name)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, permission) REFERENCES cs_rbac_permissions (tenant_id, name)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service) REFERENCES cs_rbac_services (tenant_id, name)
        ON DELETE CASCADE
);
-- One grant per (role, permission, service), an unlimited one included
-- (no name is empty, so '' stands for "every service"; an expression
-- rather than NULLS NOT DISTINCT, which needs PostgreSQL 15).
CREATE UNIQUE INDEX cs_rbac_role_grants_key
    ON cs_rbac_role_grants (tenant_id, role, permission, (COALESCE(service, '')));
CREATE INDEX cs_rbac_role_grants_permission ON cs_rbac_role_grants (tenant_id, permission);
CREATE INDEX cs_rbac_role_grants_service ON cs_rbac_role_grants (tenant_id, service, role)
    WHERE service IS NOT NULL;

-- A role held by a user within a service.
CREATE TABLE cs_rbac_assignments (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    service   text COLLATE "C" NOT NULL,
    role      text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, user_id, service, role),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service) REFERENCES cs_rbac_services (tenant_id, name)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role) REFERENCES cs_rbac_roles (tenant_id, name)
        ON DELETE CASCADE
);
CREATE INDEX cs_rbac_assignments_service ON cs_rbac_assignments (tenant_id, service, role, user_id);
CREATE INDEX cs_rbac_assignments_role ON cs_rbac_assignments (tenant_id, role);

-- A permission granted to a user directly, within a service.
CREATE TABLE cs_rbac_direct_grants (
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    service    text COLLATE "C" NOT NULL,
    permission text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, user_id, service, permission),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service) REFERENCES cs_rbac_services (tenant_id, name)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, permission) REFERENCES cs_rbac_permissions (tenant_id, name)
        ON DELETE CASCADE
);
CREATE INDEX cs_rbac_direct_grants_service ON cs_rbac_direct_grants (tenant_id, service);
CREATE INDEX cs_rbac_direct_grants_permission ON cs_rbac_direct_grants (tenant_id, permission);
