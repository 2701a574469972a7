-- The repositories this node serves as a registry (`berth serve --registry-listen`): the team
-- that owns each (its first push's team; NULL: shared, as an image no team owns) and whether
-- anyone may pull it without credentials. A repository without a row belongs to the teams of
-- its local images.
CREATE TABLE registry_repositories (
    name TEXT PRIMARY KEY,
    team_id INTEGER REFERENCES teams (id) ON DELETE SET NULL,
    public INTEGER NOT NULL DEFAULT 0
);

-- Remote registries as objects (`berth registry add`): shared by pull, push, search and the
-- dashboard. team_id NULL: every team may use it; else that team only.
CREATE TABLE registries (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    insecure INTEGER NOT NULL DEFAULT 0,
    team_id INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
