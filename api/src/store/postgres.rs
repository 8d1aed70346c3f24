//! The PostgreSQL store, chosen by `DATABASE_URL=postgres://...` for clusters.
//!
//! Native `uuid`, `timestamptz` and `jsonb` columns. No overlapping bookings is the exclusion
//! constraint `bookings_no_overlap` (btree_gist over robot id and `tstzrange`), so concurrent
//! inserts need no application locking: the loser gets SQLSTATE 23P01. Not here: rules, or
//! anything SQLite-specific.

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::{already_invited, is_unique_violation, username_taken};
use crate::error::{ApiError, ConflictSlot};
use crate::model::{
    AuditEntry, AuditFilter, Booking, BookingFilter, BookingStatus, Invitation, InvitationRole,
    NewAuditEntry, Robot, SessionRecord, User, UserRole,
};

/// SQLSTATE exclusion_violation.
const EXCLUSION_VIOLATION: &str = "23P01";

#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
}

fn user(row: &PgRow) -> Result<User, ApiError> {
    Ok(User {
        id: row.try_get("u_id")?,
        username: row.try_get("u_username")?,
        display_name: row.try_get("u_display_name")?,
        role: UserRole::from_db(row.try_get("u_role")?)?,
    })
}

fn session(row: &PgRow) -> Result<SessionRecord, ApiError> {
    Ok(SessionRecord {
        id: row.try_get("s_id")?,
        user_id: row.try_get("s_user_id")?,
        access_hash: row.try_get("access_hash")?,
        refresh_hash: row.try_get("refresh_hash")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        access_expires_at: row.try_get("access_expires_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn robot(row: &PgRow) -> Result<Robot, ApiError> {
    Ok(Robot {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        ward: row.try_get("ward")?,
        description: row.try_get("description")?,
    })
}

fn booking(row: &PgRow) -> Result<Booking, ApiError> {
    Ok(Booking {
        id: row.try_get("id")?,
        robot_id: row.try_get("robot_id")?,
        doctor_id: row.try_get("doctor_id")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        status: BookingStatus::from_db(row.try_get("status")?)?,
        note: row.try_get("note")?,
        invitations: Vec::new(),
    })
}

const SESSION_WITH_USER: &str = "SELECT s.id AS s_id, s.user_id AS s_user_id, s.access_hash, \
     s.refresh_hash, s.created_at, s.last_seen_at, s.access_expires_at, s.expires_at, \
     u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, u.role AS u_role \
     FROM sessions s JOIN users u ON u.id = s.user_id";

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        PgStore { pool }
    }

    pub async fn migrate(&self, migrator: Migrator) -> Result<(), ApiError> {
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    // ---- users ----

    pub async fn insert_user(
        &self,
        u: &User,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(u.id)
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(u.role.as_str())
        .bind(password_hash)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                username_taken()
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, ApiError> {
        sqlx::query(
            "SELECT id AS u_id, username AS u_username, display_name AS u_display_name, \
             role AS u_role FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| user(&r))
        .transpose()
    }

    pub async fn login_record(&self, username: &str) -> Result<Option<(User, String)>, ApiError> {
        let row = sqlx::query(
            "SELECT id AS u_id, username AS u_username, display_name AS u_display_name, \
             role AS u_role, password_hash FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((user(&r)?, r.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    pub async fn list_users(&self, role: Option<UserRole>) -> Result<Vec<User>, ApiError> {
        sqlx::query(
            "SELECT id AS u_id, username AS u_username, display_name AS u_display_name, \
             role AS u_role FROM users WHERE ($1::text IS NULL OR role = $1) \
             ORDER BY display_name, id",
        )
        .bind(role.map(UserRole::as_str))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user)
        .collect()
    }

    pub async fn count_admins(&self) -> Result<i64, ApiError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    // ---- sessions ----

    pub async fn insert_session(&self, s: &SessionRecord) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, access_hash, refresh_hash, created_at, \
             last_seen_at, access_expires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(&s.access_hash)
        .bind(&s.refresh_hash)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.access_expires_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session_by_access(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        self.session_where("s.access_hash = $1", hash).await
    }

    pub async fn session_by_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        self.session_where("s.refresh_hash = $1", hash).await
    }

    async fn session_where(
        &self,
        cond: &str,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        let sql = format!("{SESSION_WITH_USER} WHERE {cond}");
        let row = sqlx::query(&sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((session(&r)?, user(&r)?))),
            None => Ok(None),
        }
    }

    pub async fn touch_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), ApiError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn rotate_session(
        &self,
        old_refresh_hash: &str,
        next: &SessionRecord,
    ) -> Result<bool, ApiError> {
        let done = sqlx::query(
            "UPDATE sessions SET access_hash = $2, refresh_hash = $3, last_seen_at = $4, \
             access_expires_at = $5 WHERE id = $1 AND refresh_hash = $6",
        )
        .bind(next.id)
        .bind(&next.access_hash)
        .bind(&next.refresh_hash)
        .bind(next.last_seen_at)
        .bind(next.access_expires_at)
        .bind(old_refresh_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_session(&self, id: Uuid) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<u64, ApiError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- robots ----

    pub async fn insert_robot(
        &self,
        r: &Robot,
        credential_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO robots (id, name, ward, description, credential_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id)
        .bind(&r.name)
        .bind(&r.ward)
        .bind(&r.description)
        .bind(credential_hash)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_robots(&self) -> Result<Vec<Robot>, ApiError> {
        sqlx::query("SELECT id, name, ward, description FROM robots ORDER BY ward, name, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(robot)
            .collect()
    }

    pub async fn robot_by_id(&self, id: Uuid) -> Result<Option<Robot>, ApiError> {
        sqlx::query("SELECT id, name, ward, description FROM robots WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| robot(&r))
            .transpose()
    }

    pub async fn robot_credential_hash(&self, id: Uuid) -> Result<Option<String>, ApiError> {
        Ok(
            sqlx::query_scalar("SELECT credential_hash FROM robots WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_robot_credential(
        &self,
        id: Uuid,
        credential_hash: &str,
    ) -> Result<bool, ApiError> {
        let done = sqlx::query("UPDATE robots SET credential_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(credential_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- bookings ----

    pub async fn insert_booking(&self, b: &Booking, at: DateTime<Utc>) -> Result<(), ApiError> {
        // A conflict whose clashing booking is cancelled before we can read it back is retried.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO bookings (id, robot_id, doctor_id, starts_at, ends_at, status, note, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(b.id)
            .bind(b.robot_id)
            .bind(b.doctor_id)
            .bind(b.starts_at)
            .bind(b.ends_at)
            .bind(b.status.as_str())
            .bind(&b.note)
            .bind(at)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(()),
                Err(e) if is_exclusion_violation(&e) => {
                    if let Some(slot) = self.first_overlap(b).await? {
                        return Err(ApiError::BookingConflict(slot));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            "booking_conflict",
            "the robot is being booked for that time by someone else; try again",
        ))
    }

    async fn first_overlap(&self, b: &Booking) -> Result<Option<ConflictSlot>, ApiError> {
        let row = sqlx::query(
            "SELECT id, starts_at, ends_at FROM bookings \
             WHERE robot_id = $1 AND status <> 'cancelled' \
               AND tstzrange(starts_at, ends_at, '[)') && tstzrange($2, $3, '[)') \
             ORDER BY starts_at LIMIT 1",
        )
        .bind(b.robot_id)
        .bind(b.starts_at)
        .bind(b.ends_at)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ConflictSlot {
                booking_id: r.try_get("id")?,
                starts_at: r.try_get("starts_at")?,
                ends_at: r.try_get("ends_at")?,
            })
        })
        .transpose()
    }

    pub async fn booking_by_id(&self, id: Uuid) -> Result<Option<Booking>, ApiError> {
        let row = sqlx::query(
            "SELECT id, robot_id, doctor_id, starts_at, ends_at, status, note \
             FROM bookings WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = vec![booking(&row)?];
        self.attach_invitations(&mut found).await?;
        Ok(found.pop())
    }

    pub async fn list_bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>, ApiError> {
        let mut bookings = sqlx::query(
            "SELECT b.id, b.robot_id, b.doctor_id, b.starts_at, b.ends_at, b.status, b.note \
             FROM bookings b \
             WHERE ($1::uuid IS NULL OR b.robot_id = $1) \
               AND ($2::uuid IS NULL OR b.doctor_id = $2 OR EXISTS ( \
                    SELECT 1 FROM invitations i WHERE i.booking_id = b.id AND i.user_id = $2)) \
               AND ($3::timestamptz IS NULL OR b.ends_at > $3) \
               AND ($4::timestamptz IS NULL OR b.starts_at < $4) \
             ORDER BY b.starts_at, b.id LIMIT $5",
        )
        .bind(f.robot_id)
        .bind(f.participant)
        .bind(f.from)
        .bind(f.to)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(booking)
        .collect::<Result<Vec<_>, _>>()?;
        self.attach_invitations(&mut bookings).await?;
        Ok(bookings)
    }

    async fn attach_invitations(&self, bookings: &mut [Booking]) -> Result<(), ApiError> {
        if bookings.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = bookings.iter().map(|b| b.id).collect();
        let rows = sqlx::query(
            "SELECT booking_id, user_id, role FROM invitations \
             WHERE booking_id = ANY($1) ORDER BY created_at, user_id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let booking_id: Uuid = row.try_get("booking_id")?;
            let invitation = Invitation {
                user_id: row.try_get("user_id")?,
                role: InvitationRole::from_db(row.try_get("role")?)?,
            };
            if let Some(b) = bookings.iter_mut().find(|b| b.id == booking_id) {
                b.invitations.push(invitation);
            }
        }
        Ok(())
    }

    pub async fn cancel_booking(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, ApiError> {
        let done = sqlx::query(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = $2 \
             WHERE id = $1 AND status <> 'cancelled'",
        )
        .bind(id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_invitation(
        &self,
        booking_id: Uuid,
        inv: &Invitation,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO invitations (booking_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(booking_id)
        .bind(inv.user_id)
        .bind(inv.role.as_str())
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { already_invited() } else { e.into() })?;
        Ok(())
    }

    pub async fn delete_invitation(
        &self,
        booking_id: Uuid,
        user_id: Uuid,
    ) -> Result<bool, ApiError> {
        let done = sqlx::query("DELETE FROM invitations WHERE booking_id = $1 AND user_id = $2")
            .bind(booking_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- audit ----

    pub async fn append_audit(&self, e: &NewAuditEntry) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO audit_log (at, kind, actor, room, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(e.at)
        .bind(&e.kind)
        .bind(&e.actor)
        .bind(&e.room)
        .bind(Json(&e.detail))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, ApiError> {
        sqlx::query(
            "SELECT id, at, kind, actor, room, detail FROM audit_log \
             WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR actor = $2) \
               AND ($3::text IS NULL OR room = $3) AND ($4::timestamptz IS NULL OR at >= $4) \
               AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7",
        )
        .bind(&f.kind)
        .bind(&f.actor)
        .bind(&f.room)
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let Json(detail): Json<serde_json::Value> = row.try_get("detail")?;
            Ok(AuditEntry {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                kind: row.try_get("kind")?,
                actor: row.try_get("actor")?,
                room: row.try_get("room")?,
                detail,
            })
        })
        .collect()
    }
}

fn is_exclusion_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == EXCLUSION_VIOLATION)
}
