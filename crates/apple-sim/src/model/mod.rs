//! The simulated service's data: organizations' locations with their assets, users and
//! assignments, and the version log that makes `sinceVersionId` deltas possible.

pub mod assignments;
pub mod location;
pub mod subscriptions;
pub mod users;
pub mod versions;

pub use assignments::{AssignmentStore, Holder};
pub use location::{AssetRecord, Location, NotificationConfig, Program};
pub use subscriptions::{Seat, SubscriptionRecord, Subscriptions};
pub use users::{UserRecord, UserTable};
pub use versions::VersionLog;
