"""``ocspsign``, ``ocsprefresh``, ``ocspdump`` in-process: outputs parsed back, cfssl's messages and order."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.ocsp import OCSPSigner
from tests.cli.errlines import error_line
from tests.conftest import RunCli
from tests.test_ocsp import make_ca, make_leaf, make_responder, parse, record, verify_signature


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = make_ca("p256")
    files: dict[str, Path] = {}
    files["ca"], files["ca_key"] = ca.write(tmp_path, "ca")
    files["leaf"], _ = make_leaf(ca).write(tmp_path, "leaf")
    files["ocsp"], files["ocsp_key"] = make_responder(ca, "rsa2048").write(tmp_path, "ocsp")
    files["plain"], files["plain_key"] = make_responder(ca, eku=False).write(tmp_path, "plain")
    other = make_ca("p256#2", "Other CA")
    files["other"], files["other_key"] = other.write(tmp_path, "other")
    files["foreign"], _ = make_leaf(other, "foreign").write(tmp_path, "foreign")
    return files


def ocspsign(run_cli: RunCli, pki: dict[str, Path], *extra: str, responder: str = "ocsp") -> ocsp.OCSPResponse:
    result = run_cli(
        "ocspsign", "-ca", str(pki["ca"]), "-responder", str(pki[responder]), "-responder-key", str(pki[responder + "_key"]), *extra
    )
    assert result.status == 0, result.stderr
    assert result.stdout.endswith("}\n") and list(result.json) == ["ocspResponse"]
    return parse(base64.b64decode(result.json["ocspResponse"], validate=True))


def test_good(run_cli: RunCli, pki: dict[str, Path]) -> None:
    resp = ocspsign(run_cli, pki, "-cert", str(pki["leaf"]))
    leaf = x509.load_pem_x509_certificate(pki["leaf"].read_bytes())
    responder = x509.load_pem_x509_certificate(pki["ocsp"].read_bytes())
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD and resp.serial_number == leaf.serial_number
    assert resp.certificates == [responder] and resp.responder_name == responder.subject
    assert resp.next_update_utc is not None and resp.next_update_utc - resp.this_update_utc == dt.timedelta(hours=96)
    verify_signature(resp, responder)


def test_ca_as_responder_with_key_fallback(run_cli: RunCli, pki: dict[str, Path]) -> None:
    result = run_cli(
        "ocspsign",
        "-ca",
        str(pki["ca"]),
        "-responder",
        str(pki["ca"]),
        "-key",
        str(pki["ca_key"]),
        "-cert",
        str(pki["leaf"]),
        "-interval",
        "1h",
    )
    assert result.status == 0, result.stderr
    resp = parse(base64.b64decode(result.json["ocspResponse"]))
    assert resp.certificates == []  # the issuer is not embedded
    assert resp.next_update_utc is not None and resp.next_update_utc - resp.this_update_utc == dt.timedelta(hours=1)
    verify_signature(resp, x509.load_pem_x509_certificate(pki["ca"].read_bytes()))


def test_revoked(run_cli: RunCli, pki: dict[str, Path]) -> None:
    # no -reason: unspecified (cfssl refuses its own default "0" here), so no reason in the response
    resp = ocspsign(run_cli, pki, "-cert", str(pki["leaf"]), "-status", "revoked")
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED and resp.revocation_reason is None
    assert resp.revocation_time_utc is not None and abs(resp.revocation_time_utc - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(
        minutes=1
    )
    resp = ocspsign(run_cli, pki, "-cert", str(pki["leaf"]), "-status", "revoked", "-reason", "KeyCompromise", "-revoked-at", "2026-01-02")
    assert resp.revocation_reason == x509.ReasonFlags.key_compromise
    assert resp.revocation_time_utc == dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    resp = ocspsign(run_cli, pki, "-cert", str(pki["leaf"]), "-status", "revoked", "-reason", "6")
    assert resp.revocation_reason == x509.ReasonFlags.certificate_hold


def test_certificate_from_stdin(run_cli: RunCli, pki: dict[str, Path]) -> None:
    result = run_cli(
        "ocspsign",
        *("-ca", str(pki["ca"]), "-responder", str(pki["ocsp"]), "-responder-key", str(pki["ocsp_key"])),
        *("-cert", "-", "-status", "unknown"),
        stdin=pki["leaf"].read_bytes(),
    )
    assert result.status == 0, result.stderr
    assert parse(base64.b64decode(result.json["ocspResponse"])).certificate_status == ocsp.OCSPCertStatus.UNKNOWN


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-cert", "leaf", "-status", "bogus"], 8200, "Invalid revocation status"),
        (["-cert", "leaf", "-status", "revoked", "-reason", "nope"], 8200, "Invalid revocation status"),
        (["-cert", "leaf", "-status", "revoked", "-reason", "7"], 8200, "Invalid revocation status"),
        (["-cert", "foreign"], 8100, "Certificate not issued by this issuer"),
        (["-cert", "leaf", "-responder", "plain", "-responder-key", "plain_key"], 8100, None),
        (["-cert", "leaf", "-responder-key", "ca_key"], 2300, "Private key does not match public key"),
        (["-cert", "ca_key"], 1003, "Failed to parse certificate"),
    ],
)
def test_errors(run_cli: RunCli, pki: dict[str, Path], args: list[str], code: int, message: str | None) -> None:
    base = {"-ca": "ca", "-responder": "ocsp", "-responder-key": "ocsp_key"}
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    merged = {**base, **pairs}
    argv = [a for flag, value in merged.items() for a in (flag, str(pki[value]) if value in pki else value)]
    result = run_cli("ocspsign", *argv)
    assert result.status == 1 and result.stdout == ""
    assert result.error["code"] == code
    if message is not None:
        assert result.error["message"] == message
    assert "[CRITICAL]" in result.stderr  # cfssl logs each failure at CRITICAL first


def test_missing_flags(run_cli: RunCli, pki: dict[str, Path]) -> None:
    # cfssl's order: the certificate is read first, then the issuer, responder, key (plain file errors)
    result = run_cli("ocspsign")
    assert result.status == 1 and result.stderr.splitlines()[-1] == "open : no such file or directory"
    assert "provide one with -cert" in result.stderr
    result = run_cli("ocspsign", "-cert", str(pki["leaf"]))
    assert result.status == 1 and result.stderr.splitlines()[-1] == "open : no such file or directory"
    result = run_cli("ocspsign", "-cert", str(pki["leaf"]), "-ca", str(pki["ca"]))
    assert result.status == 1 and result.stderr.splitlines()[-1] == "open : no such file or directory"
    result = run_cli("ocspsign", "-cert", str(pki["leaf"]), "-ca", str(pki["ca"]), "-responder", str(pki["ocsp"]))
    assert result.status == 1 and result.error == {"code": 1001, "message": "open : no such file or directory"}
    result = run_cli("ocspsign", "-cert", str(pki["leaf"]), "-interval", "soon")
    assert result.status == 2 and result.stderr.startswith('invalid value "soon" for flag -interval: parse error')
    result = run_cli("ocspsign", "-cert", str(pki["leaf"]), "extra")
    assert result.status == 1 and "too many arguments" in result.stderr


# -----------------------------------------------------------------------------------------------------------
# ocsprefresh / ocspdump


def db_config(tmp_path: Path) -> tuple[Path, CertDB]:
    path = tmp_path / "db.json"
    path.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    return path, CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "need DB config file (provide with -db-config)"),
        (["-db-config"], "need responder certificate (provide with -responder)"),
        (["-db-config", "-responder"], "need responder key (provide with -responder-key)"),
        (["-db-config", "-responder", "-responder-key"], "need CA certificate (provide with -ca)"),
        (["-responder", "-responder-key", "-ca"], "need DB config file (provide with -db-config)"),
    ],
)
def test_refresh_required_flags(run_cli: RunCli, flags: list[str], message: str) -> None:
    result = run_cli("ocsprefresh", *[a for f in flags for a in (f, "x")])
    assert result.status == 1 and error_line(result.stderr) == message and result.stdout == ""
    assert result.stderr.startswith(message + "\nhint: usage: cfsslpy ocsprefresh -db-config ")


def test_refresh_and_dump_two_issuers(run_cli: RunCli, tmp_path: Path) -> None:
    config, db = db_config(tmp_path)
    ca1, ca2 = make_ca("p256", "CLI CA one"), make_ca("ed25519", "CLI CA two")
    leaves = [make_leaf(ca1, "a"), make_leaf(ca1, "b"), make_leaf(ca2, "c")]
    for leaf in leaves:
        db.insert_certificate(record(leaf))
    db.revoke(str(leaves[1].cert.serial_number), OCSPSigner(ca1.cert, ca1.cert, ca1.key).issuer_aki, 4)
    db.close()
    c1, k1 = ca1.write(tmp_path, "ca1")
    c2, k2 = ca2.write(tmp_path, "ca2")
    r2, rk2 = make_responder(ca2, "p384").write(tmp_path, "ocsp2")

    result = run_cli(
        "ocsprefresh", "-db-config", str(config), "-ca", f"{c1},{c2}", "-responder", f"{c1},{r2}", "-responder-key", f"{k1},{rk2}"
    )
    assert result.status == 0, result.stderr
    assert result.stdout == ""
    assert "[INFO] refreshed 3 OCSP response(s); 0 certificate(s) of other issuers skipped; 0 failed" in result.stderr

    dumped = run_cli("ocspdump", "-db-config", str(config))
    assert dumped.status == 0 and dumped.stdout.endswith("\n")
    by_serial = {r.serial_number: r for r in (parse(base64.b64decode(line, validate=True)) for line in dumped.stdout.splitlines())}
    assert set(by_serial) == {leaf.cert.serial_number for leaf in leaves}
    assert by_serial[leaves[0].cert.serial_number].certificate_status == ocsp.OCSPCertStatus.GOOD
    revoked = by_serial[leaves[1].cert.serial_number]
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED and revoked.revocation_reason == x509.ReasonFlags.superseded
    verify_signature(revoked, ca1.cert)
    delegated = by_serial[leaves[2].cert.serial_number]
    assert delegated.certificates and delegated.responder_name == delegated.certificates[0].subject
    verify_signature(delegated, delegated.certificates[0])

    # one issuer only: the other's certificates are counted, not an error
    result = run_cli("ocsprefresh", "-db-config", str(config), "-ca", str(c1), "-responder", str(c1), "-responder-key", str(k1))
    assert result.status == 0 and "refreshed 2 OCSP response(s); 1 certificate(s) of other issuers skipped" in result.stderr
    assert "[WARNING] 1 certificate(s) of issuer" in result.stderr


def test_refresh_list_lengths_must_match(run_cli: RunCli, tmp_path: Path) -> None:
    config, _ = db_config(tmp_path)
    result = run_cli("ocsprefresh", "-db-config", str(config), "-ca", "a.pem,b.pem", "-responder", "a.pem", "-responder-key", "a-key.pem")
    assert result.status == 1
    assert result.stderr == "-ca, -responder and -responder-key must list the same number of files (got 2, 1, 1)\n"


def test_refresh_no_matching_issuer(run_cli: RunCli, tmp_path: Path) -> None:
    config, db = db_config(tmp_path)
    ca, other = make_ca("p256", "Has certs"), make_ca("p256#2", "Has none")
    db.insert_certificate(record(make_leaf(ca)))
    db.close()
    c, k = other.write(tmp_path, "other")
    result = run_cli("ocsprefresh", "-db-config", str(config), "-ca", str(c), "-responder", str(c), "-responder-key", str(k))
    assert result.status == 1 and result.error["code"] == 8100


def test_refresh_bad_signer(run_cli: RunCli, tmp_path: Path) -> None:
    config, _ = db_config(tmp_path)
    ca = make_ca("p256")
    c, _ = ca.write(tmp_path, "ca")
    r, rk = make_responder(ca, eku=False).write(tmp_path, "plain")
    result = run_cli("ocsprefresh", "-db-config", str(config), "-ca", str(c), "-responder", str(r), "-responder-key", str(rk))
    assert result.status == 1 and result.error["code"] == 8100 and "OCSP Signing" in result.error["message"]
    assert "[CRITICAL] Unable to create OCSP signer" in result.stderr


def test_dump(run_cli: RunCli, tmp_path: Path) -> None:
    assert error_line(run_cli("ocspdump").stderr) == "need DB config file (provide with -db-config)"
    config, db = db_config(tmp_path)
    db.close()
    result = run_cli("ocspdump", "-db-config", str(config))
    assert result.status == 0 and result.stdout == ""
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = run_cli("ocspdump", "-db-config", str(bad))
    assert result.status == 1 and result.error == {"code": 5200, "message": "invalid db configuration"}
