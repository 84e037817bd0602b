-- Schema version 2 (MySQL / MariaDB): the audience of a JWT (its aud claim,
-- space separated), NULL for every other token. Rows written under version 1
-- keep NULL, which is what they mean. MySQL has no ADD COLUMN IF NOT EXISTS:
-- a re-run after an interrupted migration meets "duplicate column" (1060),
-- which the dialect reads as already applied (mysqlDialect.alreadyApplied).
ALTER TABLE tokens ADD COLUMN audience VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
