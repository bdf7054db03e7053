-- +goose Up
-- cfsslpy's own table (cfssl ignores it): the last CRL number issued per authority key identifier.
-- Numbered 1001 and up, above any version cfssl's migrations will plausibly reach, so ours never take
-- a number cfssl may use later.

CREATE TABLE cfsslpy_crl_numbers (
  authority_key_identifier TEXT PRIMARY KEY,
  crl_number               TEXT NOT NULL
);

-- +goose Down

DROP TABLE cfsslpy_crl_numbers;
