//! Containers: the list (/containers), one container (/containers/:name) with its logs, stats
//! and terminal tabs, and the actions both offer. The run form is in [`crate::pages::run`].

pub mod actions;
pub mod detail;
pub mod list;
mod logs;
mod stats;
mod terminal;

pub use detail::ContainerPage;
pub use list::Containers;
