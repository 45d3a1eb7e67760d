-- countersign PostgreSQL schema, version 1.
--
-- Every table that holds tenant data has the tenant id in its primary key
-- (or, for users and events, in an index every query uses), and every
-- user-owned row references its user by (tenant_id, user_id), so a row can
-- only ever belong to a user of its own tenant. Deleting a user cascades
-- to everything personal it owns; audit events are pseudonymised instead.
-- Names and codes are compared and ordered bytewise (COLLATE "C").

CREATE TABLE cs_tenants (
    id          uuid        PRIMARY KEY,
    slug        text        COLLATE "C" NOT NULL UNIQUE,
    name        text        NOT NULL,
    policy      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE cs_users (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES cs_tenants (id),
    identifier    text        COLLATE "C" NOT NULL,
    display_name  text,
    email         text,
    state         text        COLLATE "C" NOT NULL,
    state_reason  text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    last_login_at timestamptz,
    CONSTRAINT cs_users_identifier_key UNIQUE (tenant_id, identifier),
    CONSTRAINT cs_users_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE cs_failures (
    tenant_id    uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    count        bigint      NOT NULL CHECK (count >= 1),
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);

-- No foreign keys: events outlive their users (pseudonymised on erasure)
-- and may name tenants that were never provisioned (refused attempts).
CREATE TABLE cs_audit_events (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    user_id     uuid,
    kind        text        COLLATE "C" NOT NULL,
    status      text        COLLATE "C" NOT NULL,
    factor      text        COLLATE "C",
    ip          text,
    user_agent  text,
    at          timestamptz NOT NULL,
    detail      text
);
CREATE INDEX cs_audit_events_tenant_at ON cs_audit_events (tenant_id, at DESC, id DESC);
CREATE INDEX cs_audit_events_tenant_user ON cs_audit_events (tenant_id, user_id, at DESC, id DESC);

CREATE TABLE cs_tenant_factors (
    tenant_id uuid  NOT NULL REFERENCES cs_tenants (id),
    kind      text  COLLATE "C" NOT NULL,
    config    jsonb NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE cs_user_factors (
    tenant_id uuid   NOT NULL,
    user_id   uuid   NOT NULL,
    kind      text   COLLATE "C" NOT NULL,
    config    jsonb  NOT NULL,
    version   bigint NOT NULL CHECK (version >= 1),
    PRIMARY KEY (tenant_id, user_id, kind),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE cs_tenant_methods (
    tenant_id uuid    NOT NULL REFERENCES cs_tenants (id),
    name      text    COLLATE "C" NOT NULL,
    method    jsonb   NOT NULL,
    enabled   boolean NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE cs_user_methods (
    tenant_id uuid    NOT NULL,
    user_id   uuid    NOT NULL,
    name      text    COLLATE "C" NOT NULL,
    method    jsonb   NOT NULL,
    enabled   boolean NOT NULL,
    PRIMARY KEY (tenant_id, user_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE cs_password_history (
    id        bigserial   PRIMARY KEY,
    tenant_id uuid        NOT NULL,
    user_id   uuid        NOT NULL,
    phc       text        NOT NULL,
    at        timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES cs_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX cs_password_history_user ON cs_password_history (tenant_id, user_id, id DESC);
