//! The SQLite store: the default, one file in the data directory.
//!
//! Ids are stored as hyphenated TEXT and times as INTEGER microseconds since the epoch (UTC).
//! SQLite has one writer at a time; a booking is checked and inserted inside `BEGIN IMMEDIATE`,
//! which takes that write lock up front, so the check and the insert are atomic (triggers in
//! the schema are the backstop). Not here: rules, or anything PostgreSQL-specific.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::Row;
use uuid::Uuid;

use super::{already_invited, is_unique_violation, username_taken};
use crate::config::ApiConfig;
use crate::error::{ApiError, ConflictSlot};
use crate::model::{
    AuditEntry, AuditFilter, Booking, BookingFilter, BookingStatus, Invitation, InvitationRole,
    NewAuditEntry, Robot, SessionRecord, User, UserRole,
};

#[derive(Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(us: i64) -> Result<DateTime<Utc>, ApiError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| ApiError::internal("timestamp out of range in database"))
}

fn uuid(row: &SqliteRow, col: &str) -> Result<Uuid, ApiError> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| ApiError::internal("malformed id in database"))
}

fn user(row: &SqliteRow) -> Result<User, ApiError> {
    Ok(User {
        id: uuid(row, "u_id")?,
        username: row.try_get("u_username")?,
        display_name: row.try_get("u_display_name")?,
        role: UserRole::from_db(row.try_get("u_role")?)?,
    })
}

fn session(row: &SqliteRow) -> Result<SessionRecord, ApiError> {
    Ok(SessionRecord {
        id: uuid(row, "s_id")?,
        user_id: uuid(row, "s_user_id")?,
        access_hash: row.try_get("access_hash")?,
        refresh_hash: row.try_get("refresh_hash")?,
        created_at: time(row.try_get("created_at")?)?,
        last_seen_at: time(row.try_get("last_seen_at")?)?,
        access_expires_at: time(row.try_get("access_expires_at")?)?,
        expires_at: time(row.try_get("expires_at")?)?,
    })
}

fn robot(row: &SqliteRow) -> Result<Robot, ApiError> {
    Ok(Robot {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        ward: row.try_get("ward")?,
        description: row.try_get("description")?,
    })
}

fn booking(row: &SqliteRow) -> Result<Booking, ApiError> {
    Ok(Booking {
        id: uuid(row, "id")?,
        robot_id: uuid(row, "robot_id")?,
        doctor_id: uuid(row, "doctor_id")?,
        starts_at: time(row.try_get("starts_at")?)?,
        ends_at: time(row.try_get("ends_at")?)?,
        status: BookingStatus::from_db(row.try_get("status")?)?,
        note: row.try_get("note")?,
        invitations: Vec::new(),
    })
}

const SESSION_WITH_USER: &str = "SELECT s.id AS s_id, s.user_id AS s_user_id, s.access_hash, \
     s.refresh_hash, s.created_at, s.last_seen_at, s.access_expires_at, s.expires_at, \
     u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, u.role AS u_role \
     FROM sessions s JOIN users u ON u.id = s.user_id";

impl SqliteStore {
    pub async fn connect(
        options: SqliteConnectOptions,
        config: &ApiConfig,
    ) -> Result<Self, ApiError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_db_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(u.id.to_string())
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(u.role.as_str())
        .bind(password_hash)
        .bind(micros(at))
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
             role AS u_role FROM users WHERE id = ?1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| user(&r))
        .transpose()
    }

    pub async fn login_record(&self, username: &str) -> Result<Option<(User, String)>, ApiError> {
        let row = sqlx::query(
            "SELECT id AS u_id, username AS u_username, display_name AS u_display_name, \
             role AS u_role, password_hash FROM users WHERE username = ?1",
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
             role AS u_role FROM users WHERE (?1 IS NULL OR role = ?1) ORDER BY display_name, id",
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
             last_seen_at, access_expires_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(&s.access_hash)
        .bind(&s.refresh_hash)
        .bind(micros(s.created_at))
        .bind(micros(s.last_seen_at))
        .bind(micros(s.access_expires_at))
        .bind(micros(s.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session_by_access(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        self.session_where("s.access_hash = ?1", hash).await
    }

    pub async fn session_by_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        self.session_where("s.refresh_hash = ?1", hash).await
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
        sqlx::query("UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2")
            .bind(id.to_string())
            .bind(micros(at))
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
            "UPDATE sessions SET access_hash = ?2, refresh_hash = ?3, last_seen_at = ?4, \
             access_expires_at = ?5 WHERE id = ?1 AND refresh_hash = ?6",
        )
        .bind(next.id.to_string())
        .bind(&next.access_hash)
        .bind(&next.refresh_hash)
        .bind(micros(next.last_seen_at))
        .bind(micros(next.access_expires_at))
        .bind(old_refresh_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_session(&self, id: Uuid) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM sessions WHERE id = ?1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<u64, ApiError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2")
            .bind(micros(now))
            .bind(micros(idle_cutoff))
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(r.id.to_string())
        .bind(&r.name)
        .bind(&r.ward)
        .bind(&r.description)
        .bind(credential_hash)
        .bind(micros(at))
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
        sqlx::query("SELECT id, name, ward, description FROM robots WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| robot(&r))
            .transpose()
    }

    pub async fn robot_credential_hash(&self, id: Uuid) -> Result<Option<String>, ApiError> {
        Ok(
            sqlx::query_scalar("SELECT credential_hash FROM robots WHERE id = ?1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_robot_credential(
        &self,
        id: Uuid,
        credential_hash: &str,
    ) -> Result<bool, ApiError> {
        let done = sqlx::query("UPDATE robots SET credential_hash = ?2 WHERE id = ?1")
            .bind(id.to_string())
            .bind(credential_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- bookings ----

    pub async fn insert_booking(&self, b: &Booking, at: DateTime<Utc>) -> Result<(), ApiError> {
        let pool = self.pool.clone();
        let b = b.clone();
        // Its own task, so a client that hangs up cannot cancel the request between BEGIN and
        // COMMIT and leave a pooled connection inside an open transaction.
        tokio::spawn(async move { insert_booking_atomically(&pool, &b, at).await })
            .await
            .map_err(|e| ApiError::internal(format!("booking task failed: {e}")))?
    }

    pub async fn booking_by_id(&self, id: Uuid) -> Result<Option<Booking>, ApiError> {
        let row = sqlx::query(
            "SELECT id, robot_id, doctor_id, starts_at, ends_at, status, note \
             FROM bookings WHERE id = ?1",
        )
        .bind(id.to_string())
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
             WHERE (?1 IS NULL OR b.robot_id = ?1) \
               AND (?2 IS NULL OR b.doctor_id = ?2 OR EXISTS ( \
                    SELECT 1 FROM invitations i WHERE i.booking_id = b.id AND i.user_id = ?2)) \
               AND (?3 IS NULL OR b.ends_at > ?3) \
               AND (?4 IS NULL OR b.starts_at < ?4) \
             ORDER BY b.starts_at, b.id LIMIT ?5",
        )
        .bind(f.robot_id.map(|u| u.to_string()))
        .bind(f.participant.map(|u| u.to_string()))
        .bind(f.from.map(micros))
        .bind(f.to.map(micros))
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
        let ids: Vec<String> = bookings.iter().map(|b| b.id.to_string()).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| ApiError::internal(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT booking_id, user_id, role FROM invitations \
             WHERE booking_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, user_id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let booking_id = uuid(&row, "booking_id")?;
            let invitation = Invitation {
                user_id: uuid(&row, "user_id")?,
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
            "UPDATE bookings SET status = 'cancelled', cancelled_at = ?2 \
             WHERE id = ?1 AND status <> 'cancelled'",
        )
        .bind(id.to_string())
        .bind(micros(at))
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
            "INSERT INTO invitations (booking_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(booking_id.to_string())
        .bind(inv.user_id.to_string())
        .bind(inv.role.as_str())
        .bind(micros(at))
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
        let done = sqlx::query("DELETE FROM invitations WHERE booking_id = ?1 AND user_id = ?2")
            .bind(booking_id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- audit ----

    pub async fn append_audit(&self, e: &NewAuditEntry) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO audit_log (at, kind, actor, room, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(micros(e.at))
        .bind(&e.kind)
        .bind(&e.actor)
        .bind(&e.room)
        .bind(e.detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, ApiError> {
        sqlx::query(
            "SELECT id, at, kind, actor, room, detail FROM audit_log \
             WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR actor = ?2) \
               AND (?3 IS NULL OR room = ?3) AND (?4 IS NULL OR at >= ?4) \
               AND (?5 IS NULL OR at < ?5) AND (?6 IS NULL OR id < ?6) \
             ORDER BY id DESC LIMIT ?7",
        )
        .bind(&f.kind)
        .bind(&f.actor)
        .bind(&f.room)
        .bind(f.since.map(micros))
        .bind(f.until.map(micros))
        .bind(f.before)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let detail: String = row.try_get("detail")?;
            Ok(AuditEntry {
                id: row.try_get("id")?,
                at: time(row.try_get("at")?)?,
                kind: row.try_get("kind")?,
                actor: row.try_get("actor")?,
                room: row.try_get("room")?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            })
        })
        .collect()
    }
}

/// Check for an overlapping live booking and insert, holding SQLite's write lock throughout.
async fn insert_booking_atomically(
    pool: &SqlitePool,
    b: &Booking,
    at: DateTime<Utc>,
) -> Result<(), ApiError> {
    // A plain (deferred) BEGIN would let two transactions both read "free" and then race for
    // the lock on INSERT, the loser failing with SQLITE_BUSY. IMMEDIATE queues them instead.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let clash = sqlx::query(
        "SELECT id, starts_at, ends_at FROM bookings \
         WHERE robot_id = ?1 AND status <> 'cancelled' AND starts_at < ?3 AND ends_at > ?2 \
         ORDER BY starts_at LIMIT 1",
    )
    .bind(b.robot_id.to_string())
    .bind(micros(b.starts_at))
    .bind(micros(b.ends_at))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = clash {
        // Dropping `tx` rolls back.
        return Err(ApiError::BookingConflict(ConflictSlot {
            booking_id: uuid(&row, "id")?,
            starts_at: time(row.try_get("starts_at")?)?,
            ends_at: time(row.try_get("ends_at")?)?,
        }));
    }
    sqlx::query(
        "INSERT INTO bookings (id, robot_id, doctor_id, starts_at, ends_at, status, note, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(b.id.to_string())
    .bind(b.robot_id.to_string())
    .bind(b.doctor_id.to_string())
    .bind(micros(b.starts_at))
    .bind(micros(b.ends_at))
    .bind(b.status.as_str())
    .bind(&b.note)
    .bind(micros(at))
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        // Only reachable if something wrote around this transaction; the trigger caught it.
        if e.as_database_error().is_some_and(|d| d.message().contains("booking_overlap")) {
            ApiError::conflict("booking_conflict", "the robot is already booked for that time")
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    Ok(())
}
