-- The API's authority over media nodes and logins: disabled users, control revoked on a
-- booking, the deny list pushed to media nodes, latched rooms, and failed-login counters that
-- hold across API replicas.

-- Set while the user is disabled: no login, no session, no join token passes a media node.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- Set when an administrator revoked the lease during this booking: its tokens carry no control.
ALTER TABLE bookings ADD COLUMN control_revoked_at INTEGER;

-- Deny entries for media nodes (JSON of bedside_proto::node::Deny). `seq` orders them, so an API
-- replica can pass on the entries another replica wrote; `until_at` is when no token they match
-- can still be valid, after which the row is deleted.
CREATE TABLE node_denies (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    deny       TEXT NOT NULL,
    until_at   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX node_denies_until ON node_denies (until_at);

-- Rooms whose e-stop a participant latched and nobody cleared, so that a restarted media plane
-- comes back latched.
CREATE TABLE room_latches (
    room       TEXT PRIMARY KEY NOT NULL,
    latched_by TEXT,
    latched_at INTEGER NOT NULL
);

-- Failed-login back-off, per (account, address) and per address. Keys are digests.
CREATE TABLE login_throttle (
    key             TEXT PRIMARY KEY NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    blocked_until   INTEGER NOT NULL
);
CREATE INDEX login_throttle_blocked ON login_throttle (blocked_until, last_failure_at);
