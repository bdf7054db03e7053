from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import CFSSL_2016_SQLITE_SCHEMA
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cfsslpy.certdb import (
    CertDB,
    CertificateQuery,
    CertificateRecord,
    DBConfig,
    format_time,
    key_id_hex,
    open_db,
    parse_time,
    recorder,
    with_aki,
)
from cfsslpy.errors import CfsslError

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


_CA_KEY = ec.generate_private_key(ec.SECP256R1())


def _ca() -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "db test CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_CA_KEY.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(_CA_KEY.public_key()), critical=False)
        .sign(_CA_KEY, hashes.SHA256())
    )


CA = _ca()
CA_AKI = x509.SubjectKeyIdentifier.from_public_key(_CA_KEY.public_key()).digest.hex()


def leaf(serial: int, *, days: int = 365, dns: list[str] | None = None, cn: str = "leaf") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(CA.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_CA_KEY.public_key()), critical=False)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(_CA_KEY, hashes.SHA256())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def record(cert: x509.Certificate, **kw: object) -> CertificateRecord:
    return CertificateRecord.from_certificate(cert, pem=pem(cert), issued_at=NOW, **kw)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> CertDB:
    d = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    yield d
    d.close()


# -- configuration --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("garbage", 5200, "failed to unmarshal configuration: invalid character 'g' looking for beginning of value"),
        ('{"driver":"sqlite3"}', 5200, "invalid db configuration"),
        ('{"data_source":"x.db"}', 5200, "invalid db configuration"),
        ('{"driver":"sqlite3","data_source":""}', 5200, "invalid db configuration"),
        ('{"driver":1,"data_source":"x"}', 5200, "invalid db configuration"),
        ("[]", 5200, "invalid db configuration"),
    ],
)
def test_bad_db_config_is_5200_as_cfssl(text: str, code: int, message: str) -> None:
    with pytest.raises(CfsslError) as info:
        DBConfig.from_json(text.encode())
    assert (info.value.code, info.value.message) == (code, message)


def test_unknown_driver_is_refused_up_front() -> None:
    with pytest.raises(CfsslError) as info:
        DBConfig.from_json(b'{"driver":"mysql","data_source":"u:p@tcp(h)/db"}')
    assert info.value.code == 11000 and "mysql" in info.value.message


def test_unreadable_db_config_file(tmp_path: Path) -> None:
    with pytest.raises(CfsslError) as info:
        DBConfig.load(str(tmp_path / "missing.json"))
    assert (info.value.code, info.value.message) == (5200, "could not read configuration file")


def test_keys_are_case_insensitive_like_go() -> None:
    assert DBConfig.from_json(b'{"Driver":"sqlite3","DATA_SOURCE":"x.db"}') == DBConfig("sqlite3", "x.db")


def test_postgres_password_is_redacted() -> None:
    cfg = DBConfig("postgres", "postgres://ca:s3cret@db.internal:5432/certs")
    assert "s3cret" not in cfg.redacted() and "db.internal" in cfg.redacted()


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("host=db.internal user=ca password=s3cret dbname=certs", "host=db.internal user=ca password=*** dbname=certs"),
        ("host=db.internal password = 'a s3cret \\' quote' sslmode=require", "host=db.internal password = *** sslmode=require"),
        ("host=db.internal sslpassword=s3cret", "host=db.internal sslpassword=***"),
        ("postgres://db.internal/certs?sslmode=require&password=s3cret", "postgres://db.internal/certs?sslmode=require&password=***"),
        ("postgres://ca:s3cret@db.internal/certs?password=s3cret", "postgres://ca:***@db.internal/certs?password=***"),
    ],
)
def test_postgres_password_options_are_redacted(dsn: str, shown: str) -> None:
    """A key/value data source (or a URL query) carries its password as an option: serve logs the rest."""
    assert DBConfig("postgres", dsn).redacted() == shown


def test_missing_directory_is_11000(tmp_path: Path) -> None:
    cfg = tmp_path / "db.json"
    cfg.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "no" / "certs.db")}))
    with pytest.raises(CfsslError) as info:
        open_db(str(cfg))
    assert info.value.code == 11000


# -- schema ---------------------------------------------------------------------------------------------------


def test_new_database_is_created_0600_wal_with_cfssl_tables(tmp_path: Path) -> None:
    path = tmp_path / "certs.db"
    with CertDB(DBConfig("sqlite3", str(path))) as d:
        d.insert_certificate(record(leaf(10)))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in conn.execute("PRAGMA table_info(certificates)")]
    assert cols == [
        "serial_number",
        "authority_key_identifier",
        "ca_label",
        "status",
        "reason",
        "expiry",
        "revoked_at",
        "pem",
        "issued_at",
        "not_before",
        "metadata",
        "sans",
        "common_name",
    ]
    assert [r[1] for r in conn.execute("PRAGMA table_info(ocsp_responses)")] == [
        "serial_number",
        "authority_key_identifier",
        "body",
        "expiry",
    ]
    versions = [r[0] for r in conn.execute("SELECT version_id FROM goose_db_version ORDER BY id")]
    assert versions == [0, 1, 2, 1001]  # goose's 0, cfssl's 001 and 002, ours from 1001
    conn.close()


def test_cfssl_2016_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "cfssl.db"
    conn = sqlite3.connect(path)
    conn.executescript(CFSSL_2016_SQLITE_SCHEMA)
    cert = leaf(77)
    # what cfssl 2016 writes: TEXT values, an empty AKI, mattn's time layout, the zero revocation time
    conn.execute(
        "INSERT INTO certificates VALUES (?, '', '', 'good', 0, ?, '0001-01-01 00:00:00+00:00', ?)",
        ("77", format_time(cert.not_valid_after_utc), pem(cert)),
    )
    conn.commit()
    conn.close()
    with CertDB(DBConfig("sqlite3", str(path))) as d:
        (rec,) = d.unexpired_certificates(now=NOW)
        assert (rec.serial, rec.aki, rec.status, rec.revoked_at) == ("77", "", "good", None)
        assert with_aki(rec).aki == CA_AKI
        assert d.issuers() == [CA_AKI]
        assert [r.serial for r in d.unexpired_certificates(aki=CA_AKI, now=NOW)] == ["77"]
        # cfssl 2016 rows are revoked through the AKI of their certificate; the column is filled in
        revoked = d.revoke("77", CA_AKI, 1, now=NOW)
        assert (revoked.aki, revoked.status, revoked.reason, revoked.revoked_at) == (CA_AKI, "revoked", 1, NOW)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(certificates)")]
    assert cols[-5:] == ["issued_at", "not_before", "metadata", "sans", "common_name"]


def test_values_are_stored_as_cfssl_stores_them(db: CertDB, tmp_path: Path) -> None:
    cert = leaf(123456789012345678901234567890, dns=["a.example", "b.example"], cn="www")
    db.insert_certificate(record(cert, ca_label="primary", metadata={"k": "v"}))
    with contextlib.closing(sqlite3.connect(tmp_path / "certs.db")) as conn:
        row = conn.execute(
            "SELECT serial_number, typeof(serial_number), authority_key_identifier, typeof(authority_key_identifier), ca_label, status, "
            "reason, expiry, revoked_at, typeof(pem), issued_at, not_before, metadata, sans, common_name FROM certificates"
        ).fetchone()
        assert row == (
            "123456789012345678901234567890",
            "text",
            CA_AKI,
            "text",
            "primary",
            "good",
            0,
            format_time(cert.not_valid_after_utc),
            "0001-01-01 00:00:00+00:00",
            "text",
            "2026-11-26 12:00:00+00:00",
            format_time(cert.not_valid_before_utc),
            '{"k":"v"}',
            '["a.example","b.example"]',
            "www",
        )
        # cfssl's own queries work on our rows: CURRENT_TIMESTAMP < expiry, and a TEXT parameter matches
        assert conn.execute("SELECT COUNT(*) FROM certificates WHERE CURRENT_TIMESTAMP < expiry").fetchone()[0] == 1
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM certificates WHERE serial_number = ? AND authority_key_identifier = ?",
                ("123456789012345678901234567890", CA_AKI),
            ).fetchone()[0]
            == 1
        )


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-26 18:00:00+00:00", dt.datetime(2026, 11, 26, 18, tzinfo=UTC)),
        ("2026-11-26 18:00:00", dt.datetime(2026, 11, 26, 18, tzinfo=UTC)),  # CURRENT_TIMESTAMP (cfssl revoke)
        ("2026-11-26T18:00:00Z", dt.datetime(2026, 11, 26, 18, tzinfo=UTC)),
        ("2026-11-26 19:00:00+01:00", dt.datetime(2026, 11, 26, 18, tzinfo=UTC)),
        ("2026-11-26 18:00:00.123456789+00:00", dt.datetime(2026, 11, 26, 18, 0, 0, 123456, tzinfo=UTC)),
        ("0001-01-01 00:00:00+00:00", dt.datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_every_layout_a_go_driver_writes(stored: str, expected: dt.datetime) -> None:
    assert parse_time(stored) == expected


def test_format_time_round_trips() -> None:
    value = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    assert format_time(value) == "2026-01-02 03:04:05.6+00:00"
    assert parse_time(format_time(value)) == value
    assert format_time(None) == "0001-01-01 00:00:00+00:00"


# -- certificates ---------------------------------------------------------------------------------------------


def test_insert_get_and_duplicate(db: CertDB) -> None:
    cert = leaf(42)
    db.insert_certificate(record(cert))
    (rec,) = db.get_certificate("42", CA_AKI)
    assert rec.certificate() == cert
    assert rec.sans is None and rec.common_name == "leaf" and rec.issued_at == NOW
    assert db.get_certificate("42", "00") == []
    with pytest.raises(CfsslError) as info:
        db.insert_certificate(record(cert))
    assert info.value.code == 11100 and "already recorded" in info.value.message


def test_unexpired_and_revoked_unexpired(db: CertDB) -> None:
    db.insert_certificate(record(leaf(1, days=10)))
    db.insert_certificate(record(leaf(2, days=100)))
    db.insert_certificate(record(leaf(3, days=100)))
    db.revoke("1", CA_AKI, 4, now=NOW)
    db.revoke("3", CA_AKI, 1, now=NOW)
    assert sorted(r.serial for r in db.unexpired_certificates(now=NOW)) == ["1", "2", "3"]
    assert sorted(r.serial for r in db.unexpired_certificates(now=NOW + dt.timedelta(days=20))) == ["2", "3"]
    assert sorted(r.serial for r in db.revoked_unexpired(now=NOW)) == ["1", "3"]
    assert [r.serial for r in db.revoked_unexpired(now=NOW + dt.timedelta(days=20))] == ["3"]
    assert db.revoked_unexpired(aki="ff", now=NOW) == []


def test_revoke_unknown_is_11200(db: CertDB) -> None:
    with pytest.raises(CfsslError) as info:
        db.revoke("5", CA_AKI, 1)
    assert (info.value.code, info.value.message) == (11200, "failed to revoke the certificate: certificate not found")


def test_second_revocation_changes_the_reason_and_keeps_the_first_time(db: CertDB) -> None:
    db.insert_certificate(record(leaf(9)))
    db.revoke("9", CA_AKI, 4, now=NOW)
    rec = db.revoke("9", CA_AKI, 1, now=NOW + dt.timedelta(days=2))
    assert (rec.reason, rec.revoked_at) == (1, NOW)


def test_hold_release_and_the_rules_around_it(db: CertDB) -> None:
    db.insert_certificate(record(leaf(11)))
    with pytest.raises(CfsslError) as info:
        db.revoke("11", CA_AKI, 8)  # removeFromCRL on a good certificate
    assert info.value.code == 8200
    db.revoke("11", CA_AKI, 6, now=NOW)
    released = db.revoke("11", CA_AKI, 8, now=NOW)
    assert (released.status, released.reason, released.revoked_at) == ("good", 0, None)
    db.revoke("11", CA_AKI, 6, now=NOW)
    permanent = db.revoke("11", CA_AKI, 1, now=NOW + dt.timedelta(hours=5))
    assert (permanent.status, permanent.reason, permanent.revoked_at) == ("revoked", 1, NOW)
    with pytest.raises(CfsslError) as info:
        db.revoke("11", CA_AKI, 6)  # back on hold: never
    assert info.value.code == 8200


def test_recorder_inserts_what_the_signer_issues(db: CertDB) -> None:
    class Req:
        label = "primary"
        metadata = {"team": "infra"}

    cert = leaf(31337, dns=["x.example"])
    recorder(db)(cert, Req())
    (rec,) = db.get_certificate("31337", CA_AKI)
    assert (rec.ca_label, rec.metadata, rec.sans, rec.status) == ("primary", {"team": "infra"}, ["x.example"], "good")


def test_key_id_hex_of_a_certificate_without_aki() -> None:
    assert key_id_hex(CA) == ""
    assert key_id_hex(leaf(1)) == CA_AKI


# -- OCSP responses and CRL numbers ---------------------------------------------------------------------------


def test_ocsp_upsert_get_and_expiry(db: CertDB) -> None:
    db.insert_certificate(record(leaf(5)))
    db.upsert_ocsp("5", CA_AKI, b"\x30\x03\x0a\x01\x00first", NOW + dt.timedelta(days=4))
    db.upsert_ocsp("5", CA_AKI, b"\x30\x03\x0a\x01\x00\xff\xfe", NOW + dt.timedelta(days=4))
    (rec,) = db.get_ocsp("5", CA_AKI)
    assert rec.body == b"\x30\x03\x0a\x01\x00\xff\xfe"
    assert [r.serial for r in db.unexpired_ocsp(now=NOW)] == ["5"]
    assert db.unexpired_ocsp(now=NOW + dt.timedelta(days=5)) == []


def test_ocsp_body_written_as_text_by_a_go_driver_is_read_back_as_bytes(db: CertDB, tmp_path: Path) -> None:
    db.insert_certificate(record(leaf(6)))
    body = bytes(range(256))
    conn = sqlite3.connect(tmp_path / "certs.db")
    conn.text_factory = bytes
    # a Go string holding DER bound as TEXT: invalid UTF-8 inside a TEXT value
    conn.execute("INSERT INTO ocsp_responses VALUES ('6', ?, CAST(? AS TEXT), ?)", (CA_AKI, body, format_time(NOW + dt.timedelta(days=1))))
    conn.commit()
    conn.close()
    (rec,) = db.get_ocsp("6", CA_AKI)
    assert rec.body == body


def test_crl_numbers_increase_and_respect_the_floor(db: CertDB) -> None:
    assert db.next_crl_number(CA_AKI, 0) == 1
    assert db.next_crl_number(CA_AKI, 0) == 2
    assert db.next_crl_number(CA_AKI, 1000) == 1000
    assert db.next_crl_number(CA_AKI, 5) == 1001
    assert db.next_crl_number("other", 0) == 1


# -- several processes ----------------------------------------------------------------------------------------


def _crl_numbers(path: str, n: int, out: multiprocessing.Queue[list[int]]) -> None:
    with CertDB(DBConfig("sqlite3", path)) as d:
        out.put([d.next_crl_number(CA_AKI, 0) for _ in range(n)])


def test_crl_numbers_are_unique_across_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    path = str(tmp_path / "certs.db")
    out: multiprocessing.Queue[list[int]] = ctx.Queue()
    procs = [ctx.Process(target=_crl_numbers, args=(path, 40, out)) for _ in range(4)]
    for p in procs:
        p.start()
    numbers = [n for _ in procs for n in out.get(timeout=60)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(numbers) == list(range(1, 161))


def _revoke_some(path: str, serials: list[int], out: multiprocessing.Queue[str]) -> None:
    with CertDB(DBConfig("sqlite3", path)) as d:
        for s in serials:
            d.revoke(str(s), CA_AKI, 1)
            d.upsert_ocsp(str(s), CA_AKI, b"resp-%d" % s, NOW + dt.timedelta(days=4000))
    out.put("done")


def test_concurrent_revokes_and_refreshes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "certs.db")
    with CertDB(DBConfig("sqlite3", path)) as d:
        for s in range(1, 61):
            d.insert_certificate(record(leaf(s)))
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_revoke_some, args=(path, list(range(i, 61, 4)), out)) for i in range(1, 5)]
    for p in procs:
        p.start()
    assert [out.get(timeout=60) for _ in procs] == ["done"] * 4
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with CertDB(DBConfig("sqlite3", path)) as d:
        assert len(d.revoked_unexpired()) == 60
        assert len(d.unexpired_ocsp()) == 60


def test_connection_is_reopened_after_fork(db: CertDB) -> None:
    db.insert_certificate(record(leaf(100)))
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[int] = ctx.Queue()

    def child() -> None:
        db.insert_certificate(record(leaf(101)))
        out.put(len(db.unexpired_certificates(now=NOW)))

    p = ctx.Process(target=child)
    p.start()
    assert out.get(timeout=30) == 2
    p.join(30)
    assert p.exitcode == 0
    assert len(db.unexpired_certificates(now=NOW)) == 2


def test_a_legacy_row_whose_pem_does_not_parse_is_an_error_not_a_silent_omission(tmp_path: Path) -> None:
    # a revoked cfssl 2016 row (empty AKI) with a broken PEM must not silently drop out of the CRL
    path = tmp_path / "cfssl.db"
    conn = sqlite3.connect(path)
    conn.executescript(CFSSL_2016_SQLITE_SCHEMA)
    conn.execute(
        "INSERT INTO certificates VALUES ('9', '', '', 'revoked', 1, ?, ?, 'not a certificate')",
        (format_time(NOW + dt.timedelta(days=30)), format_time(NOW)),
    )
    conn.commit()
    conn.close()
    with CertDB(DBConfig("sqlite3", str(path))) as d, pytest.raises(CfsslError) as info:
        d.revoked_unexpired(aki=CA_AKI, now=NOW)
    assert info.value.code == 11000 and "9" in info.value.message


def test_a_full_database_file_is_named_in_the_error(db: CertDB) -> None:
    """Issue 11: every write failure names the file and the reason (a full disk, simulated by SQLite's page cap)."""
    db.insert_certificate(record(leaf(1)))
    pages = db._connect().execute("PRAGMA page_count").fetchone()[0]
    db._connect().execute(f"PRAGMA max_page_count = {pages}")  # this connection may not grow the file
    with pytest.raises(CfsslError) as failed:
        for serial in range(2, 200):
            db.insert_certificate(record(leaf(serial)))
    assert failed.value.code == 11000
    assert failed.value.message == f"{db.config.data_source}: database or disk is full"


# -- the web console's read-only search (cfsslpy.certdb.queries) ---------------------------------------------


def test_search_certificates_pages_filters_and_searches(db: CertDB) -> None:
    names = ["alpha.example", "beta.example", "Gamma_50%.example", "delta.example"]
    for i, cn in enumerate(names):
        cert = leaf(100 + i, days=10 + 30 * i, dns=[f"san-{i}.example"], cn=cn)
        db.insert_certificate(CertificateRecord.from_certificate(cert, pem=pem(cert), issued_at=NOW + dt.timedelta(minutes=i)))
    db.revoke("101", CA_AKI, 1, now=NOW)
    everything = db.search_certificates(CertificateQuery(), now=NOW)
    assert [r.common_name for r in everything.records] == names and everything.total == 4 and everything.pages == 1
    page = db.search_certificates(CertificateQuery(page=2, page_size=3), now=NOW)
    assert [r.common_name for r in page.records] == ["delta.example"] and page.total == 4 and page.pages == 2
    newest = db.search_certificates(CertificateQuery(sort="issued", descending=True, page_size=1), now=NOW)
    assert [r.common_name for r in newest.records] == ["delta.example"]

    def found(**kw: object) -> list[str | None]:
        return [r.common_name for r in db.search_certificates(CertificateQuery(**kw), now=NOW).records]  # type: ignore[arg-type]

    assert found(search="GAMMA") == ["Gamma_50%.example"]
    assert found(search="_50%") == ["Gamma_50%.example"]  # LIKE's wildcards are literal
    assert found(search="gamm__50") == []  # as a wildcard, "__" would match "a_"
    assert found(search="san-3") == ["delta.example"]
    assert found(search="102") == ["Gamma_50%.example"] and found(search="0x66") == ["Gamma_50%.example"]
    assert found(status="revoked") == ["beta.example"]
    assert found(status="expiring") == ["alpha.example"]  # 10 days; beta (40) is revoked anyway
    assert found(status="good") == ["alpha.example", "Gamma_50%.example", "delta.example"]
    assert found(status="expired") == []
    assert db.search_certificates(CertificateQuery(status="expired"), now=NOW + dt.timedelta(days=50)).total == 2


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"page": 0}, "page must be between 1 and 1000000"),
        ({"page_size": 0}, "page_size must be between 1 and 100"),
        ({"page_size": 101}, "page_size must be between 1 and 100"),
        ({"search": "x" * 129}, "search is longer than 128 characters"),
        ({"status": "bad"}, "unknown status filter 'bad'"),
        ({"sort": "cn"}, "unknown sort 'cn'"),
    ],
)
def test_certificate_query_bounds(kw: dict[str, object], message: str) -> None:
    with pytest.raises(CfsslError) as err:
        CertificateQuery(**kw)  # type: ignore[arg-type]
    assert message in err.value.message


def test_last_crl_number_is_read_only(db: CertDB) -> None:
    assert db.last_crl_number(CA_AKI) is None
    assert db.next_crl_number(CA_AKI, 5) == 5
    assert db.last_crl_number(CA_AKI) == 5 and db.last_crl_number(CA_AKI) == 5
