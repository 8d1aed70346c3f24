-- The admin console: robots are retired rather than deleted (bookings and the audit log keep
-- pointing at them), and are hidden from booking from then on.

-- Set once a robot is retired: no credential works, no booking can be made, its future bookings
-- were cancelled.
ALTER TABLE robots ADD COLUMN retired_at timestamptz;

-- The console searches and pages users by display name.
CREATE INDEX users_display_name ON users (display_name, id);
