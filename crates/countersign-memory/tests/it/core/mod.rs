//! Integration tests of countersign-core's services, run on the memory
//! store (they lived in core's tests/ until core stopped depending on a
//! backend, even for tests).

mod authz_service;
mod flow_property;
mod lockout_property;
mod no_secret_in_debug;
mod password_login;
mod provisioning;
mod support;
mod tokens;
