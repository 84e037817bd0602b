-- Schema version 1 (SQLite): the token table, its indexes, and the meta table
-- that holds the persisted log index.
--
-- Keys and hashes are BLOBs (binary comparison: two keys that differ only in
-- the case of their text form can never collide). Times are Unix nanoseconds,
-- NULL when unset. end_of_use = min(expires, revoked_at) feeds the reaper.
-- idx is the log index of the write that last changed the row. STRICT makes
-- SQLite refuse values of the wrong storage class. Foreign keys are not used:
-- rows are versioned by idx, and a child may outlive its parent (orphans).
-- The table keeps its rowid: rows are appended in rowid order and the random
-- keys go to a small index. WITHOUT ROWID clusters the ~250-byte rows on
-- their random key, so that every insert dirties a full row page at a
-- random place; batches of 1000 rows were 15-50% slower that way
-- (BenchmarkSQLiteWriteChunk), for no measurable gain on Get.
CREATE TABLE tokens (
    token_key   BLOB    NOT NULL PRIMARY KEY CHECK (length(token_key) = 16),
    idx         INTEGER NOT NULL CHECK (idx >= 0),
    hash        BLOB             CHECK (hash IS NULL OR length(hash) = 32),
    format      TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    username    TEXT    NOT NULL,
    realm       TEXT    NOT NULL,
    uid         INTEGER,
    scopes      TEXT    NOT NULL,
    name        TEXT,
    service     TEXT,
    client_id   TEXT,
    parent_key  BLOB             CHECK (parent_key IS NULL OR length(parent_key) = 16),
    credentials BLOB,
    sealed      BLOB,
    created     INTEGER NOT NULL,
    expires     INTEGER,
    last_used   INTEGER,
    revoked_at  INTEGER,
    end_of_use  INTEGER
) STRICT;

-- Every index that serves an ordered query ends with token_key, the
-- tie-breaker of every order, so that no query sorts.
--
-- List by user (and type), newest first.
CREATE INDEX tokens_user_type_created ON tokens (username, type, created, token_key);
-- List by type only (admin listings).
CREATE INDEX tokens_type_created ON tokens (type, created, token_key);
-- Stats: live sessions per user and live user tokens, read from the index
-- alone (without it, counting 100k sessions took 0.5 s instead of 20 ms).
CREATE INDEX tokens_live ON tokens (type, revoked_at, expires, username);
-- Children of a set of parents; Orphaned.
CREATE INDEX tokens_parent ON tokens (parent_key) WHERE parent_key IS NOT NULL;
-- Ended (the reaper), oldest first.
CREATE INDEX tokens_end_of_use ON tokens (end_of_use, token_key) WHERE end_of_use IS NOT NULL;
-- Newest (warm start) with its (created, key) cursor, and List without filters.
CREATE INDEX tokens_created_key ON tokens (created, token_key);
-- Named: name uniqueness per user.
CREATE INDEX tokens_user_name ON tokens (username, name) WHERE name IS NOT NULL;

CREATE TABLE meta (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO meta (name, value) VALUES ('persisted_index', 0);
