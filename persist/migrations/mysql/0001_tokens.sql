-- Schema version 1 (MySQL / MariaDB): same tables as the SQLite schema.
--
-- MySQL commits DDL implicitly, so a migration cannot be one transaction
-- there: every statement is written to be re-runnable (IF NOT EXISTS, INSERT
-- IGNORE), and a migration interrupted half-way is completed by the next
-- start. Keys and hashes are BINARY/VARBINARY; every text column that is
-- compared uses a binary collation (utf8mb4_bin, ascii_bin), so that lookups
-- are exact and case-sensitive like SQLite's.
CREATE TABLE IF NOT EXISTS tokens (
    token_key   BINARY(16)     NOT NULL,
    idx         BIGINT         NOT NULL,
    hash        VARBINARY(32)  NULL,
    format      VARCHAR(16)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    type        VARCHAR(16)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username    VARCHAR(256)   NOT NULL,
    realm       VARCHAR(128)   NOT NULL,
    uid         BIGINT         NULL,
    scopes      TEXT           CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name        VARCHAR(256)   NULL,
    service     VARCHAR(256)   NULL,
    client_id   VARCHAR(256)   NULL,
    parent_key  BINARY(16)     NULL,
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
    KEY tokens_user_name (username, name)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE IF NOT EXISTS meta (
    name  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

INSERT IGNORE INTO meta (name, value) VALUES ('persisted_index', 0);
