//! UI pieces several pages use: the page header, the loading / error / empty states, notices,
//! badges, form fields and buttons, the team picker and the terminal.

pub mod badges;
pub mod brand_mark;
pub mod form_fields;
pub mod list_actions;
pub mod meter;
pub mod notice;
pub mod page_header;
pub mod states;
pub mod table;
pub mod team_picker;
pub mod terminal;
pub mod xterm;

pub use badges::{HealthBadge, LiveBadge, StateBadge};
pub use brand_mark::BrandMark;
pub use form_fields::{
    error_field, field_error, field_errors, field_invalid, focus_first_error, send_create, CreateActions,
    CreateButton,
};
pub use list_actions::{on_created, prune, remove_and_leave, remove_row};
pub use meter::Meter;
pub use notice::{Notice, NoticeLine};
pub use page_header::{set_title, PageHeader};
pub use states::{ErrorPanel, ListStates, Loading};
pub use table::Table;
pub use team_picker::TeamPicker;
