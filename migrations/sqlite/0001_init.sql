-- Bedside control plane, SQLite schema.
-- Ids are UUIDs as lowercase hyphenated TEXT. Times are INTEGER microseconds since the Unix
-- epoch (UTC), so comparisons are plain integer comparisons.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'doctor', 'student')),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- One row per login. Only digests of the tokens are stored.
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY NOT NULL,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_hash       TEXT NOT NULL UNIQUE,
    refresh_hash      TEXT NOT NULL UNIQUE,
    created_at        INTEGER NOT NULL,
    last_seen_at      INTEGER NOT NULL,
    access_expires_at INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE robots (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    ward            TEXT NOT NULL,
    description     TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE bookings (
    id           TEXT PRIMARY KEY NOT NULL,
    robot_id     TEXT NOT NULL REFERENCES robots (id),
    doctor_id    TEXT NOT NULL REFERENCES users (id),
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    note         TEXT,
    created_at   INTEGER NOT NULL,
    cancelled_at INTEGER,
    CHECK (ends_at > starts_at)
);
CREATE INDEX bookings_robot_time ON bookings (robot_id, starts_at);
CREATE INDEX bookings_doctor_time ON bookings (doctor_id, starts_at);

-- The store checks for overlaps inside a BEGIN IMMEDIATE transaction (so it can report the
-- clashing slot); these triggers are the backstop for any other writer. A trigger runs while
-- its statement holds SQLite's single write lock, so the check and the write are atomic.
-- Slots are half-open [starts_at, ends_at): back-to-back bookings do not overlap.
CREATE TRIGGER bookings_no_overlap_insert
BEFORE INSERT ON bookings
WHEN NEW.status <> 'cancelled'
BEGIN
    SELECT RAISE(ABORT, 'booking_overlap')
    WHERE EXISTS (
        SELECT 1 FROM bookings b
        WHERE b.robot_id = NEW.robot_id
          AND b.status <> 'cancelled'
          AND b.starts_at < NEW.ends_at
          AND b.ends_at > NEW.starts_at
    );
END;

CREATE TRIGGER bookings_no_overlap_update
BEFORE UPDATE OF robot_id, starts_at, ends_at, status ON bookings
WHEN NEW.status <> 'cancelled'
BEGIN
    SELECT RAISE(ABORT, 'booking_overlap')
    WHERE EXISTS (
        SELECT 1 FROM bookings b
        WHERE b.id <> NEW.id
          AND b.robot_id = NEW.robot_id
          AND b.status <> 'cancelled'
          AND b.starts_at < NEW.ends_at
          AND b.ends_at > NEW.starts_at
    );
END;

CREATE TABLE invitations (
    booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL CHECK (role IN ('consultant', 'observer')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (booking_id, user_id)
);
CREATE INDEX invitations_user ON invitations (user_id);

-- Append-only: the store has no UPDATE or DELETE for it, and these triggers refuse them.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    actor  TEXT,
    room   TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_kind ON audit_log (kind, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_room ON audit_log (room, id);

CREATE TRIGGER audit_log_no_update
BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete
BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
