-- The daemon's history: every mutating operation on the engine, whether it succeeded or not.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- When the operation ended, RFC 3339 (UTC).
    time TEXT NOT NULL,
    -- What kind of object it touched: image, ...
    type TEXT NOT NULL,
    -- What was done: import, tag, untag, delete, load, prune, ...
    action TEXT NOT NULL,
    -- The object's name, as given by the caller or reported by the engine.
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    -- The error message on failure, what changed on success.
    message TEXT NOT NULL DEFAULT ''
);

CREATE INDEX events_type_subject ON events (type, subject);
