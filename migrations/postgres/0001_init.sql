-- Bedside control plane, PostgreSQL schema.

-- For the exclusion constraint on bookings (uuid equality inside a GiST index). btree_gist is a
-- trusted extension: a database owner may create it without being a superuser.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'doctor', 'student')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

-- One row per login. Only digests of the tokens are stored.
CREATE TABLE sessions (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_hash       text NOT NULL UNIQUE,
    refresh_hash      text NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    access_expires_at timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE robots (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    ward            text NOT NULL,
    description     text NOT NULL,
    credential_hash text NOT NULL,
    created_at      timestamptz NOT NULL
);

CREATE TABLE bookings (
    id           uuid PRIMARY KEY,
    robot_id     uuid NOT NULL REFERENCES robots (id),
    doctor_id    uuid NOT NULL REFERENCES users (id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    note         text,
    created_at   timestamptz NOT NULL,
    cancelled_at timestamptz,
    CHECK (ends_at > starts_at),
    -- No double booking: two live bookings of one robot may not share an instant. Half-open
    -- ranges, so back-to-back slots are allowed; cancelled rows do not count.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        robot_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status <> 'cancelled')
);
CREATE INDEX bookings_doctor_time ON bookings (doctor_id, starts_at);

CREATE TABLE invitations (
    booking_id uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('consultant', 'observer')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (booking_id, user_id)
);
CREATE INDEX invitations_user ON invitations (user_id);

-- Append-only: the store has no UPDATE or DELETE for it, and this trigger refuses them.
CREATE TABLE audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL,
    kind   text NOT NULL,
    actor  text,
    room   text,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_kind ON audit_log (kind, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_room ON audit_log (room, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_no_change
BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
