"""The serve data directory: a CA made on the first run, reused afterwards, never overwritten."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cfsslpy.config import Config
from cfsslpy.datadir import CA_CERT, CA_COMMON_NAME, CA_KEY, CERTDB_CONFIG, CONFIG, ensure_ca, ensure_certdb
from cfsslpy.errors import PlainError
from cfsslpy.golang.json import HOUR
from cfsslpy.signer import load_issuer


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_creates_a_ca_key_and_config(tmp_path: Path) -> None:
    d = tmp_path / "data"
    cert_path, key_path, config_path = ensure_ca(d)
    assert (cert_path, key_path, config_path) == (str(d / CA_CERT), str(d / CA_KEY), str(d / CONFIG))
    assert mode(d) == 0o700
    assert mode(key_path) == 0o600
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_COMMON_NAME
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)  # the embedded default CSR: P-256
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    issuer = load_issuer(cert_path, key_path)  # the key matches and the certificate may sign
    assert issuer.cert == cert
    config = Config.from_file(config_path)
    default = config.signing.default
    assert default.expiry == 8760 * HOUR
    assert default.usages == ["digital signature", "server auth", "client auth"]
    assert default.auth_key == ""
    assert sorted(p.name for p in d.iterdir()) == sorted([".lock", CA_CERT, CA_KEY, CONFIG])


def test_later_runs_reuse_the_ca(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in (CA_CERT, CA_KEY, CONFIG)}
    # the user may edit the config; it is kept as is
    (tmp_path / CONFIG).write_text(json.dumps({"signing": {"default": {"expiry": "24h"}}}))
    assert ensure_ca(tmp_path) == first
    assert (tmp_path / CA_CERT).read_bytes() == before[CA_CERT]
    assert (tmp_path / CA_KEY).read_bytes() == before[CA_KEY]
    assert json.loads((tmp_path / CONFIG).read_text())["signing"]["default"]["expiry"] == "24h"


@pytest.mark.parametrize("missing", [CA_CERT, CA_KEY, CONFIG])
def test_a_half_initialised_directory_is_an_error_and_is_left_alone(tmp_path: Path, missing: str) -> None:
    ensure_ca(tmp_path)
    (tmp_path / missing).unlink()
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(PlainError, match=f"half-initialised: .*but not {missing}"):
        ensure_ca(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == kept


def test_a_file_in_place_of_the_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(PlainError, match="not a directory"):
        ensure_ca(tmp_path / "f")


def test_a_directory_in_place_of_a_file_is_an_error(tmp_path: Path) -> None:
    ensure_ca(tmp_path)
    (tmp_path / CONFIG).unlink()
    (tmp_path / CONFIG).mkdir()
    with pytest.raises(PlainError, match="config.json is not a regular file"):
        ensure_ca(tmp_path)


def _first_run(directory: str, queue: multiprocessing.Queue[bytes]) -> None:
    cert, _, _ = ensure_ca(directory)
    queue.put(Path(cert).read_bytes())


def test_concurrent_first_runs_make_one_ca(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[bytes] = ctx.Queue()
    procs = [ctx.Process(target=_first_run, args=(str(tmp_path / "d"), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        certs = {queue.get(timeout=30) for _ in procs}
    finally:
        for p in procs:
            p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    assert len(certs) == 1
    assert (tmp_path / "d" / CA_CERT).read_bytes() in certs


def test_certdb_config_is_written_once_with_an_absolute_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ensure_ca("rel")
    path = ensure_certdb("rel")
    assert path == str(tmp_path / "rel" / CERTDB_CONFIG)
    assert mode(path) == 0o600
    assert json.loads(Path(path).read_text()) == {"driver": "sqlite3", "data_source": str(tmp_path / "rel" / "certs.db")}
    # later runs keep the file as the user left it (e.g. pointed at PostgreSQL)
    Path(path).write_text('{"driver": "postgres", "data_source": "postgres://u@h/db"}')
    assert ensure_certdb("rel") == path
    assert json.loads(Path(path).read_text())["driver"] == "postgres"


def test_certdb_config_that_is_not_a_file_is_an_error(tmp_path: Path) -> None:
    ensure_ca(tmp_path)
    (tmp_path / CERTDB_CONFIG).mkdir()
    with pytest.raises(PlainError, match="certdb.json is not a regular file"):
        ensure_certdb(tmp_path)
