//! `SessionStore` in memory: sessions and refresh-token families.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use countersign_core::session::{RotationDecision, decide_rotation};
use countersign_core::{
    AuditEvent, AuthRecord, FamilyId, RecordedRotation, RefreshFamily, Rotation, SessionId,
    SessionRecord, SessionStore, TenantId, TokenHash, UserId,
};

use crate::error::{MemoryError, Result, unique_violation};
use crate::{MemoryStore, StoreMethod};

impl SessionStore for MemoryStore {
    type Error = MemoryError;

    async fn create_session(
        &self,
        session: &SessionRecord,
        family: Option<&RefreshFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<()> {
        let mut st = self.begin(StoreMethod::CreateSession)?;
        st.require_user(session.tenant_id, session.user_id)?;
        if st.sessions.contains_key(&session.key) || st.session_keys.contains_key(&session.id) {
            return Err(unique_violation("session"));
        }
        // Every check before the first write: all or nothing.
        if let Some(e) = event
            && st.event_ids.contains(&e.id)
        {
            return Err(unique_violation("audit event"));
        }
        if let Some(f) = family {
            if st.families.contains_key(&f.id) || st.refresh_tokens.contains_key(&f.current) {
                return Err(unique_violation("family"));
            }
            st.families.insert(f.id, f.clone());
            st.refresh_tokens.insert(f.current, f.id);
        }
        if let Some(e) = event {
            st.event_ids.insert(e.id);
            st.events.push(e.clone());
        }
        st.session_keys.insert(session.id, session.key);
        st.sessions.insert(session.key, Arc::new(session.clone()));
        Ok(())
    }

    async fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<SessionRecord>>> {
        let mut st = self.begin(StoreMethod::ValidateSession)?;
        let Some(s) = st.sessions.get_mut(key) else {
            return Ok(None);
        };
        if !s.is_live(now) {
            return Ok(None);
        }
        if s.renewal_due(now) {
            Arc::make_mut(s).renew(now);
        }
        Ok(Some(Arc::clone(s)))
    }

    async fn session(&self, tenant: TenantId, id: SessionId) -> Result<Option<SessionRecord>> {
        let st = self.begin(StoreMethod::Session)?;
        Ok(st
            .session_keys
            .get(&id)
            .and_then(|k| st.sessions.get(k))
            .filter(|s| s.tenant_id == tenant)
            .map(|s| SessionRecord::clone(s)))
    }

    async fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        let st = self.begin(StoreMethod::UserSessions)?;
        let mut out: Vec<SessionRecord> = st
            .sessions
            .values()
            .filter(|s| s.tenant_id == tenant && s.user_id == user && s.is_live(now))
            .map(|s| SessionRecord::clone(s))
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let mut st = self.begin(StoreMethod::DeleteSession)?;
        let Some(key) = st
            .session_keys
            .get(&id)
            .copied()
            .filter(|k| st.sessions.get(k).is_some_and(|s| s.tenant_id == tenant))
        else {
            return Ok(None);
        };
        Ok(st.end_session(&key, now))
    }

    async fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let mut st = self.begin(StoreMethod::DeleteSessionByKey)?;
        Ok(st.end_session(key, now))
    }

    async fn delete_user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut st = self.begin(StoreMethod::DeleteUserSessions)?;
        let keys: Vec<TokenHash> = st
            .sessions
            .values()
            .filter(|s| s.tenant_id == tenant && s.user_id == user && Some(s.id) != keep)
            .map(|s| s.key)
            .collect();
        for k in &keys {
            st.end_session(k, now);
        }
        Ok(keys.len() as u64)
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        let mut st = self.begin(StoreMethod::RotateRefresh)?;
        rotate(&mut st, presented, new, now)
    }

    async fn rotate_refresh_recorded(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        scope: Option<TenantId>,
        event: &AuditEvent,
    ) -> Result<RecordedRotation> {
        let mut st = self.begin(StoreMethod::RotateRefreshRecorded)?;
        let tenant = st
            .refresh_tokens
            .get(presented)
            .and_then(|fid| st.families.get(fid))
            .map(|f| f.tenant_id);
        if scope.is_some() && tenant != scope {
            return Ok(RecordedRotation::refused(Rotation::Unknown));
        }
        if st.event_ids.contains(&event.id) {
            return Err(unique_violation("audit event"));
        }
        let rotation = rotate(&mut st, presented, new, now)?;
        let Rotation::Rotated(family) = &rotation else {
            return Ok(RecordedRotation::refused(rotation));
        };
        let session = st
            .session_keys
            .get(&family.session_id)
            .and_then(|k| st.sessions.get(k))
            .filter(|s| s.tenant_id == family.tenant_id)
            .map(|s| SessionRecord::clone(s));
        if session.as_ref().is_some_and(|s| s.is_live(now)) {
            let mut e = event.clone();
            e.tenant_id = family.tenant_id;
            e.user_id = Some(family.user_id);
            st.record_event(e);
        }
        let tenant = st.tenants.get(&family.tenant_id).cloned();
        Ok(RecordedRotation {
            rotation,
            session,
            tenant,
        })
    }

    async fn set_session_auth(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected: &AuthRecord,
        auth: &AuthRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::SetSessionAuth)?;
        let Some(key) = st.session_keys.get(&id).copied() else {
            return Ok(false);
        };
        let Some(s) = st
            .sessions
            .get_mut(&key)
            .filter(|s| s.tenant_id == tenant && s.is_live(now) && s.auth == *expected)
        else {
            return Ok(false);
        };
        Arc::make_mut(s).auth = auth.clone();
        Ok(true)
    }

    async fn refresh_family(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> Result<Option<RefreshFamily>> {
        let st = self.begin(StoreMethod::RefreshFamily)?;
        Ok(st
            .families
            .get(&id)
            .filter(|f| f.tenant_id == tenant)
            .cloned())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut st = self.begin(StoreMethod::DeleteExpiredSessions)?;
        let dead: Vec<TokenHash> = st
            .sessions
            .values()
            .filter(|s| !s.is_live(now))
            .map(|s| s.key)
            .collect();
        for k in &dead {
            if let Some(s) = st.sessions.remove(k) {
                st.session_keys.remove(&s.id);
            }
        }
        let gone: Vec<FamilyId> = st
            .families
            .values()
            .filter(|f| f.expires_at <= now || f.revoked_at.is_some_and(|r| r < now))
            .map(|f| f.id)
            .collect();
        for f in &gone {
            st.families.remove(f);
        }
        st.refresh_tokens.retain(|_, f| !gone.contains(f));
        Ok((dead.len() + gone.len()) as u64)
    }

    async fn count_live_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let st = self.begin(StoreMethod::CountLiveSessions)?;
        Ok(st.sessions.values().filter(|s| s.is_live(now)).count() as u64)
    }
}

/// [`decide_rotation`] on the family of `presented`, and its writes.
fn rotate(
    st: &mut crate::state::State,
    presented: &TokenHash,
    new: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Rotation> {
    let Some(fid) = st.refresh_tokens.get(presented).copied() else {
        return Ok(Rotation::Unknown);
    };
    let Some(family) = st.families.get(&fid).cloned() else {
        return Ok(Rotation::Unknown);
    };
    Ok(match decide_rotation(&family, presented, now) {
        RotationDecision::Revoked => Rotation::Revoked,
        RotationDecision::Expired => Rotation::Expired,
        RotationDecision::Superseded => Rotation::Superseded,
        RotationDecision::Rotate => {
            if st.refresh_tokens.contains_key(new) {
                return Err(unique_violation("token"));
            }
            let mut next = family;
            next.previous = Some(next.current);
            next.current = *new;
            next.generation += 1;
            next.rotated_at = Some(now);
            st.refresh_tokens.insert(*new, fid);
            st.families.insert(fid, next.clone());
            Rotation::Rotated(next)
        }
        RotationDecision::Revoke => {
            let mut revoked = family;
            revoked.revoked_at = Some(now);
            st.families.insert(fid, revoked.clone());
            if let Some(key) = st.session_keys.get(&revoked.session_id).copied() {
                st.end_session(&key, now);
            }
            Rotation::Reused(revoked)
        }
    })
}
