//! The `robots` table: robots and the digests of their credentials.
//!
//! Not here: generating or checking credentials (`crate::robots`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::backend::{sql, Backend, Columns};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::Robot;

fn robot(row: &dyn Columns) -> Result<Robot, ApiError> {
    Ok(Robot {
        id: row.id("id")?,
        name: row.text("name")?,
        ward: row.text("ward")?,
        description: row.text("description")?,
    })
}

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

    pub async fn list_robots(&self) -> Result<Vec<Robot>, ApiError> {
        let s = sql("SELECT id, name, ward, description FROM robots ORDER BY ward, name, id");
        self.fetch_all(s, robot).await
    }

    pub async fn robot_by_id(&self, id: Uuid) -> Result<Option<Robot>, ApiError> {
        let s = sql("SELECT id, name, ward, description FROM robots WHERE id = $1").bind(id);
        self.fetch_optional(s, robot).await
    }

    pub async fn robot_credential_hash(&self, id: Uuid) -> Result<Option<String>, ApiError> {
        let s = sql("SELECT credential_hash FROM robots WHERE id = $1").bind(id);
        self.fetch_optional(s, |row| row.text("credential_hash"))
            .await
    }

    /// False if there is no such robot.
    pub async fn set_robot_credential(
        &self,
        id: Uuid,
        credential_hash: &str,
    ) -> Result<bool, ApiError> {
        let s = sql("UPDATE robots SET credential_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(credential_hash);
        Ok(self.execute(s).await? == 1)
    }
}
