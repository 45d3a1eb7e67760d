-- Fixed-window rate-limit counters (RateLimitStore), one row per opaque
-- key of at most 256 bytes. Keys are global, not tenant-scoped: the
-- caller puts the tenant in the key. A window's end is fixed when it
-- opens; a hit at or after it opens a new one, and cleanup deletes rows
-- by it. `hits` saturates at 2^32 - 1.
CREATE TABLE cs_rate_limits (
    key          TEXT PRIMARY KEY NOT NULL CHECK (length(CAST(key AS BLOB)) <= 256),
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    hits         INTEGER NOT NULL CHECK (hits BETWEEN 1 AND 4294967295)
) STRICT, WITHOUT ROWID;
CREATE INDEX cs_rate_limits_end ON cs_rate_limits (window_end);
