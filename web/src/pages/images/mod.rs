//! Images: the list (/images) with tag, push and remove; pull and push with a progress bar per
//! layer; build; and one image's layers and history (/images/:name).

mod build;
pub mod detail;
pub mod list;
pub mod transfer;

pub use detail::ImagePage;
pub use list::Images;
