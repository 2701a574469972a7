//! Attach and exec streams over an upgraded HTTP connection (Docker's hijack).
