//! The plain domain types: users, robots, bookings and invitations, sessions, audit entries,
//! and the filters the store is asked with. Every other module of the crate uses them; they use
//! nothing of the crate but `error` (for the "unknown value in the database" case).
//!
//! Not here: rules about these types (the domain modules), request and response shapes that only
//! one HTTP route uses (next to the rule that reads them), or SQL (`store`).

mod audit;
mod booking;
mod login;
mod robot;
mod session;
mod user;

pub use audit::{AuditEntry, AuditFilter, NewAuditEntry};
pub use booking::{
    Booking, BookingFilter, BookingStatus, Invitation, InvitationRole, Participation,
};
pub use login::Throttle;
pub use robot::Robot;
pub use session::{Actor, SessionRecord};
pub use user::{User, UserFilter, UserRole};
