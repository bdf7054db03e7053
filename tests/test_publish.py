"""Static publication (cfsslpy.publish, ``ocsppublish``): names that round-trip to the request, responses that
verify, atomic writes, only changed files touched, expired files removed, the index, CRL numbers."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from test_ocsp import NOW, Cert, key, make_ca, make_cert, make_leaf, make_responder, record, verify_signature

from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.cli.context import IO
from cfsslpy.cli.ocsppublish import COMMAND
from cfsslpy.cli.runner import run_command
from cfsslpy.errors import CfsslError, PlainError
from cfsslpy.inputs import Stdin
from cfsslpy.ocsp import OCSPSigner
from cfsslpy.publish import (
    DIR_INDEX,
    INDEX_NAME,
    CRLIssuer,
    Issuer,
    name_path,
    nginx_snippet,
    parse_request_path,
    publish,
    repeat,
    request_der,
    request_name,
)
from cfsslpy.publish import files as pubfiles
from cfsslpy.publish.rows import current_certificates
from cfsslpy.x509util import key_identifier

WEEK = dt.timedelta(days=7)


def aki(ca: Cert) -> str:
    return key_identifier(ca.cert).hex()


class Tree:
    """A certdb with one CA (its own responder) and a few leaves, and a publishing directory."""

    def __init__(self, tmp_path: Path, n: int = 4) -> None:
        self.db = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
        self.ca = make_ca("p256", "Publish CA")
        self.leaves = [make_leaf(self.ca, f"leaf{i}.example") for i in range(n)]
        for leaf in self.leaves:
            self.db.insert_certificate(record(leaf))
        self.root = tmp_path / "pub"
        self.issuer = Issuer(OCSPSigner(self.ca.cert, self.ca.cert, self.ca.key), CRLIssuer(self.ca.cert, self.ca.key, WEEK))

    def publish(self, **kw: Any) -> Any:
        return publish(self.db, [self.issuer], str(self.root), **kw)

    def index(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / INDEX_NAME).read_text())
        return data

    def entry(self, leaf: Cert) -> dict[str, Any]:
        found: list[dict[str, Any]] = [e for e in self.index()["certificates"] if e["serial"] == str(leaf.cert.serial_number)]
        assert len(found) == 1
        return found[0]

    def files(self, leaf: Cert) -> list[Path]:
        return [self.root / p for p in self.entry(leaf)["paths"]]

    def response_files(self) -> list[Path]:
        return sorted(p for p in (self.root / "ocsp").rglob("*") if p.is_file())


def mtimes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}


def age(paths: list[Path], seconds: int = 1_000_000_000) -> None:
    """Backdate files so an untouched one is told apart from a rewritten one whatever the clock's resolution."""
    for p in paths:
        os.utime(p, ns=(seconds * 10**9, seconds * 10**9))


# -----------------------------------------------------------------------------------------------------------
# naming


@pytest.mark.parametrize(("algorithm", "digest"), [("sha1", hashes.SHA1), ("sha256", hashes.SHA256)])
def test_names_round_trip_to_the_request(tmp_path: Path, algorithm: str, digest: type[hashes.HashAlgorithm]) -> None:
    tree = Tree(tmp_path, n=12)
    tree.publish()
    ca = tree.ca.cert
    for leaf in tree.leaves:
        paths = tree.entry(leaf)["paths"]
        assert len(paths) == 2
        (path,) = [p for p in paths if parse_request_path(p.removeprefix("ocsp/")).hash_algorithm.name == digest().name]
        req = parse_request_path(path.removeprefix("ocsp/"))
        assert req.serial_number == leaf.cert.serial_number
        assert req.issuer_name_hash == hashlib.new(digest().name, ca.subject.public_bytes()).digest()
        expected = x509_ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, ca, digest()).build()
        assert req.issuer_key_hash == expected.issuer_key_hash
        # the file holds the response to exactly that request
        resp = x509_ocsp.load_der_ocsp_response((tree.root / path).read_bytes())
        assert resp.serial_number == leaf.cert.serial_number
        assert resp.hash_algorithm.name == digest().name
        assert resp.issuer_key_hash == req.issuer_key_hash
        assert resp.certificate_status == x509_ocsp.OCSPCertStatus.GOOD
        verify_signature(resp, ca)
        # what an RFC 5019 client sends, percent-encoded, decodes (as nginx decodes it) onto the stored file
        der = request_der(leaf.cert, ca, algorithm)
        sent = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        assert "/" not in sent and "+" not in sent
        assert name_path(urllib.parse.unquote(sent)) == path.removeprefix("ocsp/")


def test_name_path_slashes() -> None:
    assert name_path("MEMw/QTA+=") == "MEMw/QTA+="
    assert name_path("ab//cd/e+==") == "ab/cd/e+=="  # an empty segment: where the file system (and nginx) look
    assert name_path("abc/") == "abc/" + DIR_INDEX  # a trailing slash: the directory's index file
    assert name_path("/abc") == "abc"
    assert request_name(b"\xff\xff\xff") == "////"
    assert name_path("////") == DIR_INDEX


def test_trailing_slash_names_parse_back() -> None:
    # a DER whose base64 ends in "/" (length a multiple of 3, last sextet 63) is stored as "<dir>/_"
    der = bytes.fromhex("3003020103") + b"\x00"  # not a request: only the name mapping is checked
    name = request_name(der + b"\x3f")
    path = name_path(name)
    assert path.endswith("/" + DIR_INDEX) == name.endswith("/")


# -----------------------------------------------------------------------------------------------------------
# files


def test_replace_file_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a" / "b" / "resp"
    pubfiles.replace_file(str(target), b"one")
    assert target.read_bytes() == b"one"
    assert oct(target.stat().st_mode & 0o777) in (oct(0o644 & ~0o022), oct(0o644 & ~os.umask(0o022) or 0o644))

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        pubfiles.replace_file(str(target), b"two")
    assert target.read_bytes() == b"one"  # the old bytes, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["resp"]  # no temporary left behind


def test_write_if_changed_keeps_mtime(tmp_path: Path) -> None:
    target = tmp_path / "f"
    assert pubfiles.write_if_changed(str(target), b"x")
    age([target])
    before = target.stat().st_mtime_ns
    assert not pubfiles.write_if_changed(str(target), b"x")
    assert target.stat().st_mtime_ns == before
    assert pubfiles.write_if_changed(str(target), b"y")
    assert target.stat().st_mtime_ns != before


def test_publish_error_is_plain(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.root.mkdir()
    (tree.root / "ocsp").write_text("a file where the directory goes")
    with pytest.raises(PlainError, match="cannot publish into"):
        tree.publish()


# -----------------------------------------------------------------------------------------------------------
# runs


def test_second_run_touches_nothing(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    first = tree.publish()
    assert (first.certificates, first.written, first.kept, first.removed) == (4, 8, 0, 0)
    every = [*tree.response_files(), tree.root / INDEX_NAME, *(tree.root / "crl").iterdir()]
    assert len(every) == 8 + 1 + 2
    age(every)
    before = mtimes(every)
    again = tree.publish()
    assert (again.written, again.kept, again.removed, again.index_changed) == (0, 8, 0, False)
    assert not again.crls[0].remade and again.crls[0].number == first.crls[0].number
    assert mtimes(every) == before
    assert not [p for p in tree.root.rglob(".publish-*")]


def test_revoked_certificate_files_change_and_others_keep_mtime(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    first = tree.publish()
    victim = tree.leaves[1]
    others = [p for leaf in tree.leaves if leaf is not victim for p in tree.files(leaf)]
    age([*others, *tree.files(victim)])
    before = mtimes(others)
    tree.db.revoke(str(victim.cert.serial_number), aki(tree.ca), 1)
    report = tree.publish()
    assert (report.written, report.kept) == (2, 6)
    assert mtimes(others) == before
    for path in tree.files(victim):
        resp = x509_ocsp.load_der_ocsp_response(path.read_bytes())
        assert resp.certificate_status == x509_ocsp.OCSPCertStatus.REVOKED
        assert resp.revocation_reason == x509.ReasonFlags.key_compromise
        assert path.stat().st_mtime_ns != 10**18
    assert tree.entry(victim)["status"] == "revoked"
    # the CRL lists it, under a higher number
    assert report.crls[0].remade and report.crls[0].number > first.crls[0].number
    crl = x509.load_der_x509_crl((tree.root / report.crls[0].der_path).read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(victim.cert.serial_number) is not None


def test_responses_are_re_signed_near_next_update(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.publish(now=NOW)
    assert tree.publish(now=NOW + dt.timedelta(hours=40)).written == 0  # more than 48h (the margin) left
    late = tree.publish(now=NOW + dt.timedelta(hours=50))  # the 96h responses have less than 48h left
    assert (late.written, late.kept) == (8, 0)
    assert late.crls[0].remade is False  # the 7-day CRL has more than half its lifetime left
    later = tree.publish(now=NOW + dt.timedelta(days=4))
    assert later.crls[0].remade  # and now it has not


def test_expired_certificates_files_are_removed(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    short = make_leaf(tree.ca, "short.example", not_after=NOW + dt.timedelta(hours=2))
    tree.db.insert_certificate(record(short))
    assert tree.publish(now=NOW).certificates == 5
    gone = tree.files(short)
    assert all(p.exists() for p in gone)
    report = tree.publish(now=NOW + dt.timedelta(hours=3))
    assert (report.certificates, report.removed) == (4, 2)
    assert not any(p.exists() for p in gone)
    assert str(short.cert.serial_number) not in {e["serial"] for e in tree.index()["certificates"]}
    # directories made for its names are gone too: every directory under ocsp/ holds something
    assert all(any(d.iterdir()) for d in (tree.root / "ocsp").rglob("*") if d.is_dir())


def test_without_an_index_the_tree_is_swept(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.publish()
    stray = tree.root / "ocsp" / "MEMwQTA" / "stale-response"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"old")
    (tree.root / INDEX_NAME).write_text("not an index")
    report = tree.publish()
    assert report.removed == 1 and not stray.exists()
    assert len(tree.response_files()) == 8


def test_index_content(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.db.revoke(str(tree.leaves[0].cert.serial_number), aki(tree.ca), 4)
    report = tree.publish(now=NOW)
    index = tree.index()
    assert index["version"] == 1 and index["maxAge"] == report.max_age == 24 * 3600
    (issuer,) = index["issuers"]
    assert issuer["aki"] == aki(tree.ca) and issuer["subject"] == tree.ca.cert.subject.rfc4514_string()
    assert issuer["crl"] == {
        "der": f"crl/{aki(tree.ca)}.crl",
        "pem": f"crl/{aki(tree.ca)}.pem",
        "number": str(report.crls[0].number),
        "nextUpdate": report.crls[0].next_update.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    certs = index["certificates"]
    assert [c["serial"] for c in certs] == sorted(str(leaf.cert.serial_number) for leaf in tree.leaves)
    next_update = (NOW.replace(minute=0, second=0) + dt.timedelta(hours=96)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for c in certs:
        assert c["aki"] == aki(tree.ca)
        assert c["status"] == ("revoked" if c["serial"] == str(tree.leaves[0].cert.serial_number) else "good")
        assert c["nextUpdate"] == next_update
        assert all((tree.root / p).is_file() for p in c["paths"])
    # a line per certificate
    lines = (tree.root / INDEX_NAME).read_text().splitlines()
    assert sum(line.startswith('{"serial"') for line in lines) == 4


def test_crl_files(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    report = tree.publish()
    crl_info = report.crls[0]
    der = (tree.root / crl_info.der_path).read_bytes()
    pem = (tree.root / crl_info.pem_path).read_bytes()
    assert pem.startswith(b"-----BEGIN X509 CRL-----")
    assert x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER) == der
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(tree.ca.cert.public_key())  # type: ignore[arg-type]
    assert len(crl) == 0
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == crl_info.number
    assert tree.db.last_crl_number(aki(tree.ca)) == crl_info.number
    # unchanged: no number handed out; a lost PEM is written again from the DER
    (tree.root / crl_info.pem_path).unlink()
    assert tree.publish().crls[0].number == crl_info.number
    assert tree.db.last_crl_number(aki(tree.ca)) == crl_info.number
    assert (tree.root / crl_info.pem_path).read_bytes() == pem


def test_delegated_responder_and_two_issuers(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    ca2 = make_ca("rsa2048", "Second CA")
    responder2 = make_responder(ca2, "p256")
    shared = make_leaf(ca2, "other.example")
    tree.db.insert_certificate(record(shared))
    other = make_ca("p384", "Unlisted CA")
    tree.db.insert_certificate(record(make_leaf(other, "unlisted.example")))
    second = Issuer(OCSPSigner(ca2.cert, responder2.cert, responder2.key))
    report = publish(tree.db, [tree.issuer, second], str(tree.root))
    assert (report.certificates, report.no_signer, len(report.crls)) == (5, 1, 1)
    (path,) = [tree.root / p for p in tree.entry(shared)["paths"] if "sha1" in str(parse_request_path(p[5:]).hash_algorithm.name)]
    resp = x509_ocsp.load_der_ocsp_response(path.read_bytes())
    assert resp.responder_name == responder2.cert.subject
    assert [c.subject for c in resp.certificates] == [responder2.cert.subject]


def test_unpublishable_rows_are_counted(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    bad = make_leaf(tree.ca, "bad.example")
    tree.db.insert_certificate(record(bad, status="revoked", reason=7, revoked_at=NOW))  # 7 is no RFC 5280 reason
    report = tree.publish()
    assert (report.certificates, report.failed) == (4, 1)
    assert report.errors[0].startswith(f"serial {bad.cert.serial_number}: ")
    assert str(bad.cert.serial_number) not in {e["serial"] for e in tree.index()["certificates"]}
    # the CRL lists it without a reason (as crl_from_db does), and is not re-made for it on the next run
    assert len(x509.load_der_x509_crl((tree.root / report.crls[0].der_path).read_bytes())) == 1
    assert not tree.publish().crls[0].remade


def test_no_listed_issuer(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    stranger = make_ca("p256#stranger", "Stranger")  # keys are cached per kind: another key
    with pytest.raises(CfsslError) as exc:
        publish(tree.db, [Issuer(OCSPSigner(stranger.cert, stranger.cert, stranger.key))], str(tree.root))
    assert exc.value.code == 8100


def test_rows_are_streamed_in_key_order(tmp_path: Path) -> None:
    tree = Tree(tmp_path, n=7)
    rows = list(current_certificates(tree.db, now=NOW, page_size=2))
    assert [r.serial for r in rows] == sorted(str(leaf.cert.serial_number) for leaf in tree.leaves)
    assert [r.serial for r in current_certificates(tree.db, now=NOW + dt.timedelta(days=400))] == []


def test_no_key_is_published(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.publish()
    for path in tree.root.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes()


def test_nginx_snippet(tmp_path: Path) -> None:
    text = nginx_snippet(str(tmp_path / "pub"), max_age=86400, crl_max_age=3600, path="ocsp")
    assert "location ^~ /ocsp/ {" in text and f'alias "{tmp_path}/pub/ocsp/";' in text
    assert "default_type application/ocsp-response;" in text and "index _;" in text
    assert 'add_header Cache-Control "max-age=86400, public, no-transform, must-revalidate";' in text
    assert "application/pkix-crl crl;" in text and "max-age=3600," in text
    assert "location ^~ / {" in nginx_snippet("/srv/p", max_age=1, crl_max_age=1)


def test_repeat_goes_on_after_a_failed_run() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def once() -> int:
        calls.append("run")
        runs = calls.count("run")
        if runs == 2:
            raise PlainError("database down")
        return runs

    repeat(dt.timedelta(seconds=30), once, report=lambda n: calls.append(f"report {n}"), runs=3, sleep=sleeps.append, clock=lambda: 0.0)
    assert calls == ["run", "report 1", "run", "run", "report 3"]
    assert sleeps == [30.0, 30.0]


# -----------------------------------------------------------------------------------------------------------
# the command


def run_publish(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = IO(stdin=Stdin(io.BytesIO(b"")), stdout=out, stderr=err, environ=dict(os.environ))
    status = run_command(COMMAND, list(argv), ctx, "cfsslpy ocsppublish")
    return status, out.getvalue(), err.getvalue()


def test_command(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    ca_pem, ca_key = tree.ca.write(tmp_path / "ca", "ca")
    responder = make_responder(tree.ca)
    r_pem, r_key = responder.write(tmp_path / "ca", "ocsp")
    config = tmp_path / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    base = ["-db-config", str(config), "-ca", str(ca_pem), "-responder", str(r_pem), "-responder-key", str(r_key), "-dir", str(tree.root)]

    status, out, err = run_publish(*base, "-nginx", "-")
    assert status == 0, err
    assert "location ^~ / {" in out and "max-age=86400" in out
    assert "no CRL for CN=Publish CA" in err and "-ca-key" in err  # a delegated responder cannot sign the CRL
    assert "published 4 certificate(s): 8 response file(s) written" in err
    assert not (tree.root / "crl").exists()

    snippet = tmp_path / "nginx" / "ocsp.conf"
    status, out, err = run_publish(*base, "-ca-key", str(ca_key), "-nginx", str(snippet), "-path", "/ocsp")
    assert status == 0, err
    assert out == "" and "location ^~ /ocsp/ {" in snippet.read_text()
    assert "0 response file(s) written, 8 kept" in err and "(new)" in err
    assert len(list((tree.root / "crl").iterdir())) == 2

    status, _, err = run_publish(*base[:-2])
    assert status == 1 and "need an output directory (provide with -dir)" in err
    status, _, err = run_publish(*base, "-loop", "25h")
    assert status == 2 and "-loop 25h is longer than 24h0m0s, a quarter of -interval" in err
    status, _, err = run_publish(*base, "-loop", "soon")
    assert status == 2 and 'invalid value "soon" for flag -loop' in err
    status, _, err = run_publish(*base, "-ca", f"{ca_pem},{ca_pem}")
    assert status == 1 and "must list the same number of files" in err


def test_collapsed_double_slashes_parse_back(tmp_path: Path) -> None:
    # find certificates whose request names have "//" (they are stored with it collapsed) and parse them back
    ca = make_ca("p256", "Slash CA")
    found = 0
    for i in range(400):
        leaf = make_leaf(ca, f"s{i}")
        for algorithm in ("sha1", "sha256"):
            name = request_name(request_der(leaf.cert, ca.cert, algorithm))
            if "//" in name or name.endswith("/"):
                found += 1
                path = name_path(name)
                assert "//" not in path
                assert parse_request_path(path).serial_number == leaf.cert.serial_number
        if found >= 3:
            break
    assert found >= 1
    with pytest.raises(ValueError):
        parse_request_path("MEMw/not/a/request")


def test_forged_certificate_is_not_published(tmp_path: Path) -> None:
    # a row whose certificate names the CA (and its key id) but is signed by another key
    tree = Tree(tmp_path)
    forged = Cert(make_cert("forged.example", key("p256#forged"), tree.ca, signing_key=key("p256#forger")), key("p256#forged"))
    tree.db.insert_certificate(record(forged))
    report = tree.publish()
    assert (report.certificates, report.failed) == (4, 1)
    assert "signature does not verify" in report.errors[0]
