//! The daemon's history beyond the event log: the audit log, build records and finished
//! containers. `store` writes them; `queries` answers `GET /api/v1/history/*`.

pub mod queries;
pub mod store;
