-- Hardened access: API tokens that expire, browser sessions that end when idle, and the client
-- address of authentication failures and logins in the audit log.

-- When the token stops working, RFC 3339 UTC; NULL: never.
ALTER TABLE tokens ADD COLUMN expires TEXT;

-- The last request of the session (updated at most once a minute), RFC 3339 UTC; a session
-- idle for longer than the daemon's idle timeout is over. NULL: not used since its login.
ALTER TABLE sessions ADD COLUMN last_seen TEXT;

-- The client's IP address, for logins and authentication failures; empty when not known (the
-- unix socket, other calls).
ALTER TABLE audit ADD COLUMN address TEXT NOT NULL DEFAULT '';
