"""The certdb on a real PostgreSQL server (a private cluster started for the session, see integration/pg.py).

Covers cfssl's operations (insert, get, unexpired, revoked, revoke, OCSP upsert/get), our CRL numbers, several
processes at once (schema creation, CRL numbers, revocations), cfssl's schema and goose's version table,
data sources in lib/pq's syntax with and without TLS, and errors: 11000 with the driver's text, never the
password.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from integration.pg import PASSWORD, PASSWORD_ROLE, Cluster, pg_database, postgres_cluster

from cfsslpy import pgdriver
from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig, open_db
from cfsslpy.errors import CfsslError

__all__ = ["pg_database", "postgres_cluster"]  # fixtures, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


# -----------------------------------------------------------------------------------------------------------
# certificates


class Issuer:
    def __init__(self, name: str = "pg test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.aki = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()).digest.hex()

    def issue(self, cn: str, *, days: int = 30, hosts: tuple[str, ...] = ()) -> tuple[x509.Certificate, str]:
        leaf = ec.generate_private_key(ec.SECP256R1()).public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.name)
            .public_key(leaf)
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=60))
            .not_valid_after(NOW + dt.timedelta(days=days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def record(self, cn: str, **kwargs: object) -> CertificateRecord:
        days = int(kwargs.pop("days", 30))  # type: ignore[call-overload]
        hosts = tuple(kwargs.pop("hosts", ()))  # type: ignore[arg-type]
        cert, pem = self.issue(cn, days=days, hosts=hosts)
        return CertificateRecord.from_certificate(cert, pem=pem, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


def postgres_db(dsn: str) -> CertDB:
    return CertDB(DBConfig("postgres", dsn))


def run_workers(script: str, *args: str, count: int) -> list[str]:
    """Start ``count`` Python processes at once running ``script`` (argv: index, *args); their stdouts."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), str(i), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(count)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


# -----------------------------------------------------------------------------------------------------------
# cfssl's operations


def test_insert_get_unexpired_revoke(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        live = issuer.record("live.example", hosts=("live.example", "www.live.example"), ca_label="primary", metadata={"k": "v"})
        expired = issuer.record("old.example", days=-1)
        other = Issuer("another CA").record("other.example")
        for rec in (live, expired, other):
            db.insert_certificate(rec)

        (got,) = db.get_certificate(live.serial, issuer.aki)
        assert (got.serial, got.aki, got.status, got.reason, got.revoked_at) == (live.serial, issuer.aki, "good", 0, None)
        assert got.pem == live.pem and got.ca_label == "primary" and got.common_name == "live.example"
        assert got.expiry == live.expiry and got.not_before == live.not_before
        assert got.sans == ["live.example", "www.live.example"] and got.metadata == {"k": "v"}
        assert db.get_certificate(live.serial, "00" * 20) == []
        assert [r.serial for r in db.certificates_by_serial(expired.serial)] == [expired.serial]

        assert {r.serial for r in db.unexpired_certificates()} == {live.serial, other.serial}
        assert [r.serial for r in db.unexpired_certificates(issuer.aki)] == [live.serial]
        assert db.revoked_unexpired() == []
        assert db.issuers() == sorted({issuer.aki, other.aki})

        when = NOW - dt.timedelta(hours=1)
        revoked = db.revoke(live.serial, issuer.aki, 1, now=when)
        assert (revoked.status, revoked.reason, revoked.revoked_at) == ("revoked", 1, when)
        db.revoke(expired.serial, issuer.aki, 4)
        assert [r.serial for r in db.revoked_unexpired()] == [live.serial]  # the expired one is not listed
        again = db.revoke(live.serial, issuer.aki, 5)  # reason updated, first revocation time kept
        assert (again.reason, again.revoked_at) == (5, when)

        with pytest.raises(CfsslError) as err:
            db.revoke("12345", issuer.aki, 1)
        assert (err.value.code, err.value.message) == (11200, "failed to revoke the certificate: certificate not found")
        with pytest.raises(CfsslError) as err:
            db.insert_certificate(live)
        assert err.value.code == 11100 and "already recorded" in err.value.message
        db.insert_certificate(issuer.record("after.example"))  # the failed insert left the connection usable


def test_values_are_stored_as_cfssl_stores_them(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    """bytea strings, timestamptz, jsonb: what cfssl's lib/pq writes, so either program reads the other's rows."""
    rec = issuer.record("layout.example", hosts=("layout.example",))
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        db.insert_certificate(rec)
    row = postgres_cluster.psql(
        "SELECT convert_from(serial_number, 'UTF8'), convert_from(authority_key_identifier, 'UTF8'), convert_from(status, 'UTF8'), "
        "revoked_at AT TIME ZONE 'UTC', jsonb_typeof(sans), sans->>0, metadata::text, pg_typeof(metadata), common_name FROM certificates",
        pg_database,
    ).strip()
    assert row.split("|") == [
        rec.serial,
        issuer.aki,
        "good",
        "0001-01-01 00:00:00",
        "array",
        "layout.example",
        "null",
        "jsonb",
        "layout.example",
    ]
    columns = postgres_cluster.psql(
        "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns "
        "WHERE table_name IN ('certificates', 'ocsp_responses') ORDER BY table_name, ordinal_position",
        pg_database,
    ).splitlines()
    assert columns == [
        "certificates.serial_number:bytea",
        "certificates.authority_key_identifier:bytea",
        "certificates.ca_label:bytea",
        "certificates.status:bytea",
        "certificates.reason:integer",
        "certificates.expiry:timestamp with time zone",
        "certificates.revoked_at:timestamp with time zone",
        "certificates.pem:bytea",
        "certificates.issued_at:timestamp with time zone",
        "certificates.not_before:timestamp with time zone",
        "certificates.metadata:jsonb",
        "certificates.sans:jsonb",
        "certificates.common_name:text",
        "ocsp_responses.serial_number:bytea",
        "ocsp_responses.authority_key_identifier:bytea",
        "ocsp_responses.body:bytea",
        "ocsp_responses.expiry:timestamp with time zone",
    ]
    assert postgres_cluster.psql("SELECT version_id, is_applied FROM goose_db_version ORDER BY id", pg_database).split() == [
        "0|t",
        "1|t",
        "2|t",
        "1001|t",
        "1002|t",
    ]


def test_ocsp_responses(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        rec = issuer.record("ocsp.example")
        db.insert_certificate(rec)
        body = bytes(range(256)) * 4  # raw DER is binary: every byte value must survive
        db.upsert_ocsp(rec.serial, issuer.aki, body, NOW + dt.timedelta(days=4))
        (got,) = db.get_ocsp(rec.serial, issuer.aki)
        assert (got.body, got.expiry) == (body, NOW + dt.timedelta(days=4))
        db.upsert_ocsp(rec.serial, issuer.aki, b"\x30\x03newer", NOW + dt.timedelta(days=5))  # update, no second row
        assert [(r.body, r.expiry) for r in db.get_ocsp(rec.serial, issuer.aki)] == [(b"\x30\x03newer", NOW + dt.timedelta(days=5))]
        assert [r.serial for r in db.unexpired_ocsp()] == [rec.serial]
        assert db.unexpired_ocsp(now=NOW + dt.timedelta(days=6)) == []
        # cfssl's PostgreSQL schema has the foreign key, and PostgreSQL enforces it: a response needs its certificate
        with pytest.raises(CfsslError) as err:
            db.upsert_ocsp("999", issuer.aki, b"x", NOW)
        assert err.value.code == 11000 and "foreign key" in err.value.message
        assert db.get_ocsp("999", issuer.aki) == []


def test_open_db_with_a_db_config_file(postgres_cluster: Cluster, pg_database: str, issuer: Issuer, tmp_path: Path) -> None:
    config = tmp_path / "db-config.json"
    config.write_text(json.dumps({"driver": "postgres", "data_source": postgres_cluster.url(pg_database)}))
    rec = issuer.record("config.example")
    with open_db(str(config)) as db:
        assert db.config.driver == "postgres"
        db.insert_certificate(rec)
    with open_db(str(config)) as db:
        assert [r.serial for r in db.unexpired_certificates()] == [rec.serial]


# -----------------------------------------------------------------------------------------------------------
# several processes


def test_crl_numbers_are_distinct_across_processes(postgres_cluster: Cluster, pg_database: str) -> None:
    script = """
        import sys
        from cfsslpy.certdb import CertDB, DBConfig
        db = CertDB(DBConfig("postgres", sys.argv[2]))
        print(" ".join(str(db.next_crl_number("aabbcc", 1)) for _ in range(50)))
    """
    outs = run_workers(script, postgres_cluster.url(pg_database), count=2)
    numbers = [int(n) for out in outs for n in out.split()]
    assert len(numbers) == 100
    assert sorted(numbers) == list(range(1, 101))  # all distinct, none skipped
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        assert db.next_crl_number("aabbcc", 1) == 101
        assert db.next_crl_number("aabbcc", 500) == 500  # the floor (a CA's previous CRL number) wins
        assert db.next_crl_number("other", 1) == 1


def test_concurrent_revocations_lose_nothing(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    records = [issuer.record(f"r{i}.example") for i in range(40)]
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        for rec in records:
            db.insert_certificate(rec)
    script = """
        import sys
        from cfsslpy.certdb import CertDB, DBConfig
        index, dsn, aki, *serials = sys.argv[1:]
        db = CertDB(DBConfig("postgres", dsn))
        mine = serials[int(index)::4]
        for serial in mine + serials[:3]:  # every worker also revokes the same three certificates
            db.revoke(serial, aki, 1 + int(index))
    """
    run_workers(script, postgres_cluster.url(pg_database), issuer.aki, *(r.serial for r in records), count=4)
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        revoked = db.revoked_unexpired()
        assert sorted(r.serial for r in revoked) == sorted(r.serial for r in records)
        assert all(r.revoked_at is not None and 1 <= r.reason <= 4 for r in revoked)


def test_schema_created_once_when_processes_start_together(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    records = [issuer.record(f"s{i}.example") for i in range(6)]
    script = """
        import sys
        from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
        from cryptography import x509
        index, dsn, *pems = sys.argv[1:]
        pem = pems[int(index)]
        db = CertDB(DBConfig("postgres", dsn))
        db.insert_certificate(CertificateRecord.from_certificate(x509.load_pem_x509_certificate(pem.encode()), pem=pem))
    """
    run_workers(script, postgres_cluster.url(pg_database), *(r.pem for r in records), count=len(records))
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        assert sorted(r.serial for r in db.unexpired_certificates()) == sorted(r.serial for r in records)
    assert postgres_cluster.psql("SELECT count(*) FROM goose_db_version", pg_database).strip() == "5"  # 0, 1, 2, 1001, 1002


def test_a_001_database_gets_002_columns(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    """A database goose migrated to 001 only (cfssl 2016's schema): 002's columns are added and recorded (issue 12:
    version 2 was left unrecorded, so cfssl's ``goose up`` then failed on duplicate columns)."""
    postgres_cluster.psql(
        "CREATE TABLE certificates (serial_number bytea NOT NULL, authority_key_identifier bytea NOT NULL, ca_label bytea, "
        "status bytea NOT NULL, reason int, expiry timestamptz, revoked_at timestamptz, pem bytea NOT NULL, "
        "PRIMARY KEY(serial_number, authority_key_identifier));"
        "CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint NOT NULL, is_applied boolean NOT NULL, "
        "tstamp timestamp NULL default now(), PRIMARY KEY(id));"
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true);",
        pg_database,
    )
    rec = issuer.record("migrated.example", hosts=("migrated.example",))
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        db.insert_certificate(rec)
        (got,) = db.get_certificate(rec.serial, issuer.aki)
        assert got.sans == ["migrated.example"]
    assert postgres_cluster.psql("SELECT version_id FROM goose_db_version ORDER BY id", pg_database).split() == [
        "0",
        "1",
        "2",
        "1001",
        "1002",
    ]
    assert postgres_cluster.psql("SELECT to_regclass('ocsp_responses') IS NOT NULL", pg_database).strip() == "t"


def test_a_role_without_create_rights_uses_a_complete_schema(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    rec = issuer.record("readonly.example")
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        db.insert_certificate(rec)
    postgres_cluster.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cfssl_reader') THEN CREATE ROLE cfssl_reader LOGIN; END IF; END $$;"
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT SELECT ON ALL TABLES IN SCHEMA public TO cfssl_reader;",
        pg_database,
    )
    with postgres_db(postgres_cluster.url(pg_database, user="cfssl_reader")) as db:
        assert [r.serial for r in db.unexpired_certificates()] == [rec.serial]


# -----------------------------------------------------------------------------------------------------------
# data sources, TLS, errors


def test_password_role_unix_socket_and_key_value_dsn(
    postgres_cluster: Cluster, pg_database: str, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = issuer.record("dsn.example")
    with postgres_db(postgres_cluster.url(pg_database, user=PASSWORD_ROLE, password=PASSWORD)) as db:
        db.insert_certificate(rec)
    keywords = f"host={postgres_cluster.socket_dir} port={postgres_cluster.port} user=postgres dbname='{pg_database}'"
    with postgres_db(keywords) as db:  # Unix socket: no TLS whatever sslmode says (libpq)
        assert [r.serial for r in db.unexpired_certificates()] == [rec.serial]
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with postgres_db(f"host=127.0.0.1 port={postgres_cluster.port} user={PASSWORD_ROLE} dbname={pg_database} sslmode=disable") as db:
        assert [r.serial for r in db.unexpired_certificates()] == [rec.serial]


def _ssl_in_use(conn: object) -> bool:
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    (row,) = cur.fetchall()
    return bool(row[0])


@pytest.mark.parametrize(
    "params, tls",
    [
        ({"sslmode": "disable"}, False),
        ({"sslmode": "require"}, True),
        ({"sslmode": "prefer"}, True),
        ({"sslmode": "verify-ca", "sslrootcert": "CA"}, True),
        ({"sslmode": "verify-full", "sslrootcert": "CA"}, True),
    ],
)
def test_sslmodes(postgres_cluster: Cluster, pg_database: str, params: dict[str, str], tls: bool) -> None:
    params = {k: str(postgres_cluster.ca_file) if v == "CA" else v for k, v in params.items()}
    conn = pgdriver.connect(postgres_cluster.url(pg_database, **params))
    try:
        assert _ssl_in_use(conn) is tls
    finally:
        conn.close()


def test_sslmode_defaults_to_require(postgres_cluster: Cluster, pg_database: str) -> None:
    conn = pgdriver.connect(f"postgres://postgres@127.0.0.1:{postgres_cluster.port}/{pg_database}", environ={})
    try:
        assert _ssl_in_use(conn)
    finally:
        conn.close()


def test_verification_failures(postgres_cluster: Cluster, pg_database: str, tmp_path: Path) -> None:
    stranger = Issuer("some other CA")
    _, pem = stranger.issue("stranger")
    wrong_ca = tmp_path / "wrong.pem"
    wrong_ca.write_text(pem)
    with pytest.raises(CfsslError) as err:
        pgdriver.connect(postgres_cluster.url(pg_database, sslmode="verify-ca", sslrootcert=str(wrong_ca)))
    assert err.value.code == 11000 and err.value.message.startswith("tls: ") and "certificate" in err.value.message
    # the server certificate names 127.0.0.1 only: reached as "localhost", the chain is good but the name is not
    as_localhost = postgres_cluster.url(pg_database, sslmode="verify-ca", sslrootcert=str(postgres_cluster.ca_file))
    as_localhost = as_localhost.replace("@127.0.0.1:", "@localhost:")
    pgdriver.connect(as_localhost).close()
    with pytest.raises(CfsslError) as err:
        pgdriver.connect(as_localhost.replace("sslmode=verify-ca", "sslmode=verify-full"))
    assert err.value.code == 11000 and "hostname mismatch" in err.value.message.lower(), err.value.message


def test_errors_never_show_the_password(postgres_cluster: Cluster, pg_database: str, tmp_path: Path) -> None:
    wrong = "Wr0ng-pa55-7d1e"
    cases = {
        "wrong password": postgres_cluster.url(pg_database, user=PASSWORD_ROLE, password=wrong),
        "refused": f"postgres://{PASSWORD_ROLE}:{wrong}@127.0.0.1:1/{pg_database}?sslmode=disable",
        "bad port": f"postgres://{PASSWORD_ROLE}:{wrong}@127.0.0.1:notaport/{pg_database}",
        "bad sslmode": f"postgres://{PASSWORD_ROLE}:{wrong}@127.0.0.1/{pg_database}?sslmode=sometimes",
        "no such database": postgres_cluster.url("no_such_db", user=PASSWORD_ROLE, password=PASSWORD),
        "bad key/value": f"password={wrong} host",
    }
    messages = {}
    for name, dsn in cases.items():
        config = tmp_path / f"{name.replace('/', '-')}.json"
        config.write_text(json.dumps({"driver": "postgres", "data_source": dsn}))
        with pytest.raises(CfsslError) as err:
            open_db(str(config))
        assert err.value.code == 11000, (name, err.value.message)
        assert wrong not in err.value.message and PASSWORD not in err.value.message, name
        messages[name] = err.value.message
    assert messages["wrong password"] == f'password authentication failed for user "{PASSWORD_ROLE}"'
    assert messages["refused"] == "dial tcp 127.0.0.1:1: connect: connection refused"
    assert messages["no such database"] == 'database "no_such_db" does not exist'
    assert messages["bad key/value"] == 'missing "=" after "host" in connection info string'
    assert "sslmode" in messages["bad sslmode"]


# -----------------------------------------------------------------------------------------------------------
# data source parsing (no server)


def test_parse_url_and_keywords() -> None:
    url = pgdriver.parse("postgresql://us%40er:p%2Fss@db.example:6543/cert%20db?sslmode=verify-full&sslrootcert=/ca.pem&search_path=x", {})
    assert (url.user, url.password, url.host, url.port, url.dbname) == ("us@er", "p/ss", "db.example", 6543, "cert db")
    assert (url.sslmode, url.sslrootcert, url.runtime) == ("verify-full", "/ca.pem", (("search_path", "x"),))
    assert "p/ss" not in repr(url)
    kv = pgdriver.parse(r"host=/run/pg port=5433 user=cfssl password='it\'s a secret' dbname = certs connect_timeout=3", {})
    assert (kv.host, kv.port, kv.user, kv.password, kv.dbname, kv.connect_timeout) == (
        "/run/pg",
        5433,
        "cfssl",
        "it's a secret",
        "certs",
        3.0,
    )
    assert kv.unix_socket == "/run/pg/.s.PGSQL.5433" and pgdriver.ssl_context(kv) is False
    env = pgdriver.parse("dbname=certs", {"PGHOST": "h", "PGUSER": "u", "PGPASSWORD": "pw", "PGSSLMODE": "disable"})
    assert (env.host, env.user, env.password, env.dbname, env.sslmode, env.port) == ("h", "u", "pw", "certs", "disable", 5432)
    defaults = pgdriver.parse("user=cfssl", {})
    assert (defaults.host, defaults.port, defaults.dbname, defaults.sslmode) == ("localhost", 5432, "cfssl", "require")


def test_a_dropped_connection_is_replaced(postgres_cluster: Cluster, pg_database: str, issuer: Issuer) -> None:
    """A server restart or a dropped connection costs at most the one write in flight, never the process."""
    with postgres_db(postgres_cluster.url(pg_database)) as db:
        db.insert_certificate(issuer.record("before"))
        postgres_cluster.psql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{pg_database}' AND pid <> pg_backend_pid()"
        )
        # a read is retried on a new connection
        assert [r.common_name for r in db.unexpired_certificates()] == ["before"]
        postgres_cluster.psql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{pg_database}' AND pid <> pg_backend_pid()"
        )
        # a write is not retried (it may have committed): 11000 once, then the next call works
        with pytest.raises(CfsslError) as info:
            db.insert_certificate(issuer.record("lost"))
        assert info.value.code == 11000
        db.insert_certificate(issuer.record("after"))
        assert sorted(r.common_name or "" for r in db.unexpired_certificates()) == ["after", "before"]
