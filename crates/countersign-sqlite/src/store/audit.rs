//! `AuditQuery` in SQLite.

use countersign_core::{AuditEvent, AuditFilter, AuditQuery, TenantId};
use rusqlite::types::Value;

use crate::codec::{EVENT_COLS, id, micros, read_event};
use crate::{Result, SqliteError, SqliteStore};

impl AuditQuery for SqliteStore {
    type Error = SqliteError;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        let mut sql = format!("SELECT {EVENT_COLS} FROM cs_audit_events WHERE tenant_id = ?1");
        let mut args: Vec<Value> = vec![Value::Text(id(tenant.as_uuid()))];
        let mut push = |clause: &str, v: Value| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(u) = filter.user_id {
            push("user_id =", Value::Text(id(u.as_uuid())));
        }
        if let Some(k) = filter.kind {
            push("kind =", Value::Text(k.as_str().into()));
        }
        if let Some(s) = filter.status {
            push("status =", Value::Text(s.as_str().into()));
        }
        if let Some(from) = filter.from {
            push("at >=", Value::Integer(micros(from)));
        }
        if let Some(until) = filter.until {
            push("at <", Value::Integer(micros(until)));
        }
        args.push(Value::Integer(i64::from(filter.effective_limit())));
        sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT ?{}", args.len()));
        self.fetch_all(sql, rusqlite::params_from_iter(args), read_event)
            .await
    }
}
