"""multirootca's core (issue 13): the roots file, checked line by line, loaded all or nothing, and reloaded.

The builders at the top (:func:`make_ca`, :func:`write_config`, :func:`write_roots`) are shared with
tests/api/test_multiroot_api.py and tests/integration/test_multiroot_interop.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cfsslpy.errors import CfsslError
from cfsslpy.multiroot import Authority, RootsError, load_roots, parse_roots, read_roots_file
from cfsslpy.multiroot.rootsfile import KeySpec
from cfsslpy.signer import SignRequest

KEY_A = "0123456789ABCDEF0123456789ABCDEF"
KEY_B = "FFEEDDCCBBAA99887766554433221100"


# ---------------------------------------------------------------------------------------------------------
# builders


@dataclass
class CAFiles:
    cert: Path
    key: Path
    certificate: x509.Certificate


def make_ca(directory: Path, name: str, key: Any = None) -> CAFiles:
    """A CA (10 years) written as ``<name>.pem`` and ``<name>-key.pem`` in ``directory``; a new P-256 key unless
    ``key`` is given (a token key: no key file is written then)."""
    directory.mkdir(parents=True, exist_ok=True)
    on_token = key is not None
    key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"multiroot test {name}")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if on_token:
        return CAFiles(cert_path, key_path, cert)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return CAFiles(cert_path, key_path, cert)


def config_doc(key_hex: str, *, key_name: str = "shared-name", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A signing config whose every profile requires auth (key named ``key_name``, the same name in every
    root's config: isolation must not depend on names)."""
    doc: dict[str, Any] = {
        "signing": {
            "default": {"auth_key": key_name, "expiry": "8760h", "usages": ["digital signature", "server auth"]},
            "profiles": {"client": {"auth_key": key_name, "expiry": "24h", "usages": ["digital signature", "client auth"]}},
        },
        "auth_keys": {key_name: {"type": "standard", "key": key_hex}},
    }
    for name, profile in (extra or {}).items():
        doc["signing"]["profiles"][name] = profile
    return doc


def write_config(path: Path, key_hex: str, **kw: Any) -> Path:
    path.write_text(json.dumps(config_doc(key_hex, **kw)))
    return path


def write_roots(path: Path, roots: dict[str, dict[str, str]]) -> Path:
    lines = []
    for label, entries in roots.items():
        lines.append(f"[ {label} ]")
        lines += [f"{k} = {v}" for k, v in entries.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def two_roots(tmp_path: Path, **overrides: dict[str, str]) -> Path:
    """``roots.conf`` in ``tmp_path`` with roots ``alpha`` (auth key KEY_A) and ``beta`` (KEY_B), every path
    relative to the roots file."""
    make_ca(tmp_path / "alpha", "ca")
    make_ca(tmp_path / "beta", "ca")
    write_config(tmp_path / "alpha" / "config.json", KEY_A)
    write_config(tmp_path / "beta" / "config.json", KEY_B)
    roots = {
        label: {"private": f"file://{label}/ca-key.pem", "certificate": f"{label}/ca.pem", "config": f"{label}/config.json"}
        for label in ("alpha", "beta")
    }
    for label, entries in overrides.items():
        roots[label].update(entries)
    return write_roots(tmp_path / "roots.conf", roots)


def new_csr(cn: str = "leaf.example.com") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------------------------------------
# the roots file


def parse(text: str, base: str = "/srv/ca") -> Any:
    return parse_roots(text, path="roots.conf", base=base)


def test_cfssl_example_file_parses_with_paths_relative_to_the_roots_file() -> None:
    spec = parse(
        "# cfssl's doc/cmd/multiroot.txt example\n"
        "[ primary ]\n"
        "private = file://testdata/server.key\n"
        "certificate = testdata/server.crt\n"
        "config = testdata/config.json\n"
        "nets = 10.0.2.1/24,172.16.3.1/24, 192.168.3.15/32\n"
        " \n"
        "[ backup ]\n"
        'private = "file:///etc/ca/backup.key"\n'
        "certificate = 'testdata/server.crt'\n"
        "config = testdata/config.json\n"
        "dbconfig = testdata/db-config.json\n"
    )
    primary, backup = spec.roots
    assert (primary.label, primary.line, backup.label, backup.line) == ("primary", 2, "backup", 8)
    assert primary.key == KeySpec("file", "/srv/ca/testdata/server.key")
    assert primary.certificate == "/srv/ca/testdata/server.crt"
    assert primary.config == "/srv/ca/testdata/config.json"
    assert [str(n) for n in primary.nets or ()] == ["10.0.2.0/24", "172.16.3.0/24", "192.168.3.15/32"]
    assert primary.dbconfig == ""
    assert backup.key == KeySpec("file", "/etc/ca/backup.key")
    assert backup.nets is None
    assert backup.dbconfig == "/srv/ca/testdata/db-config.json"


def test_keys_before_any_section_are_the_root_default_as_in_cfssl() -> None:
    spec = parse("private = file://k.pem\ncertificate = c.pem\nconfig = x.json\n")
    assert spec.labels() == ["default"]


def test_pkcs11_uri_and_its_relative_pin_file() -> None:
    uri = "pkcs11:token=ca;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pins/ca"
    spec = parse(f"[hsm]\nprivate = {uri}\ncertificate = c.pem\nconfig = x.json\n")
    key = spec.roots[0].key
    assert key.kind == "pkcs11"
    assert "pin-source=file:/srv/ca/pins/ca" in key.location
    assert "token=ca;object=root" in key.location


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[a]\nprivate = file://k\ncertificate c.pem\n", 3, "not a [label], key = value or # comment line"),
        ("[a]\nprivate = file://k\n[b]\n[a]\n", 4, "root 'a' is defined twice (first on line 1)"),
        ("[a]\nprivate = file://k\nprivate = file://j\n", 3, "root 'a': private: given twice in this root (first on line 2)"),
        ("[a]\nprivat = file://k\n", 2, "root 'a': privat: unknown key (known keys: private, certificate, config, nets, dbconfig)"),
        ("[a]\nro_server = x:1\n", 2, "Red October keys are not supported"),
        ("[a]\ncertificate = c\nconfig = x\n", 1, "root 'a': private: missing"),
        ("[a]\nprivate = file://k\nconfig = x\n", 1, "root 'a': certificate: missing"),
        ("[a]\nprivate = file://k\ncertificate = c\n", 1, "root 'a': config: missing"),
        (
            "[a]\nprivate = rofile://k.enc\ncertificate = c\nconfig = x\n",
            2,
            "root 'a': private: rofile:// (a key encrypted with Red October) is not supported",
        ),
        ("[a]\nprivate = https://k\ncertificate = c\nconfig = x\n", 2, "unsupported private key scheme 'https'"),
        ("[a]\nprivate = /etc/k.pem\ncertificate = c\nconfig = x\n", 2, "unsupported private key scheme none"),
        ("[a]\nprivate = file:k.pem\ncertificate = c\nconfig = x\n", 2, "a key file is written file://path"),
        (
            "[a]\nprivate = pkcs11:token=x;bogus=1\ncertificate = c\nconfig = x\n",
            2,
            "root 'a': private: PKCS#11 URI: unknown path attribute 'bogus'",
        ),
        (
            "[a]\nprivate = file://k\ncertificate = c\nconfig = x\nnets = 10.0.0.0/8, 10.1.2.3\n",
            5,
            "root 'a': nets: '10.1.2.3' is not a network",
        ),
        ("[a]\nprivate = file://k\ncertificate = c\nconfig = x\nnets = 10.0.0.0/33\n", 5, "'10.0.0.0/33' is not a network"),
        ("[a]\nprivate = file://k\ncertificate = c\nconfig = x\nnets = 10.0.0.0/8,\n", 5, "'' is not a network"),
    ],
)
def test_bad_roots_files_name_file_line_root_and_key(text: str, line: int, words: str) -> None:
    with pytest.raises(RootsError) as info:
        parse(text)
    assert info.value.message.startswith(f"roots.conf:{line}: "), info.value.message
    assert words in info.value.message
    assert info.value.line == line


def test_an_empty_file_has_no_roots() -> None:
    with pytest.raises(RootsError, match=r"^roots\.conf: no roots"):
        parse("# nothing\n\n")


def test_unreadable_roots_file(tmp_path: Path) -> None:
    with pytest.raises(RootsError, match="No such file or directory"):
        read_roots_file(str(tmp_path / "missing.conf"))


# ---------------------------------------------------------------------------------------------------------
# loading: all or nothing, each failure naming its root


def test_two_roots_load_from_another_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = two_roots(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    roots = load_roots(os.path.relpath(path), "alpha")
    try:
        assert list(roots.roots) == ["alpha", "beta"]
        assert roots.get("").label == "alpha"  # type: ignore[union-attr]
        assert roots.get("beta").label == "beta"  # type: ignore[union-attr]
        assert roots.get("gamma") is None
        alpha, beta = roots.roots["alpha"], roots.roots["beta"]
        assert alpha.policy.default.auth_key_bytes == bytes.fromhex(KEY_A)
        assert beta.policy.default.auth_key_bytes == bytes.fromhex(KEY_B)  # same key name, its own bytes
        assert alpha.replay_guard is not beta.replay_guard
        cert = beta.signer.sign(SignRequest(request=new_csr()))
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate((tmp_path / "beta" / "ca.pem").read_bytes()))
    finally:
        roots.close()


def _error(path: Path, label: str = "") -> RootsError:
    with pytest.raises(RootsError) as info:
        load_roots(str(path), label)
    return info.value


def test_a_key_that_does_not_match_its_certificate_names_the_root(tmp_path: Path) -> None:
    path = two_roots(tmp_path, beta={"certificate": "alpha/ca.pem"})
    err = _error(path)
    assert (err.label, err.key, err.line) == ("beta", "private", 7)
    assert "code 2300" in err.message and "root 'beta'" in err.message


def test_a_missing_key_file_names_the_root(tmp_path: Path) -> None:
    err = _error(two_roots(tmp_path, alpha={"private": "file://alpha/nope.pem"}))
    assert (err.label, err.key) == ("alpha", "private")


def test_profiles_without_auth_are_refused(tmp_path: Path) -> None:
    path = two_roots(tmp_path)
    doc = config_doc(KEY_B)
    doc["signing"]["profiles"]["open"] = {"expiry": "1h", "usages": ["digital signature"]}
    (tmp_path / "beta" / "config.json").write_text(json.dumps(doc))
    err = _error(path)
    assert (err.label, err.key) == ("beta", "config")
    assert "profile 'open' has no auth_key" in err.message


def test_a_default_profile_without_auth_is_refused(tmp_path: Path) -> None:
    path = two_roots(tmp_path)
    doc = config_doc(KEY_A)
    del doc["signing"]["default"]["auth_key"]
    (tmp_path / "alpha" / "config.json").write_text(json.dumps(doc))
    assert "profile 'default' has no auth_key" in _error(path).message


def test_a_bad_config_names_the_root_and_the_cfssl_error(tmp_path: Path) -> None:
    path = two_roots(tmp_path)
    (tmp_path / "beta" / "config.json").write_text('{"signing": {"default": {"auth_key": "missing", "expiry": "1h"}}}')
    err = _error(path)
    assert (err.label, err.key) == ("beta", "config")
    assert "failed to find auth_key in auth_keys section" in err.message


def test_a_bad_dbconfig_names_the_root(tmp_path: Path) -> None:
    (tmp_path / "db.json").write_text('{"driver": "nosuchdb", "data_source": "x"}')
    err = _error(two_roots(tmp_path, alpha={"dbconfig": "db.json"}))
    assert (err.label, err.key) == ("alpha", "dbconfig")


def test_the_default_label_must_name_a_root(tmp_path: Path) -> None:
    err = _error(two_roots(tmp_path), "gamma")
    assert "-l 'gamma' is not a root of this file (roots: alpha, beta)" in err.message


def test_a_failing_root_closes_the_databases_already_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "db.json").write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "a.db")}))
    path = two_roots(tmp_path, alpha={"dbconfig": "db.json"}, beta={"private": "file://beta/nope.pem"})
    from cfsslpy.certdb import CertDB

    closed: list[CertDB] = []
    original = CertDB.close

    def close(self: CertDB) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(CertDB, "close", close)
    assert _error(path).label == "beta"
    assert len(closed) == 1


def test_each_root_records_only_in_its_own_certdb(tmp_path: Path) -> None:
    import sqlite3

    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / f"{name}.db")}))
    path = two_roots(tmp_path, alpha={"dbconfig": "a.json"}, beta={"dbconfig": "b.json"})
    roots = load_roots(str(path))
    try:
        cert = roots.roots["alpha"].signer.sign(SignRequest(request=new_csr(), label="alpha"))
    finally:
        roots.close()

    def serials(db: str) -> list[tuple[str, str]]:
        conn = sqlite3.connect(tmp_path / db)
        try:
            return [(str(r[0]), str(r[1])) for r in conn.execute("SELECT serial_number, ca_label FROM certificates")]
        finally:
            conn.close()

    assert serials("a.db") == [(str(cert.serial_number), "alpha")]
    assert serials("b.db") == []


@pytest.mark.parametrize(
    ("nets", "address", "ok"),
    [
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "127.0.0.1", False),
        ("10.0.0.0/8", "::ffff:10.0.0.1", True),
        ("2001:db8::/32", "2001:db8::1", True),
        ("2001:db8::/32", "10.0.0.1", False),
        ("10.0.0.0/8", "not an address", False),
        ("10.0.0.0/8", "", False),
    ],
)
def test_nets_allow_list(tmp_path: Path, nets: str, address: str, ok: bool) -> None:
    roots = load_roots(str(two_roots(tmp_path, alpha={"nets": nets})))
    try:
        assert roots.roots["alpha"].permits(address) is ok
        assert roots.roots["beta"].permits(address) is True  # no nets: every peer
    finally:
        roots.close()


# ---------------------------------------------------------------------------------------------------------
# reload


def test_reload_swaps_in_a_good_file_and_keeps_the_replay_guards(tmp_path: Path) -> None:
    path = two_roots(tmp_path)
    authority = Authority(str(path), "alpha")
    try:
        before = authority.roots
        make_ca(tmp_path / "gamma", "ca")
        write_config(tmp_path / "gamma" / "config.json", KEY_A)
        text = path.read_text() + "[gamma]\nprivate = file://gamma/ca-key.pem\ncertificate = gamma/ca.pem\nconfig = gamma/config.json\n"
        path.write_text(text)
        assert authority.reload(grace=0) is True
        after = authority.roots
        assert after is not before and list(after.roots) == ["alpha", "beta", "gamma"]
        assert after.roots["alpha"].replay_guard is before.roots["alpha"].replay_guard
        assert authority.generation == 2
    finally:
        authority.close()


@pytest.mark.parametrize(
    "broken",
    [
        "[alpha]\nprivate = rofile://x\n",
        "garbage line\n",
        "[alpha]\nprivate = file://alpha/ca-key.pem\ncertificate = beta/ca.pem\nconfig = alpha/config.json\n",
    ],
    ids=["rofile", "syntax", "mismatched key"],
)
def test_reload_with_a_broken_file_keeps_the_old_roots_and_logs(tmp_path: Path, broken: str, caplog: pytest.LogCaptureFixture) -> None:
    path = two_roots(tmp_path)
    authority = Authority(str(path), "alpha")
    try:
        before = authority.roots
        path.write_text(broken)
        with caplog.at_level(logging.ERROR, logger="cfsslpy.multiroot"):
            assert authority.reload(grace=0) is False
        assert authority.roots is before and authority.generation == 1
        assert any("reload of" in r.getMessage() and "the roots in force stay (alpha, beta)" in r.getMessage() for r in caplog.records)
        cert = authority.roots.roots["beta"].signer.sign(SignRequest(request=new_csr()))  # still signing
        assert cert.issuer == x509.load_pem_x509_certificate((tmp_path / "beta" / "ca.pem").read_bytes()).subject
    finally:
        authority.close()


def test_a_signing_failure_is_a_cfssl_error(tmp_path: Path) -> None:
    roots = load_roots(str(two_roots(tmp_path)))
    try:
        with pytest.raises(CfsslError):
            roots.roots["alpha"].signer.sign(SignRequest(request=b"not a CSR"))
    finally:
        roots.close()
