-- Named volumes belong to the team that made them (explicitly, or on demand by a container
-- create or a stack up), anonymous ones to their container's team; a volume no team owns is
-- shared, as an image is.
CREATE TABLE volume_owners (
    volume_name TEXT PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE
);
