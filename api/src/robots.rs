//! Robots: registering them, their credentials (random, shown once, stored as a digest,
//! rotatable), editing and retiring them, the publish token a robot gets with its credential,
//! and its busy slots.
//!
//! Retiring a robot keeps its row (bookings and the audit log name it) but takes it out of
//! service at once: its credential stops working and its publish tokens are refused (the media
//! nodes end its publisher), every booking of it not yet over is cancelled (their participants'
//! tokens are refused and their sessions ended, as for any cancelled booking), no booking can
//! be made, and it is no longer listed for booking.
//!
//! Rotating a credential also revokes the publish tokens the old one got (a deny entry on the
//! robot's subject, cut at this second): a leaked credential's tokens can neither publish nor
//! take the room from the robot. A robot's id is also its room id. Not here: what a robot may do in a room (the SFU), bookings
//! (`booking`).

use bedside_proto::node::{DenyScope, DenyTarget, RevokeReason};
use bedside_proto::{Claims, Role, TokenSigner};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{kinds, AuditSink};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::instants;
use crate::keys::{sign, unix};
use crate::model::{Actor, BookingFilter, BookingStatus, Robot, UserRole};
use crate::node_hub::NodeHub;
use crate::secret::{self, ROBOT_PREFIX};
use crate::store::Store;
use crate::turn::IceServer;

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewRobot {
    /// 1-100 characters (after trimming), no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// 1-100 characters (after trimming), no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub ward: String,
    /// Up to 1000 characters; no control characters but line breaks.
    #[serde(default)]
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: String,
}

/// A new robot and its credential. The credential is shown only here; store it on the robot.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RobotCreated {
    pub robot: Robot,
    pub credential: String,
}

/// A robot's new credential; the previous one stops working at once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialResponse {
    pub credential: String,
}

/// What a robot needs to publish: `POST {whip_url}` with `Authorization: Bearer {token}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PublishTokenResponse {
    pub room: String,
    /// The robot's name, for the robot's own screen (it should never show its id).
    pub robot_name: String,
    pub whip_url: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// TURN relays with credentials that expire with the token (see `JoinResponse`). Absent when
    /// none is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

/// A booked slot, without who booked it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BusySlot {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BusyQuery {
    /// Start of the window (default: now).
    pub from: Option<DateTime<Utc>>,
    /// End of the window (default: `from` + 7 days; at most 62 days after `from`).
    pub to: Option<DateTime<Utc>>,
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<String, ApiError> {
    // The raw value is held to the length and character rules too, so that the schema's
    // `maxLength` and `pattern` (see `NewRobot`) say exactly what is refused.
    let v = value.trim();
    let n = v.chars().count();
    let raw_n = value.chars().count();
    if n < min || raw_n > max || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::validation(format!(
            "{field} must be {min}-{max} characters without control characters"
        )));
    }
    Ok(v.to_string())
}

/// Register a robot; `actor` is the admin doing it, if any. Returns the robot and its
/// credential.
pub(crate) async fn create(
    store: &Store,
    audit: &AuditSink,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
    new: NewRobot,
) -> Result<(Robot, String), ApiError> {
    let robot = Robot {
        id: Uuid::new_v4(),
        name: check_len("name", &new.name, 1, 100)?,
        ward: check_len("ward", &new.ward, 1, 100)?,
        description: check_len("description", &new.description, 0, 1000)?,
        retired_at: None,
    };
    let credential = secret::generate(ROBOT_PREFIX)?;
    store
        .insert_robot(&robot, &secret::digest(&credential), now)
        .await?;
    audit
        .record(
            kinds::ROBOT_CREATED,
            actor.map(|a| a.user.id),
            Some(robot.id),
            serde_json::json!({}),
        )
        .await?;
    Ok((robot, credential))
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RobotQuery {
    /// Admins: list retired robots too (with `retired_at`).
    pub include_retired: Option<bool>,
}

/// Robots in service; admins may ask for the retired ones too.
pub(crate) async fn list(
    store: &Store,
    actor: &Actor,
    q: RobotQuery,
) -> Result<Vec<Robot>, ApiError> {
    let retired = q.include_retired.unwrap_or(false);
    if retired && actor.user.role != UserRole::Admin {
        return Err(ApiError::Forbidden("only admins may list retired robots"));
    }
    store.list_robots(retired).await
}

/// What an admin may change of a robot; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RobotUpdate {
    /// 1-100 characters (after trimming), no control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    /// 1-100 characters (after trimming), no control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub ward: Option<String>,
    /// Up to 1000 characters; no control characters but line breaks.
    #[serde(default)]
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
}

/// What retiring a robot did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RobotRetired {
    pub robot: Robot,
    /// Bookings of it not yet over that were cancelled now (none if it was already retired).
    pub cancelled_bookings: Vec<Uuid>,
}

/// A robot that exists and is in service, or why not (404, or 409 `robot_retired`).
pub(crate) async fn in_service(store: &Store, id: Uuid) -> Result<Robot, ApiError> {
    match store.robot_by_id(id).await? {
        None => Err(ApiError::NotFound("robot")),
        Some(r) if r.retired_at.is_some() => {
            Err(ApiError::conflict("robot_retired", "the robot is retired"))
        }
        Some(r) => Ok(r),
    }
}

/// An admin renames a robot or changes its ward or description.
pub(crate) async fn update(
    store: &Store,
    audit: &AuditSink,
    actor: &Actor,
    id: Uuid,
    change: RobotUpdate,
) -> Result<Robot, ApiError> {
    let name = change
        .name
        .as_deref()
        .map(|v| check_len("name", v, 1, 100))
        .transpose()?;
    let ward = change
        .ward
        .as_deref()
        .map(|v| check_len("ward", v, 1, 100))
        .transpose()?;
    let description = change
        .description
        .as_deref()
        .map(|v| check_len("description", v, 0, 1000))
        .transpose()?;
    in_service(store, id).await?;
    if !store
        .update_robot(id, name.as_deref(), ward.as_deref(), description.as_deref())
        .await?
    {
        // Retired (or gone) between the two statements.
        in_service(store, id).await?;
    }
    let changed: Vec<&str> = [
        ("name", name.is_some()),
        ("ward", ward.is_some()),
        ("description", description.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, given)| given.then_some(field))
    .collect();
    audit
        .record(
            kinds::ROBOT_UPDATED,
            Some(actor.user.id),
            Some(id),
            serde_json::json!({ "fields": changed }),
        )
        .await?;
    store
        .robot_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("robot"))
}

/// What retiring a robot needs besides the robot.
pub(crate) struct Retirement<'a> {
    pub store: &'a Store,
    pub audit: &'a AuditSink,
    pub hub: &'a NodeHub,
    pub config: &'a ApiConfig,
    pub now: DateTime<Utc>,
}

/// An admin retires robot `id` (see the module's documentation for what that ends). Retiring a
/// retired robot changes nothing and answers the same.
pub(crate) async fn retire(
    cx: Retirement<'_>,
    actor: &Actor,
    id: Uuid,
) -> Result<RobotRetired, ApiError> {
    let Retirement {
        store,
        audit,
        hub,
        config,
        now,
    } = cx;
    let Some(robot) = store.robot_by_id(id).await? else {
        return Err(ApiError::NotFound("robot"));
    };
    if robot.retired_at.is_some() || !store.retire_robot(id, now).await? {
        let robot = store
            .robot_by_id(id)
            .await?
            .ok_or(ApiError::NotFound("robot"))?;
        return Ok(RobotRetired {
            robot,
            cancelled_bookings: Vec::new(),
        });
    }
    // Its publisher first: the robot leaves the room before anyone is told the booking is off.
    let ttl = chrono::Duration::from_std(config.publish_token_ttl)
        .map_err(|_| ApiError::Config("publish_token_ttl is too large".into()))?;
    hub.deny(
        DenyTarget::Subject {
            sub: id.to_string(),
        },
        DenyScope::Access,
        Some(now),
        now + ttl,
        RevokeReason::SessionEnded,
    )
    .await?;
    // Every booking not yet over, until none is left: a booking whose robot check ran just
    // before the retirement may be written while this runs. (One written after the last look
    // is possible in theory; nobody can publish to its room any more.)
    let mut cancelled = Vec::new();
    loop {
        let open = store
            .list_bookings(&BookingFilter {
                robot_id: Some(id),
                participant: None,
                from: Some(now),
                to: None,
                limit: 1000,
            })
            .await?;
        let open: Vec<_> = open
            .into_iter()
            .filter(|b| b.status == BookingStatus::Confirmed && !cancelled.contains(&b.id))
            .collect();
        if open.is_empty() {
            break;
        }
        for b in open {
            if store.cancel_booking(b.id, now).await? {
                hub.deny(
                    DenyTarget::Booking {
                        booking: b.id.to_string(),
                    },
                    DenyScope::Access,
                    None,
                    b.ends_at,
                    RevokeReason::BookingCancelled,
                )
                .await?;
                audit
                    .record(
                        kinds::BOOKING_CANCELLED,
                        Some(actor.user.id),
                        Some(id),
                        serde_json::json!({ "booking": b.id, "reason": "robot_retired" }),
                    )
                    .await?;
            }
            cancelled.push(b.id);
        }
    }
    audit
        .record(
            kinds::ROBOT_RETIRED,
            Some(actor.user.id),
            Some(id),
            serde_json::json!({ "cancelled_bookings": cancelled }),
        )
        .await?;
    tracing::info!(robot = %id, bookings = cancelled.len(), "robot retired");
    let robot = store
        .robot_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("robot"))?;
    Ok(RobotRetired {
        robot,
        cancelled_bookings: cancelled,
    })
}

/// A new credential for robot `id`; the old one and every publish token it got stop working.
pub(crate) async fn rotate_credential(
    store: &Store,
    audit: &AuditSink,
    hub: &NodeHub,
    config: &ApiConfig,
    now: DateTime<Utc>,
    actor: &Actor,
    id: Uuid,
) -> Result<String, ApiError> {
    in_service(store, id).await?;
    let credential = secret::generate(ROBOT_PREFIX)?;
    if !store
        .set_robot_credential(id, &secret::digest(&credential))
        .await?
    {
        // Retired (or gone) since the check.
        in_service(store, id).await?;
    }
    let ttl = chrono::Duration::from_std(config.publish_token_ttl)
        .map_err(|_| ApiError::Config("publish_token_ttl is too large".into()))?;
    hub.deny(
        DenyTarget::Subject {
            sub: id.to_string(),
        },
        DenyScope::Access,
        Some(now),
        now + ttl,
        RevokeReason::CredentialRotated,
    )
    .await?;
    audit
        .record(
            kinds::ROBOT_CREDENTIAL_ROTATED,
            Some(actor.user.id),
            Some(id),
            serde_json::json!({}),
        )
        .await?;
    tracing::info!(robot = %id, "robot credential rotated");
    Ok(credential)
}

/// Is `credential` robot `id`'s? `Err(401)` if not, or if there is no such robot.
pub(crate) async fn check_credential(
    store: &Store,
    id: Uuid,
    credential: &str,
) -> Result<(), ApiError> {
    let refused = ApiError::Unauthenticated("unknown robot or wrong credential");
    let Some(hash) = store.robot_credential_hash(id).await? else {
        return Err(refused);
    };
    if !secret::matches(credential, &hash) {
        return Err(refused);
    }
    Ok(())
}

/// The robot's own token for publishing to its room (role `robot`).
pub(crate) async fn publish_token(
    store: &Store,
    audit: &AuditSink,
    signer: &TokenSigner,
    config: &ApiConfig,
    now: DateTime<Utc>,
    id: Uuid,
    credential: &str,
) -> Result<PublishTokenResponse, ApiError> {
    check_credential(store, id, credential).await?;
    let robot_name = store
        .robot_by_id(id)
        .await?
        .map(|r| r.name)
        .ok_or(ApiError::NotFound("robot"))?;
    let ttl = chrono::Duration::from_std(config.publish_token_ttl)
        .map_err(|_| ApiError::Config("publish_token_ttl is too large".into()))?;
    let expires_at = now + ttl;
    let room = id.to_string();
    let claims = Claims {
        sub: room.clone(),
        room: room.clone(),
        role: Role::Robot,
        can_control: false,
        booking: None,
        iat: unix(now),
        nbf: unix(now),
        exp: unix(expires_at),
        jti: Uuid::new_v4().to_string(),
    };
    let token = sign(signer, &claims)?;
    audit
        .record(
            kinds::TOKEN_PUBLISH,
            Some(id),
            Some(id),
            serde_json::json!({ "jti": claims.jti, "expires_at": expires_at }),
        )
        .await?;
    let expires_at = DateTime::from_timestamp(claims.exp as i64, 0).unwrap_or(expires_at);
    let ice_servers = config
        .turn
        .as_ref()
        .map(|t| t.ice_servers(&claims.jti, expires_at))
        .unwrap_or_default();
    Ok(PublishTokenResponse {
        robot_name,
        whip_url: config.whip_url(&room),
        room,
        token,
        expires_at,
        ice_servers,
    })
}

/// When the robot is booked, for any logged-in user planning a booking.
pub(crate) async fn busy_slots(
    store: &Store,
    now: DateTime<Utc>,
    id: Uuid,
    q: BusyQuery,
) -> Result<Vec<BusySlot>, ApiError> {
    if store.robot_by_id(id).await?.is_none() {
        return Err(ApiError::NotFound("robot"));
    }
    let from = instants::query("from", q.from)?.unwrap_or(now);
    let to = match instants::query("to", q.to)? {
        Some(to) => to,
        None => from
            .checked_add_signed(chrono::Duration::days(7))
            .ok_or_else(|| ApiError::BadRequest("from is too late".into()))?,
    };
    if to <= from || to - from > chrono::Duration::days(62) {
        return Err(ApiError::validation(
            "to must be after from, and at most 62 days later",
        ));
    }
    let bookings = store
        .list_bookings(&BookingFilter {
            robot_id: Some(id),
            participant: None,
            from: Some(from),
            to: Some(to),
            limit: 1000,
        })
        .await?;
    Ok(bookings
        .into_iter()
        .filter(|b| b.status == BookingStatus::Confirmed)
        .map(|b| BusySlot {
            starts_at: b.starts_at,
            ends_at: b.ends_at,
        })
        .collect())
}
