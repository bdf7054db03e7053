-- +goose Up
-- cfsslpy's own table (cfssl ignores it): authsign's replay guard when the certdb is PostgreSQL, so every
-- serve instance sharing the database accepts a token once between them. One row per token seen (its
-- SHA-256, never the token), kept until its timestamp window closes (expires: Unix seconds).

CREATE TABLE cfsslpy_auth_replay (
  digest  BYTEA PRIMARY KEY,
  expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS cfsslpy_auth_replay_expires ON cfsslpy_auth_replay (expires);

-- +goose Down

DROP TABLE cfsslpy_auth_replay;
