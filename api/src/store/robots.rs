//! The `robots` table: robots, the digests of their credentials, and retirement (a retired robot
//! keeps its row for bookings and the audit log, but no credential of it is found any more).
//!
//! Not here: generating or checking credentials (`crate::robots`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::backend::{placeholders, sql, Backend, Columns};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::Robot;

fn robot(row: &dyn Columns) -> Result<Robot, ApiError> {
    Ok(Robot {
        id: row.id("id")?,
        name: row.text("name")?,
        ward: row.text("ward")?,
        description: row.text("description")?,
        retired_at: row.opt_time("retired_at")?,
    })
}

const ROBOT_COLUMNS: &str = "id, name, ward, description, retired_at";

impl Store {
    pub async fn insert_robot(
        &self,
        r: &Robot,
        credential_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let s = sql(
            "INSERT INTO robots (id, name, ward, description, credential_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id)
        .bind(r.name.as_str())
        .bind(r.ward.as_str())
        .bind(r.description.as_str())
        .bind(credential_hash)
        .bind(at);
        self.execute(s).await?;
        Ok(())
    }

    /// Robots in service, by ward and name; with `retired`, the retired ones too.
    pub async fn list_robots(&self, retired: bool) -> Result<Vec<Robot>, ApiError> {
        let text = format!(
            "SELECT {ROBOT_COLUMNS} FROM robots WHERE ($1 = 1 OR retired_at IS NULL) \
             ORDER BY ward, name, id"
        );
        self.fetch_all(sql(&text).bind(i64::from(retired)), robot)
            .await
    }

    /// The robot, retired or not.
    pub async fn robot_by_id(&self, id: Uuid) -> Result<Option<Robot>, ApiError> {
        let text = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE id = $1");
        self.fetch_optional(sql(&text).bind(id), robot).await
    }

    /// Names of those of `ids` that are robots, retired or not.
    pub async fn robot_names(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let text = format!(
            "SELECT id, name FROM robots WHERE id IN ({})",
            placeholders(ids.len())
        );
        let s = ids.iter().fold(sql(&text), |s, id| s.bind(*id));
        self.fetch_all(s, |row| Ok((row.id("id")?, row.text("name")?)))
            .await
    }

    /// Change what is given of a robot in service. False if there is no such robot in service.
    pub async fn update_robot(
        &self,
        id: Uuid,
        name: Option<&str>,
        ward: Option<&str>,
        description: Option<&str>,
    ) -> Result<bool, ApiError> {
        let s = sql(
            "UPDATE robots SET name = COALESCE($2, name), ward = COALESCE($3, ward), \
             description = COALESCE($4, description) WHERE id = $1 AND retired_at IS NULL",
        )
        .bind(id)
        .bind(name)
        .bind(ward)
        .bind(description);
        Ok(self.execute(s).await? == 1)
    }

    /// Retire a robot in service at `at`. False if there is none (or it is already retired).
    pub async fn retire_robot(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, ApiError> {
        let s = sql("UPDATE robots SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL")
            .bind(id)
            .bind(at);
        Ok(self.execute(s).await? == 1)
    }

    /// The credential digest of a robot in service; `None` for an unknown or retired robot.
    pub async fn robot_credential_hash(&self, id: Uuid) -> Result<Option<String>, ApiError> {
        let s =
            sql("SELECT credential_hash FROM robots WHERE id = $1 AND retired_at IS NULL").bind(id);
        self.fetch_optional(s, |row| row.text("credential_hash"))
            .await
    }

    /// False if there is no such robot in service.
    pub async fn set_robot_credential(
        &self,
        id: Uuid,
        credential_hash: &str,
    ) -> Result<bool, ApiError> {
        let s = sql("UPDATE robots SET credential_hash = $2 WHERE id = $1 AND retired_at IS NULL")
            .bind(id)
            .bind(credential_hash);
        Ok(self.execute(s).await? == 1)
    }
}
