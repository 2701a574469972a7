-- Which API a call came through: `berth` (/api/v1 and its WebSockets) or `docker` (the Docker
-- Engine API face).
ALTER TABLE audit ADD COLUMN api TEXT NOT NULL DEFAULT 'berth';
