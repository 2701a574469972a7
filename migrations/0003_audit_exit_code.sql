-- The exit code of an exec session's process, in its audit row (NULL for calls, for a session
-- still running, and when the end could not be known).
ALTER TABLE audit ADD COLUMN exit_code INTEGER;
