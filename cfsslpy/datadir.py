"""A data directory for ``serve -datadir DIR``: the CA it signs with, created on the first run.

Layout (all in DIR, which is created 0700):

* ``ca.pem``: a self-signed CA, CN "cfsslpy serve CA", made from the embedded default CSR
  (``print-defaults csr``: ECDSA P-256) with the built-in CA policy (5 years, cert sign + CRL sign);
* ``ca-key.pem``: its private key, 0600, written atomically;
* ``config.json``: the signing config; its default profile issues TLS server and client certificates for
  one year with usages that are valid for RSA and EC keys alike (digital signature, server auth, client
  auth: no key encipherment, which RFC 8813 forbids for EC keys);
* ``.lock``: an advisory lock (``flock``) held while the directory is checked or initialised, so two
  first runs at the same time make one CA, not two;
* ``certdb.json`` (:func:`ensure_certdb`, 0600): the certificate database configuration serve uses,
  ``{"driver": "sqlite3", "data_source": "DIR/certs.db"}`` (an absolute path), so every certificate the
  server issues is recorded and can be revoked; ``certs.db`` is created by the first connection. A
  directory made before this file existed gets it on its next run. The user may point it elsewhere
  (PostgreSQL) afterwards.

Later runs reuse the files as they are (the user may edit ``config.json``). A directory holding only some
of the three files is an error and is never overwritten: it may hold the only copy of a CA key. The key is
written first and the certificate last, so a crash during the first run leaves a directory that is
reported, not silently replaced. A write that fails during the first run (a full disk, a read-only
directory) is reported with the file and the reason (``write DIR/ca-key.pem: no space left on device``),
and the files that run had already written are removed, so the next run starts afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
from collections.abc import Iterator

from cfsslpy.csr import CertificateRequest
from cfsslpy.errors import PlainError
from cfsslpy.initca import new_ca
from cfsslpy.inputs import WriteFailed, os_reason, write_atomic, write_secret
from cfsslpy.keys import encode_private_key
from cfsslpy.resources import read_asset
from cfsslpy.signer import certificate_pem

log = logging.getLogger(__name__)

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CONFIG = "config.json"
CERTDB_CONFIG = "certdb.json"
CERTDB = "certs.db"
LOCK = ".lock"
CA_COMMON_NAME = "cfsslpy serve CA"

# The signing config written on the first run (Go's config format; the user may edit it afterwards).
DEFAULT_CONFIG: dict[str, object] = {
    "signing": {
        "default": {
            "expiry": "8760h",
            "usages": ["digital signature", "server auth", "client auth"],
        }
    }
}


def ensure_ca(datadir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """The CA certificate, key and signing config paths in ``datadir``, created on the first run.

    Raises :class:`PlainError` when the directory cannot be created or used, or holds only some of the
    files (half-initialised). Concurrent callers are serialised with an exclusive ``flock`` on
    ``DIR/.lock``; the second one finds the first one's CA.
    """
    root = os.path.abspath(os.fspath(datadir))
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except FileExistsError:
        raise PlainError(f"data directory {root} exists and is not a directory") from None
    except OSError as exc:
        raise PlainError(f"cannot create data directory {root}: {os_reason(exc)}") from None
    if not os.path.isdir(root):
        raise PlainError(f"data directory {root} exists and is not a directory")
    mode = stat.S_IMODE(os.stat(root).st_mode)
    if mode & 0o022:
        log.warning("data directory %s is writable by other users (mode %04o): anyone who can write it can replace the CA", root, mode)
    paths = {name: os.path.join(root, name) for name in (CA_CERT, CA_KEY, CONFIG)}
    with _locked(os.path.join(root, LOCK)):
        present = [name for name, path in paths.items() if os.path.lexists(path)]
        if len(present) == len(paths):
            for name, path in paths.items():
                if not os.path.isfile(path):
                    raise PlainError(f"data directory {root}: {name} is not a regular file")
            log.info("using the CA in %s", root)
        elif present:
            missing = [name for name in paths if name not in present]
            raise PlainError(
                f"data directory {root} is half-initialised: it has {', '.join(present)} but not {', '.join(missing)}; "
                "restore the missing files, or move the directory away to start over with a new CA"
            )
        else:
            _initialise(paths)
            log.info("initialised a new CA in %s (CN=%s); signing config %s", root, CA_COMMON_NAME, paths[CONFIG])
    return paths[CA_CERT], paths[CA_KEY], paths[CONFIG]


def ensure_certdb(datadir: str | os.PathLike[str]) -> str:
    """The certificate database configuration in ``datadir`` (created by :func:`ensure_ca` beforehand),
    written on the first call: SQLite in ``DIR/certs.db``. Later calls return the existing file as it is."""
    root = os.path.abspath(os.fspath(datadir))
    path = os.path.join(root, CERTDB_CONFIG)
    with _locked(os.path.join(root, LOCK)):
        if os.path.lexists(path):
            if not os.path.isfile(path):
                raise PlainError(f"data directory {root}: {CERTDB_CONFIG} is not a regular file")
            return path
        config = {"driver": "sqlite3", "data_source": os.path.join(root, CERTDB)}
        try:
            write_secret(path, (json.dumps(config, indent=4) + "\n").encode("utf-8"))
        except OSError as exc:
            raise WriteFailed(path, exc) from None
        log.info("certificate database: %s (configuration %s)", config["data_source"], path)
    return path


def _initialise(paths: dict[str, str]) -> None:
    """Make the CA from the embedded default CSR and write key, config, then certificate (the commit point)."""
    template = json.loads(read_asset("defaults", "csr.json"))
    template["CN"] = CA_COMMON_NAME
    template.pop("hosts", None)  # a CA needs no SANs; the template's example.net would only mislead
    req = CertificateRequest.from_json(template)
    cert, _csr, key = new_ca(req)
    files = [
        (paths[CA_KEY], encode_private_key(key), 0o600),
        (paths[CONFIG], (json.dumps(DEFAULT_CONFIG, indent=4) + "\n").encode("ascii"), 0o644),
        (paths[CA_CERT], certificate_pem(cert), 0o644),
    ]
    written: list[str] = []
    for path, data, mode in files:
        try:
            write_atomic(path, data, mode)
        except OSError as exc:
            # none of these files existed before this run (ensure_ca checked, under the lock): remove what
            # it wrote, so that the next run, with room on the disk, initialises instead of refusing
            for done in written:
                with contextlib.suppress(OSError):
                    os.unlink(done)
            raise WriteFailed(path, exc) from None
        written.append(path)


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created 0600); released on exit, and by the kernel on a crash."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise PlainError(f"cannot open lock file {path}: {os_reason(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
