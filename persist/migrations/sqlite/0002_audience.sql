-- Schema version 2 (SQLite): the audience of a JWT (its aud claim, space
-- separated), NULL for every other token. Rows written under version 1 keep
-- NULL, which is what they mean.
ALTER TABLE tokens ADD COLUMN audience TEXT;
