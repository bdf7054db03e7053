"""The certdb's versioned migrations (issue 12): cfssl's goose files shipped unchanged, the runner's goose
bookkeeping, the live SQLite schema against the files, and databases that goose or cfssl 1.6.5 made.

``goose_up`` below is an independent re-statement of what cfssl's documented ``goose up`` does
(bitbucket.org/liamstask/goose, vendored by cfssl): the current version is the newest applied row of
``goose_db_version``, and every migration file above it is run, its Up section in one transaction, then
recorded. It shares no code with :mod:`cfsslpy.migrations`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import RunCli, make_ca, need

from cfsslpy import migrations
from cfsslpy.certdb import CertDB, DBConfig

REPO = Path(__file__).resolve().parents[1]
FILES = REPO / "cfsslpy" / "migrations"
PEER_165 = REPO.parent / "shared/peers/cfssl-1.6.5/cfssl-libsqlite3"

# sha256 of cfssl's files at v1.6.5 (96259aa2) and at master in 2025 (unchanged since 2017)
CFSSL_FILES = {
    "sqlite/001_CreateCertificates.sql": "a245252fd45920f28a14d8f31065f00cd78b0084cbd3ee62a4575a3ca0ab5f0c",
    "sqlite/002_AddMetadataToCertificates.sql": "03f36a1fac6a476ce0e1ae3f2f5738b98fe993b256b8843a0fad143bf319ae51",
    "pg/001_CreateCertificates.sql": "2cc4801edba9a88e6afbf5643f29f1aff62e836f74e3a38de65f307fdd3b209c",
    "pg/002_AddMetadataToCertificates.sql": "86d0831fd4acd6615a09bba6bffc9f5788e7da540a0abdfae56f2acde451ca2b",
}
ALL_VERSIONS = [0, 1, 2, 1001]
# goose's dialect.go, verbatim (SQLite keeps the DDL text in sqlite_master)
GOOSE_SQLITE_TABLE = """CREATE TABLE goose_db_version (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL,
                tstamp TIMESTAMP DEFAULT (datetime('now'))
            );"""


def cfssl_files(dialect: str) -> list[Path]:
    """cfssl's own migration directory (what an administrator runs ``goose up`` on)."""
    return sorted(FILES.joinpath(dialect).glob("00*.sql"))


def goose_up(path: Path, files: list[Path]) -> list[int]:
    """liamstask/goose's ``up`` on an SQLite file; the versions it applied."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        try:
            rows = conn.execute("SELECT version_id, is_applied from goose_db_version ORDER BY id DESC").fetchall()
        except sqlite3.OperationalError:
            conn.execute(GOOSE_SQLITE_TABLE)
            conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1)")
            rows = [(0, 1)]
        rolled_back: set[int] = set()
        for version, applied in rows:  # EnsureDBVersion: the newest row of a version decides
            if version not in rolled_back:
                if applied:
                    current = version
                    break
                rolled_back.add(version)
        ran = []
        for file in sorted(files, key=lambda f: int(f.name.split("_")[0])):
            version = int(file.name.split("_")[0])
            if version > current:
                up = file.read_text().split("-- +goose Down")[0]
                conn.executescript(f"BEGIN; {up}\nINSERT INTO goose_db_version (version_id, is_applied) VALUES ({version}, 1); COMMIT;")
                ran.append(version)
        return ran


def schema(path: Path) -> dict[str, object]:
    """Everything about an SQLite file's schema: each table's DDL, columns, keys and indexes, goose's rows."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        ]
        described: dict[str, object] = {
            name: {
                "sql": conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0],
                "columns": conn.execute(f'PRAGMA table_info("{name}")').fetchall(),
                "foreign_keys": conn.execute(f'PRAGMA foreign_key_list("{name}")').fetchall(),
                "indexes": conn.execute(f'PRAGMA index_list("{name}")').fetchall(),
            }
            for name in tables
        }
        described["goose"] = conn.execute("SELECT version_id, is_applied FROM goose_db_version ORDER BY id").fetchall()
        return described


def open_once(path: Path) -> None:
    with CertDB(DBConfig("sqlite3", str(path))) as db:
        db.issuers()  # the first query connects, which migrates


# -----------------------------------------------------------------------------------------------------------
# the files


def test_cfssl_files_are_shipped_unchanged() -> None:
    assert {name: hashlib.sha256(FILES.joinpath(name).read_bytes()).hexdigest() for name in CFSSL_FILES} == CFSSL_FILES
    ours = [(1, "CreateCertificates"), (2, "AddMetadataToCertificates"), (1001, "CfsslpyCrlNumbers")]
    assert [(m.version, m.name) for m in migrations.load("sqlite")] == ours
    # the replay guard's table lives in the certdb only when several instances share it (PostgreSQL)
    assert [(m.version, m.name) for m in migrations.load("pg")] == [*ours, (1002, "CfsslpyAuthReplay")]


def test_up_sections_are_split_as_goose_splits_them() -> None:
    sqlite_001, sqlite_002, sqlite_ours = migrations.load("sqlite")
    assert [s.creates for s in sqlite_001.statements] == [(("certificates", None),), (("ocsp_responses", None),)]
    assert [s.creates for s in sqlite_002.statements] == [
        (("certificates", c),) for c in ("issued_at", "not_before", "metadata", "sans", "common_name")
    ]
    assert sqlite_ours.creates == (("cfsslpy_crl_numbers", None),)
    (pg_002,) = migrations.load("pg")[1].statements  # one ALTER TABLE adding five columns
    assert pg_002.creates == tuple(("certificates", c) for c in ("issued_at", "not_before", "metadata", "sans", "common_name"))
    assert all("DROP" not in s.sql for m in migrations.load("pg") for s in m.statements)  # Down sections left out
    pg_replay = migrations.load("pg")[3]
    assert [s.creates for s in pg_replay.statements] == [(("cfsslpy_auth_replay", None),), ()]  # the table, its index
    with pytest.raises(ValueError, match="StatementBegin"):
        migrations.up_statements("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n")
    with pytest.raises(ValueError, match="does not end"):
        migrations.up_statements("-- +goose Up\nSELECT 1\n")


def test_applied_versions_follow_goose_newest_row_rule() -> None:
    # goose down writes a row (version, false): the newest row of a version decides
    assert migrations.applied_versions([(0, 1), (1, 1), (2, 1), (2, 0)]) == {0, 1}
    assert migrations.applied_versions([(0, True), (1, True), (1, False), (1, True)]) == {0, 1}


def test_plan_records_what_an_earlier_cfsslpy_created_and_repairs_what_is_gone() -> None:
    ms = migrations.load("sqlite")
    everything = {obj for m in ms for obj in m.creates}
    # goose at 1, then an earlier cfsslpy added 002's columns and its table without recording them (issue 12)
    steps = migrations.plan(ms, {0, 1}, everything)
    assert [(s.migration.version, s.statements, s.record) for s in steps] == [(2, (), True), (1001, (), True)]
    # a fresh database runs everything
    assert [len(s.statements) for s in migrations.plan(ms, set(), set())] == [2, 5, 1]
    # recorded, but a table was dropped by hand: created again, not recorded twice
    (step,) = migrations.plan(ms, {0, 1, 2, 1001}, everything - {("ocsp_responses", None)})
    assert (step.migration.version, step.record) == (1, False) and step.statements[0].startswith("CREATE TABLE ocsp_responses")
    assert migrations.plan(ms, {0, 1, 2, 1001}, everything) == []


# -----------------------------------------------------------------------------------------------------------
# live SQLite schemas


def test_live_schema_is_the_files_applied_by_goose(tmp_path: Path) -> None:
    """cfsslpy's new database is exactly what ``goose up`` makes of the shipped files, DDL text included."""
    ours, goose = tmp_path / "ours.db", tmp_path / "goose.db"
    open_once(ours)
    assert goose_up(goose, sorted(FILES.joinpath("sqlite").glob("*.sql"))) == [1, 2, 1001]
    assert schema(ours) == schema(goose)
    assert goose_up(ours, cfssl_files("sqlite")) == []  # cfssl's goose up finds nothing to do


def test_goose_version_1_database_gets_version_2_recorded(tmp_path: Path) -> None:
    """The issue's bug: 002's columns were added but version 2 was never recorded, so goose up failed."""
    path = tmp_path / "cfssl.db"
    assert goose_up(path, cfssl_files("sqlite")[:1]) == [1]
    open_once(path)
    assert schema(path)["goose"] == [(v, 1) for v in ALL_VERSIONS]
    assert goose_up(path, cfssl_files("sqlite")) == []
    reference = tmp_path / "reference.db"
    open_once(reference)
    assert schema(path) == schema(reference)


def test_columns_an_earlier_cfsslpy_added_count_as_applied(tmp_path: Path) -> None:
    """What cfsslpy before issue 12 left in a goose-1 database: the columns and our table, no version rows."""
    path = tmp_path / "old.db"
    goose_up(path, cfssl_files("sqlite")[:1])
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for column, kind in (
            ("issued_at", "timestamp"),
            ("not_before", "timestamp"),
            ("metadata", "text"),
            ("sans", "text"),
            ("common_name", "text"),
        ):
            conn.execute(f'ALTER TABLE certificates ADD COLUMN "{column}" {kind}')
        conn.execute("CREATE TABLE cfsslpy_crl_numbers (authority_key_identifier TEXT PRIMARY KEY, crl_number TEXT NOT NULL)")
        conn.execute("INSERT INTO cfsslpy_crl_numbers VALUES ('aa', '41')")
        conn.commit()
    with CertDB(DBConfig("sqlite3", str(path))) as db:
        assert db.next_crl_number("aa", 1) == 42  # the table was kept, not re-created
    assert schema(path)["goose"] == [(v, 1) for v in ALL_VERSIONS]
    assert goose_up(path, cfssl_files("sqlite")) == []


def test_a_migrated_database_is_only_read_on_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "certs.db"
    open_once(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        changes = conn.execute("PRAGMA data_version").fetchone()[0]
        total = conn.total_changes
        open_once(path)
        open_once(path)
        assert conn.execute("PRAGMA data_version").fetchone()[0] == changes  # no other connection wrote
        assert conn.total_changes == total
    assert schema(path)["goose"] == [(v, 1) for v in ALL_VERSIONS]


def test_concurrent_first_starts_apply_each_migration_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from cfsslpy.certdb import CertDB, DBConfig
        path, start = sys.argv[1], float(sys.argv[2])
        time.sleep(max(0.0, start - time.time()))
        with CertDB(DBConfig("sqlite3", path)) as db:
            print(db.issuers())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reference = tmp_path / "reference.db"
    open_once(reference)
    for round_ in range(4):
        path = tmp_path / f"race{round_}.db"
        start = time.time() + 1.0  # both processes are imported and waiting by then
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(path), str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(2)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert (proc.returncode, out, err) == (0, "[]\n", "")
        assert schema(path) == schema(reference)


# -----------------------------------------------------------------------------------------------------------
# cfssl 1.6.5


@pytest.mark.integration
@pytest.mark.cfssl
@pytest.mark.parametrize("goose_version", [1, 2])
def test_cfssl_165_database_migrated_by_cfsslpy(run_cli: RunCli, tmp_path: Path, goose_version: int) -> None:
    """A database goose made for cfssl 1.6.5 (at version 1 or 2) is migrated by cfsslpy; cfssl keeps using it
    and its goose up finds nothing to do."""
    cfssl = need(str(PEER_165), "cfssl 1.6.5 (cgo SQLite build) is not installed")
    ca = make_ca(run_cli, tmp_path / "ca")
    path = tmp_path / "cfssl.db"
    goose_up(path, cfssl_files("sqlite")[:goose_version])
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(path)}))
    spec = tmp_path / "leaf.json"
    spec.write_text(json.dumps({"CN": "leaf", "hosts": ["leaf.example"], "key": {"algo": "ecdsa", "size": 256}}))

    def gencert() -> str:
        proc = subprocess.run(
            [cfssl, "gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), str(spec)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return str(json.loads(proc.stdout)["cert"])

    before = gencert() if goose_version == 2 else None  # cfssl 1.6.5 needs 002's columns to write
    with CertDB(DBConfig("sqlite3", str(path))) as db:
        assert [r.pem for r in db.unexpired_certificates()] == ([before] if before else [])
    assert schema(path)["goose"] == [(v, 1) for v in ALL_VERSIONS]
    assert goose_up(path, cfssl_files("sqlite")) == []
    after = gencert()  # cfssl writes into the migrated database
    with CertDB(DBConfig("sqlite3", str(path))) as db:
        assert sorted(r.pem for r in db.unexpired_certificates()) == sorted([after, *([before] if before else [])])
