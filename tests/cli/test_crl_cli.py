"""``gencrl`` and ``crl`` in-process: outputs parsed back, errors with their exact code/message and exit status."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
from cfsslpy.keys import load_private_key
from tests.conftest import CA, RunCli, make_ca


def load_ca(ca: CA) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = load_private_key(ca.key.read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(ca.cert.read_bytes()), key


def ski(cert: x509.Certificate) -> bytes:
    return bytes(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)


def base64_crl(stdout: str) -> x509.CertificateRevocationList:
    """cfssl's output: one line of standard base64 and a newline."""
    assert stdout.endswith("\n") and stdout.count("\n") == 1
    return x509.load_der_x509_crl(base64.b64decode(stdout[:-1], validate=True))


def reasons(crl: x509.CertificateRevocationList) -> dict[int, x509.ReasonFlags | None]:
    out: dict[int, x509.ReasonFlags | None] = {}
    for entry in crl:
        try:
            out[entry.serial_number] = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            out[entry.serial_number] = None
    return out


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def assert_error(result: object, code: int, message: str) -> None:
    assert result.status == 1, result.stderr  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert result.error == {"code": code, "message": message}  # type: ignore[attr-defined]


def assert_plain(result: object, message: str, status: int = 1) -> None:
    assert result.status == status, result.stderr  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert result.stderr.splitlines()[0] == message  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------
# gencrl


@pytest.fixture
def serials(tmp_path: Path) -> Path:
    path = tmp_path / "serials.txt"
    path.write_text("1001\n\n1002 keycompromise\n1003 6\n")
    return path


def test_gencrl_prints_base64_der(run_cli: RunCli, ec_ca: CA, serials: Path) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    result = run_cli("gencrl", str(serials), str(ec_ca.cert), str(ec_ca.key), "600")
    assert result.status == 0 and result.stderr == ""
    crl = base64_crl(result.stdout)
    cert, key = load_ca(ec_ca)
    assert crl.issuer == cert.subject and crl.is_signature_valid(key.public_key())
    assert reasons(crl) == {1001: None, 1002: x509.ReasonFlags.key_compromise, 1003: x509.ReasonFlags.certificate_hold}
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(seconds=600)
    assert before <= crl.last_update_utc <= dt.datetime.now(dt.timezone.utc)
    assert all(entry.revocation_date_utc == crl.last_update_utc for entry in crl)  # all revoked "now"
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ski(cert)


def test_gencrl_default_lifetime_and_pem(run_cli: RunCli, ec_ca: CA, serials: Path) -> None:
    result = run_cli("gencrl", "-pem", str(serials), str(ec_ca.cert), str(ec_ca.key))
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("-----BEGIN X509 CRL-----\n") and result.stdout.endswith("-----END X509 CRL-----\n")
    crl = x509.load_pem_x509_crl(result.stdout.encode())
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)
    assert sorted(reasons(crl)) == [1001, 1002, 1003]


def test_gencrl_inputs_from_stdin_env_and_file_prefix(run_cli: RunCli, ec_ca: CA, serials: Path) -> None:
    # the serial list on stdin; CERT and KEY take file: and env: like -ca / -ca-key
    result = run_cli("gencrl", "-", f"file:{ec_ca.cert}", "env:CA_KEY", stdin=b"42\n", env={"CA_KEY": ec_ca.key.read_text()})
    assert result.status == 0, result.stderr
    assert sorted(reasons(base64_crl(result.stdout))) == [42]
    # the certificate on stdin
    result = run_cli("gencrl", str(serials), "-", str(ec_ca.key), "0x3c", stdin=ec_ca.cert.read_bytes())
    assert result.status == 0, result.stderr
    crl = base64_crl(result.stdout)
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(seconds=60)


def test_gencrl_numbers_increase_between_runs(run_cli: RunCli, ec_ca: CA, serials: Path) -> None:
    numbers = []
    for _ in range(3):
        result = run_cli("gencrl", str(serials), str(ec_ca.cert), str(ec_ca.key))
        assert result.status == 0, result.stderr
        numbers.append(crl_number(base64_crl(result.stdout)))
    assert numbers == sorted(set(numbers))


def test_gencrl_argument_errors(run_cli: RunCli, ec_ca: CA, serials: Path) -> None:
    assert_plain(run_cli("gencrl", str(serials), str(ec_ca.cert)), "not enough arguments are supplied --- please refer to the usage")
    assert_plain(
        run_cli("gencrl", str(serials), str(ec_ca.cert), str(ec_ca.key), "60", "extra"),
        "too many arguments are provided, please check with usage",
    )
    assert_plain(run_cli("gencrl", "-", "-", str(ec_ca.key)), "only one of INPUTFILE, CERT and KEY can be read from standard input ('-')")
    assert_plain(run_cli("gencrl", "missing.txt", str(ec_ca.cert), str(ec_ca.key)), "open missing.txt: no such file or directory")
    assert_plain(run_cli("gencrl", str(serials), "env:NO_SUCH_VAR", str(ec_ca.key)), "environment variable NO_SUCH_VAR is not set")


def test_gencrl_input_errors(run_cli: RunCli, ec_ca: CA, serials: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    assert_plain(run_cli("gencrl", str(serials), str(ec_ca.cert), str(ec_ca.key), "1h"), 'strconv.ParseInt: parsing "1h": invalid syntax')
    assert_error(run_cli("gencrl", str(serials), str(junk), str(ec_ca.key)), 1002, "Failed to decode certificate")  # as cfssl
    assert_error(run_cli("gencrl", str(serials), str(ec_ca.cert), str(junk)), 2002, "Failed to decode private key")
    assert_error(
        run_cli("gencrl", "-", str(ec_ca.cert), str(ec_ca.key), stdin=b"1\n2x\n"),
        1300,
        "serial list line 2: invalid serial number '2x': want a decimal integer",
    )
    assert_error(
        run_cli("gencrl", str(serials), str(ec_ca.cert), str(ec_ca.key), "-5"),
        1300,
        "invalid CRL lifetime '-5': want a positive number of seconds",
    )
    other = make_ca(run_cli, tmp_path / "other")
    assert_error(run_cli("gencrl", str(serials), str(ec_ca.cert), str(other.key)), 2300, "Private key does not match public key")


def test_gencrl_help(run_cli: RunCli) -> None:
    result = run_cli("gencrl", "-h")
    assert result.status == 0 and result.stdout == ""
    assert "cfsslpy gencrl [-pem] INPUTFILE CERT KEY [TIME]" in result.stderr and "-pem" in result.stderr


# ---------------------------------------------------------------------------------------------------------
# crl


def issue_leaf(ca: CA, serial: int, *, expires: dt.datetime | None = None) -> x509.Certificate:
    cert, key = load_ca(ca)
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"leaf {serial}")]))
        .issuer_name(cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(expires or now + dt.timedelta(days=30))
        .add_extension(x509.AuthorityKeyIdentifier(ski(cert), None, None), critical=False)
        .sign(key, hashes.SHA256())
    )


def record(cert: x509.Certificate) -> CertificateRecord:
    return CertificateRecord.from_certificate(cert, pem=cert.public_bytes(serialization.Encoding.PEM).decode())


@pytest.fixture
def db_config(tmp_path: Path) -> Path:
    path = tmp_path / "db.json"
    path.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    return path


def open_test_db(db_config: Path) -> CertDB:
    return CertDB(DBConfig.from_json(db_config.read_bytes()))


def test_crl_lists_the_cas_revoked_certificates(run_cli: RunCli, tmp_path: Path, db_config: Path) -> None:
    ca = make_ca(run_cli, tmp_path / "ca")
    other = make_ca(run_cli, tmp_path / "other", name="other")
    aki, other_aki = ski(load_ca(ca)[0]).hex(), ski(load_ca(other)[0]).hex()
    with open_test_db(db_config) as db:
        for serial in (1, 2, 3):
            db.insert_certificate(record(issue_leaf(ca, serial)))
        db.insert_certificate(record(issue_leaf(ca, 4, expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))))
        db.insert_certificate(record(issue_leaf(other, 5)))
        db.revoke("1", aki, 1)
        db.revoke("3", aki, 0)
        db.revoke("4", aki, 1)  # expired: not listed
        db.revoke("5", other_aki, 1)  # another CA's: not listed (cfssl lists it)
        revoked_at = {r.serial: r.revoked_at for r in db.revoked_unexpired(aki)}

    result = run_cli("crl", "-db-config", str(db_config), "-ca", str(ca.cert), "-ca-key", str(ca.key), "-expiry", "24h")
    assert result.status == 0 and result.stderr == ""
    crl = base64_crl(result.stdout)
    assert reasons(crl) == {1: x509.ReasonFlags.key_compromise, 3: None}
    assert {e.serial_number: e.revocation_date_utc for e in crl} == {
        int(s): t.replace(microsecond=0) for s, t in revoked_at.items() if t is not None
    }
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=24)
    cert, key = load_ca(ca)
    assert crl.issuer == cert.subject and crl.is_signature_valid(key.public_key())

    result = run_cli("crl", "-pem", "-db-config", str(db_config), "-ca", str(other.cert), "-ca-key", str(other.key))
    assert result.status == 0, result.stderr
    crl = x509.load_pem_x509_crl(result.stdout.encode())
    assert reasons(crl) == {5: x509.ReasonFlags.key_compromise}
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=168)


def test_crl_numbers_increase_between_runs(run_cli: RunCli, ec_ca: CA, db_config: Path) -> None:
    args = ("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key))
    numbers = [crl_number(base64_crl(run_cli(*args).stdout)) for _ in range(3)]
    assert numbers == sorted(set(numbers))
    with open_test_db(db_config) as db:  # the database remembers the last number
        assert db.next_crl_number(ski(load_ca(ec_ca)[0]).hex(), floor=0) == numbers[-1] + 1


def test_crl_missing_flags(run_cli: RunCli, ec_ca: CA, db_config: Path) -> None:
    assert_plain(run_cli("crl", "-db-config", str(db_config)), "need CA certificate (provide one with -ca)")
    assert_plain(run_cli("crl", "-ca", str(ec_ca.cert)), "need CA key (provide one with -ca-key)")
    assert_plain(
        run_cli("crl", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key)), "need a certificate database (provide one with -db-config)"
    )
    assert_plain(
        run_cli("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "extra"),
        "too many arguments are provided, please check with usage",
    )


def test_crl_errors(run_cli: RunCli, ec_ca: CA, db_config: Path, tmp_path: Path) -> None:
    base = ("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key))
    assert_plain(run_cli(*base, "-expiry", "7d"), 'invalid value "7d" for flag -expiry: parse error', status=2)
    assert_error(run_cli(*base, "-expiry", "0s"), 1300, "invalid CRL lifetime 0s: must be positive")
    other = make_ca(run_cli, tmp_path / "other")
    assert_error(
        run_cli("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", str(other.key)),
        2300,
        "Private key does not match public key",
    )
    bad_config = tmp_path / "bad.json"
    bad_config.write_text('{"driver": "sqlite3"}')
    assert_error(
        run_cli("crl", "-db-config", str(bad_config), "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key)), 5200, "invalid db configuration"
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    assert_error(
        run_cli("crl", "-db-config", str(db_config), "-ca", str(junk), "-ca-key", str(ec_ca.key)), 1002, "Failed to decode certificate"
    )
    assert_error(
        run_cli("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", str(junk)), 2002, "Failed to decode private key"
    )
    assert_error(
        run_cli("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", "missing.pem"),
        1001,
        "open missing.pem: no such file or directory",
    )


def test_crl_encrypted_ca_key(run_cli: RunCli, ec_ca: CA, db_config: Path, tmp_path: Path) -> None:
    _, key = load_ca(ec_ca)
    encrypted = tmp_path / "enc-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw123")
        )
    )
    args = ("crl", "-db-config", str(db_config), "-ca", str(ec_ca.cert), "-ca-key", str(encrypted))
    assert_error(run_cli(*args), 2100, "Private key is encrypted.")
    result = run_cli(*args, env={"CFSSL_CA_PK_PASSWORD": "pw123"})
    assert result.status == 0, result.stderr
    assert base64_crl(result.stdout).is_signature_valid(key.public_key())
