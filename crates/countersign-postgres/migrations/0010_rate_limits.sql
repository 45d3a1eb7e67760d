-- Fixed-window rate-limit counters (RateLimitStore), one row per opaque
-- key of at most 256 bytes, shared by every node on the database. Keys
-- are global, not tenant-scoped: the caller puts the tenant in the key.
--
-- A window's end is fixed when it opens; a hit at or after it opens a new
-- one (in the same `INSERT ... ON CONFLICT DO UPDATE` that counts, so
-- concurrent hits on any number of nodes are counted exactly), and
-- cleanup deletes rows by it. `hits` saturates at 2^32 - 1.

CREATE TABLE cs_rate_limits (
    key          text        COLLATE "C" PRIMARY KEY CHECK (octet_length(key) <= 256),
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    hits         bigint      NOT NULL CHECK (hits BETWEEN 1 AND 4294967295)
);
CREATE INDEX cs_rate_limits_end ON cs_rate_limits (window_end);
