-- Schema version 1 (MySQL / MariaDB): same tables as the SQLite schema.
--
-- MySQL commits DDL implicitly, so a migration cannot be one transaction
-- there: every statement is written to be re-runnable (IF NOT EXISTS, INSERT
-- IGNORE), and a migration interrupted half-way is completed by the next
-- start (the GET_LOCK of the dialect keeps two nodes from running it at once).
--
-- Every column that a query compares is binary, so that lookups are exact
-- and case-sensitive like SQLite's, whatever the server's default collation:
--   - keys and hashes are VARBINARY with a CHECK on their length (BINARY(16)
--     would silently pad a short value with zero bytes into another key);
--   - username and name are VARBINARY holding UTF-8: a _bin collation would
--     still be PAD SPACE in MariaDB and before MySQL 8's 0900 collations
--     ('alice' = 'alice '), and the token model limits them in bytes;
--   - type, format and scopes are ASCII with a binary collation.
-- Text that is only displayed (realm, service, client_id) is utf8mb4_bin.
-- Times are BIGINT Unix nanoseconds, NULL when unset (no DATETIME, no time
-- zone, no parseTime). idx is the log index of the write that last changed
-- the row. end_of_use = min(expires, revoked_at) feeds the reaper. Foreign
-- keys are not used: rows are versioned by idx, and a child may outlive its
-- parent (orphans), possibly in another shard.
CREATE TABLE IF NOT EXISTS tokens (
    token_key   VARBINARY(16)  NOT NULL,
    idx         BIGINT         NOT NULL,
    hash        VARBINARY(32)  NULL,
    format      VARCHAR(16)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    type        VARCHAR(16)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username    VARBINARY(256) NOT NULL,
    realm       VARCHAR(128)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    uid         BIGINT         NULL,
    scopes      TEXT           CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name        VARBINARY(256) NULL,
    service     VARCHAR(256)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    client_id   VARCHAR(256)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    parent_key  VARBINARY(16)  NULL,
    credentials MEDIUMBLOB     NULL,
    sealed      MEDIUMBLOB     NULL,
    created     BIGINT         NOT NULL,
    expires     BIGINT         NULL,
    last_used   BIGINT         NULL,
    revoked_at  BIGINT         NULL,
    end_of_use  BIGINT         NULL,
    PRIMARY KEY (token_key),
    KEY tokens_user_type_created (username, type, created, token_key),
    KEY tokens_type_created (type, created, token_key),
    KEY tokens_live (type, revoked_at, expires, username),
    KEY tokens_parent (parent_key),
    KEY tokens_end_of_use (end_of_use, token_key),
    KEY tokens_created_key (created, token_key),
    KEY tokens_user_name (username, name),
    CONSTRAINT tokens_key_len CHECK (LENGTH(token_key) = 16),
    CONSTRAINT tokens_idx_pos CHECK (idx >= 0),
    CONSTRAINT tokens_hash_len CHECK (hash IS NULL OR LENGTH(hash) = 32),
    CONSTRAINT tokens_parent_len CHECK (parent_key IS NULL OR LENGTH(parent_key) = 16)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

-- meta holds the persisted log index and, for a sharded store, which shard
-- of how many this database is.
CREATE TABLE IF NOT EXISTS meta (
    name  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

INSERT IGNORE INTO meta (name, value) VALUES ('persisted_index', 0);
