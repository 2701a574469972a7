-- Access (users, teams, memberships, API tokens, browser sessions), resource ownership by team,
-- and the history beyond events: the audit log, finished containers, builds.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    -- PHC string (argon2id); NULL for an account that logs in with tokens only.
    password_hash TEXT,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created TEXT NOT NULL
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE memberships (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, team_id)
);

-- Bearer tokens. Only the SHA-256 of the secret is kept: tokens are 256 random bits, so a
-- fast hash is enough (no dictionary to guess from) and a lookup is one index probe.
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- A token acts with at most this role (never more than its user's).
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created TEXT NOT NULL,
    last_used TEXT
);

-- Browser sessions: the cookie's secret, hashed like tokens, and the CSRF token the page
-- sends back in a header on every mutating request.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);

-- Which team owns a container / an image. A resource without a row belongs to the admins
-- (made over the unix socket or by an admin without a team).
CREATE TABLE container_owners (
    container_id TEXT PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE
);

CREATE TABLE image_owners (
    image_id TEXT NOT NULL,
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (image_id, team_id)
);

-- Every mutating call and every exec session: who, what, on what, how it ended.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    -- The user's name; `root` for the unix socket.
    user TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    -- HTTP status of the answer; for an exec session, its exit code in `message`.
    status INTEGER NOT NULL,
    -- Exec sessions: the container and the command; else empty.
    container TEXT NOT NULL DEFAULT '',
    command TEXT NOT NULL DEFAULT '',
    -- When a long call (an exec session, a stream) ended, RFC 3339; NULL while running.
    ended TEXT,
    message TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_user ON audit (user);

-- Containers that exited: with their exit codes and times, kept after the container is removed.
CREATE TABLE finished_containers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id TEXT NOT NULL,
    name TEXT NOT NULL,
    image TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    oom INTEGER NOT NULL DEFAULT 0,
    finished TEXT NOT NULL
);

CREATE INDEX finished_containers_container ON finished_containers (container_id);

-- Builds: what was built, by whom, how it ended, and the build's log.
CREATE TABLE builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    image_id TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    outcome TEXT CHECK (outcome IN ('success', 'failure')),
    log TEXT NOT NULL DEFAULT ''
);
