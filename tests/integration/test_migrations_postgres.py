"""The certdb's versioned migrations on a real PostgreSQL (issue 12): the live schema cfsslpy makes equals the
shipped files applied the way ``goose up`` applies them, a goose-1 database gets version 2 recorded, and a
role without write rights can use a complete schema whose versions an earlier cfsslpy left unrecorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration.pg import Cluster, pg_database, postgres_cluster

from cfsslpy.certdb import CertDB, DBConfig

__all__ = ["pg_database", "postgres_cluster"]  # fixtures, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

FILES = Path(__file__).resolve().parents[2] / "cfsslpy" / "migrations" / "pg"
CFSSL_FILES = sorted(FILES.glob("00*.sql"))
ALL_FILES = sorted(FILES.glob("*.sql"), key=lambda f: int(f.name.split("_")[0]))
# goose's dialect.go (PostgreSQL), verbatim
GOOSE_TABLE = """CREATE TABLE goose_db_version (
            \tid serial NOT NULL,
                version_id bigint NOT NULL,
                is_applied boolean NOT NULL,
                tstamp timestamp NULL default now(),
                PRIMARY KEY(id)
            );"""


def goose_current(cluster: Cluster, dbname: str) -> int:
    """liamstask/goose's EnsureDBVersion: the newest row of a version decides; the first applied one is current."""
    rolled_back: set[int] = set()
    for line in cluster.psql("SELECT version_id, is_applied FROM goose_db_version ORDER BY id DESC", dbname).split():
        version, applied = int(line.split("|")[0]), line.split("|")[1] == "t"
        if version not in rolled_back:
            if applied:
                return version
            rolled_back.add(version)
    raise AssertionError("failure in EnsureDBVersion()")


def goose_up(cluster: Cluster, dbname: str, files: list[Path]) -> list[int]:
    """What ``goose up`` runs on a database: each file above the current version, Up section then its row."""
    if cluster.psql("SELECT to_regclass('goose_db_version') IS NULL", dbname).strip() == "t":
        cluster.psql(f"{GOOSE_TABLE} INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);", dbname)
    current = goose_current(cluster, dbname)
    ran = []
    for file in files:
        version = int(file.name.split("_")[0])
        if version > current:
            up = file.read_text().split("-- +goose Down")[0]
            cluster.psql(f"BEGIN; {up}\nINSERT INTO goose_db_version (version_id, is_applied) VALUES ({version}, true); COMMIT;", dbname)
            ran.append(version)
    return ran


def schema(cluster: Cluster, dbname: str) -> dict[str, str]:
    """Columns (with types, nullability, defaults), constraints and goose's rows of a database."""
    return {
        "columns": cluster.psql(
            "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, coalesce(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
            dbname,
        ),
        "constraints": cluster.psql(
            "SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
            dbname,
        ),
        "indexes": cluster.psql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1", dbname),
        "goose": cluster.psql("SELECT version_id, is_applied FROM goose_db_version ORDER BY id", dbname),
    }


def open_once(dsn: str) -> None:
    with CertDB(DBConfig("postgres", dsn)) as db:
        db.issuers()  # the first query connects, which migrates


def test_live_schema_is_the_files_applied_by_goose(postgres_cluster: Cluster, pg_database: str) -> None:
    goose_db = postgres_cluster.create_database(f"{pg_database}_goose")
    open_once(postgres_cluster.url(pg_database))
    assert goose_up(postgres_cluster, goose_db, ALL_FILES) == [1, 2, 1001, 1002]
    ours = schema(postgres_cluster, pg_database)
    assert ours == schema(postgres_cluster, goose_db)
    assert ours["goose"].split() == ["0|t", "1|t", "2|t", "1001|t", "1002|t"]
    assert "cfsslpy_auth_replay_expires" in ours["indexes"]
    assert goose_up(postgres_cluster, pg_database, CFSSL_FILES) == []  # cfssl's goose up finds nothing to do


def test_goose_version_1_database_gets_version_2_recorded(postgres_cluster: Cluster, pg_database: str) -> None:
    """The issue's bug: 002's columns were added but version 2 was never recorded, so goose up failed."""
    assert goose_up(postgres_cluster, pg_database, CFSSL_FILES[:1]) == [1]
    open_once(postgres_cluster.url(pg_database))
    assert goose_up(postgres_cluster, pg_database, CFSSL_FILES) == []
    reference = postgres_cluster.create_database(f"{pg_database}_ref")
    open_once(postgres_cluster.url(reference))
    assert schema(postgres_cluster, pg_database) == schema(postgres_cluster, reference)


def test_reader_on_a_schema_an_earlier_cfsslpy_made(postgres_cluster: Cluster, pg_database: str) -> None:
    """An earlier cfsslpy recorded 0, 1, 2 but not its own table, and never made the replay guard's (1002): a
    role that may only read uses the database as it is (the version row and the missing table are left for
    the next writer), and the next writer records the one and creates the other."""
    goose_up(postgres_cluster, pg_database, CFSSL_FILES)
    postgres_cluster.psql(
        "CREATE TABLE cfsslpy_crl_numbers (authority_key_identifier TEXT PRIMARY KEY, crl_number TEXT NOT NULL);"
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cfssl_reader') THEN CREATE ROLE cfssl_reader LOGIN; END IF; END $$;"
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT SELECT ON ALL TABLES IN SCHEMA public TO cfssl_reader;",
        pg_database,
    )
    with CertDB(DBConfig("postgres", postgres_cluster.url(pg_database, user="cfssl_reader"))) as db:
        assert db.unexpired_certificates() == []
    assert postgres_cluster.psql("SELECT version_id FROM goose_db_version ORDER BY id", pg_database).split() == ["0", "1", "2"]
    open_once(postgres_cluster.url(pg_database))
    assert postgres_cluster.psql("SELECT version_id FROM goose_db_version ORDER BY id", pg_database).split() == [
        "0",
        "1",
        "2",
        "1001",
        "1002",
    ]
