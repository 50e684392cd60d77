//! Budgets: what a request may spend, reserved before the call and settled after.
//!
//! - `window.rs`: budget periods (`budget_duration`), aligned on the calendar;
//! - `scope.rs`: what spends (key, user, team, member, end user, proxy, key×model) and its
//!   spend counter per period;
//! - `charges.rs`: which scopes a request spends in, with their budgets;
//! - `plan.rs`: a request's charges, its reservation and settlement as Store batches;
//! - `spend.rs`: reading a scope's spend in its current period.

pub mod charges;
pub mod plan;
pub mod scope;
pub mod spend;
pub mod window;

pub use plan::{Charge, Plan};
pub use scope::Scope;
pub use window::{Calendar, Duration};
