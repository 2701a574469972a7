//! Networks: the list (driver, subnet, gateway, attached containers), create with a subnet,
//! one network's attached containers, remove and prune. Follows the event feed.

mod create;
pub mod detail;
pub mod list;

pub use detail::NetworkPage;
pub use list::Networks;

/// Networks the daemon makes itself; they cannot be removed.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];
