//! What the API tells its media nodes through the node channel, read from the hub the way a node
//! reads it: every push (cancel, invitation removed, credential rotated, lease revoked), deny
//! entries and room latches in the snapshot after a restart, and entries passed on between API
//! replicas. Disabling a user is in `users.rs`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bedside_api::UserRole;
use bedside_proto::node::{
    Deny, DenyScope, DenyTarget, Latch, NodeCommand, NodeReport, RevokeReason,
};
use bedside_proto::Claims;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::broadcast;

use crate::common::{expect, id_of, minutes, parse_time, Backend, TestApp};

backend_tests!(
    cancelling_denies_the_booking,
    removing_an_invitation_denies_that_participant,
    rotating_a_credential_denies_the_robot,
    revoking_the_lease_withdraws_control,
    denies_and_latches_survive_a_restart,
    replicas_pass_on_each_others_denies,
);

/// The next deny entry a subscriber gets (other commands are skipped); fails after 10 s.
pub async fn next_deny(rx: &mut broadcast::Receiver<NodeCommand>) -> Deny {
    loop {
        match next_command(rx).await {
            NodeCommand::Deny { deny } => return deny,
            _ => continue,
        }
    }
}

/// The next command a subscriber gets; fails after 10 s.
pub async fn next_command(rx: &mut broadcast::Receiver<NodeCommand>) -> NodeCommand {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a command within 10 s")
        .expect("the hub is open")
}

/// A join token's claims, read without checking the signature or the times (the API's clock
/// may be shifted; the media node's checks are not what these tests are about).
pub fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

fn booking_id(b: &serde_json::Value) -> String {
    id_of(b).to_string()
}

async fn cancelling_denies_the_booking(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let booking = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    let token = app.join_ok(&doctor.token, &booking).await;
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();

    app.cancel_ok(&doctor.token, &booking).await;
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny,
        Deny {
            target: DenyTarget::Booking {
                booking: booking_id(&booking)
            },
            scope: DenyScope::Access,
            issued_until: None,
            until: parse_time(&booking["ends_at"]).timestamp() as u64,
            reason: RevokeReason::BookingCancelled,
        }
    );
    assert!(deny.matches(&claims_of(token["token"].as_str().unwrap())));
    // Cancelling again changes nothing and tells nobody anything new.
    app.cancel_ok(&doctor.token, &booking).await;
    assert!(rx.try_recv().is_err());
}

async fn removing_an_invitation_denies_that_participant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, _) = app.robot().await;
    let booking = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    app.invite_ok(&doctor.token, &booking, student.id, "observer")
        .await;
    let old = app.join_ok(&student.token, &booking).await;
    let doctors = app.join_ok(&doctor.token, &booking).await;
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();

    let path = format!(
        "/api/bookings/{}/invitations/{}",
        booking_id(&booking),
        student.id
    );
    // The cut is taken on the server's clock during the call; a second may tick over meanwhile.
    let before = app.clock.now().timestamp() as u64;
    expect(
        StatusCode::NO_CONTENT,
        app.delete(&path, &doctor.token).await,
    );
    let after = app.clock.now().timestamp() as u64;
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny.target,
        DenyTarget::Participant {
            sub: student.id.to_string(),
            booking: booking_id(&booking)
        }
    );
    assert_eq!(
        (deny.scope, deny.reason),
        (DenyScope::Access, RevokeReason::InvitationRemoved)
    );
    let cut = deny.issued_until.expect("a time cut");
    assert!(
        (before..=after).contains(&cut),
        "{cut} in {before}..={after}"
    );
    assert_eq!(
        deny.until,
        parse_time(&booking["ends_at"]).timestamp() as u64
    );
    assert!(deny.matches(&claims_of(old["token"].as_str().unwrap())));
    assert!(
        !deny.matches(&claims_of(doctors["token"].as_str().unwrap())),
        "only that participant"
    );

    // Invited again (a second later): the new token passes the entry, the old one does not.
    app.clock.advance(chrono::Duration::seconds(1));
    app.invite_ok(&doctor.token, &booking, student.id, "observer")
        .await;
    let new = app.join_ok(&student.token, &booking).await;
    assert!(!deny.matches(&claims_of(new["token"].as_str().unwrap())));
    assert!(deny.matches(&claims_of(old["token"].as_str().unwrap())));
}

async fn rotating_a_credential_denies_the_robot(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let (robot, credential) = app.robot().await;
    let publish = |credential: String| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::POST,
                &format!("/api/robots/{robot}/publish-token"),
                Some(&format!("Robot {credential}")),
                None,
            )
            .await
        }
    };
    let old = expect(StatusCode::OK, publish(credential.clone()).await);
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();

    // The cut is taken on the server's clock during the call; a second may tick over meanwhile.
    let before = app.clock.now();
    let rotated = expect(
        StatusCode::OK,
        app.post(
            &format!("/api/robots/{robot}/credential"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    let after = app.clock.now();
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny.target,
        DenyTarget::Subject {
            sub: robot.to_string()
        }
    );
    assert_eq!(
        (deny.scope, deny.reason),
        (DenyScope::Access, RevokeReason::CredentialRotated)
    );
    let cut = deny.issued_until.expect("a time cut") as i64;
    assert!(
        (before.timestamp()..=after.timestamp()).contains(&cut),
        "{cut} in {before}..={after}"
    );
    // No publish token lives longer than 12 h.
    assert_eq!(deny.until as i64, cut + 12 * 3600, "{deny:?}");
    assert!(deny.matches(&claims_of(old["token"].as_str().unwrap())));

    // The old credential gets nothing; the new one's tokens (a second later) pass.
    assert_eq!(publish(credential).await.0, StatusCode::UNAUTHORIZED);
    app.clock.advance(chrono::Duration::seconds(1));
    let new = expect(
        StatusCode::OK,
        publish(rotated["credential"].as_str().unwrap().to_string()).await,
    );
    assert!(!deny.matches(&claims_of(new["token"].as_str().unwrap())));
}

async fn revoking_the_lease_withdraws_control(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let (idle_robot, _) = app.robot().await;
    let booking = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    let before = app.join_ok(&doctor.token, &booking).await;
    assert_eq!(before["can_control"], true);
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();

    // Answered without any media node connected: the entry waits in the database.
    let path = format!("/api/robots/{robot}/lease/revoke");
    let answer = expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    assert_eq!(answer["room"], robot.to_string());
    assert_eq!(answer["booking"], booking_id(&booking));
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny,
        Deny {
            target: DenyTarget::Booking {
                booking: booking_id(&booking)
            },
            scope: DenyScope::Control,
            issued_until: None,
            until: parse_time(&booking["ends_at"]).timestamp() as u64,
            reason: RevokeReason::ControlRevoked,
        }
    );
    assert_eq!(
        next_command(&mut rx).await,
        NodeCommand::RevokeLease {
            room: robot.to_string()
        }
    );

    // The holder cannot get control back for this booking, by joining again or otherwise.
    let again = app.join_ok(&doctor.token, &booking).await;
    assert_eq!(again["can_control"], false);
    assert!(!claims_of(again["token"].as_str().unwrap()).can_control);
    let seen = expect(
        StatusCode::OK,
        app.get(
            &format!("/api/bookings/{}", booking_id(&booking)),
            &doctor.token,
        )
        .await,
    );
    assert!(seen["control_revoked_at"].is_string(), "{seen}");
    // A new booking gives it back.
    let other = app
        .book_from_now(&doctor.token, idle_robot, minutes(0), minutes(30))
        .await;
    assert_eq!(
        app.join_ok(&doctor.token, &other).await["can_control"],
        true
    );

    // A room with no booking on: the lease is revoked, nobody's control is withdrawn.
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();
    let empty = app.robot().await.0;
    let answer = expect(
        StatusCode::OK,
        app.post(
            &format!("/api/robots/{empty}/lease/revoke"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    assert!(answer["booking"].is_null(), "{answer}");
    assert_eq!(
        next_command(&mut rx).await,
        NodeCommand::RevokeLease {
            room: empty.to_string()
        }
    );
    let (status, _) = app
        .post(
            &format!("/api/robots/{}/lease/revoke", uuid::Uuid::new_v4()),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let revoked = app
        .audit_kind(&admin.token, "room.lease_revoked_by_admin")
        .await;
    assert_eq!(revoked.len(), 2);
    assert_eq!(revoked[1]["detail"]["booking"], booking_id(&booking));
}

async fn denies_and_latches_survive_a_restart(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let short = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(10))
        .await;
    let long = app
        .book_from_now(&doctor.token, robot, minutes(10), minutes(120))
        .await;
    app.cancel_ok(&doctor.token, &short).await;
    app.cancel_ok(&doctor.token, &long).await;
    let (room, other_room) = (robot.to_string(), uuid::Uuid::new_v4().to_string());
    let hub = app.api.node_hub();
    let latch = |room: &str, kind: &str| NodeReport::RoomEvent {
        room: room.to_string(),
        kind: kind.to_string(),
        actor: Some(doctor.id.to_string()),
        detail: json!({}),
    };
    hub.report(latch(&room, "estop_latched"));
    hub.report(latch(&other_room, "estop_latched"));
    hub.report(latch(&other_room, "estop_cleared"));

    // Stopped and started again: the snapshot a node gets has both entries and the latch.
    let app = app.restart().await;
    let (snapshot, _) = app.api.node_hub().subscribe().await.unwrap();
    let NodeCommand::Snapshot { denies, latches } = snapshot else {
        panic!("not a snapshot: {snapshot:?}");
    };
    let targets: Vec<&DenyTarget> = denies.iter().map(|d| &d.target).collect();
    assert_eq!(
        targets,
        vec![
            &DenyTarget::Booking {
                booking: booking_id(&short)
            },
            &DenyTarget::Booking {
                booking: booking_id(&long)
            }
        ]
    );
    assert_eq!(
        latches,
        vec![Latch {
            room: room.clone(),
            by: Some(doctor.id.to_string())
        }]
    );

    // Once the short booking is over, its entry is pruned; cleared rooms stay cleared.
    app.clock.advance(minutes(11));
    app.api.node_hub().report(latch(&room, "estop_cleared"));
    let app = app.restart().await;
    let (snapshot, _) = app.api.node_hub().subscribe().await.unwrap();
    let NodeCommand::Snapshot { denies, latches } = snapshot else {
        panic!("not a snapshot: {snapshot:?}");
    };
    assert_eq!(denies.len(), 1, "{denies:?}");
    assert_eq!(
        denies[0].target,
        DenyTarget::Booking {
            booking: booking_id(&long)
        }
    );
    assert!(latches.is_empty(), "{latches:?}");
    // The room events went to the audit log too.
    let admin = app.user(UserRole::Admin).await;
    assert_eq!(
        app.audit_kind(&admin.token, "room.estop_latched")
            .await
            .len(),
        2
    );
    assert_eq!(
        app.audit_kind(&admin.token, "room.estop_cleared")
            .await
            .len(),
        2
    );
}

async fn replicas_pass_on_each_others_denies(backend: Backend) {
    let app = TestApp::start(backend).await;
    let other = app.replica().await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let booking = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    // A node follows the other replica; the cancel is handled by this one.
    let (_, mut rx) = other.api.node_hub().subscribe().await.unwrap();
    app.cancel_ok(&doctor.token, &booking).await;
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny.target,
        DenyTarget::Booking {
            booking: booking_id(&booking)
        }
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), rx.recv())
            .await
            .is_err(),
        "passed on once"
    );
}
