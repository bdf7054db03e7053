"""A private, throwaway PostgreSQL cluster for the certdb tests.

``postgres_cluster`` (session scope) runs ``initdb`` and ``pg_ctl start`` from Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``) in a temporary directory owned by the ``postgres`` system user (the
tests run as root and ``initdb`` refuses root), listening on 127.0.0.1 at a free port and on a Unix socket
in that directory. It serves TLS with a certificate for ``127.0.0.1`` (only) issued by a CA made here, trusts local
connections, and has one role that must log in with a SCRAM password. The cluster is stopped
(``pg_ctl stop -m immediate``) and the directory removed at the end, whatever happened.

Without PostgreSQL the tests using it are skipped, or fail under ``CFSSLPY_REQUIRE_INTEGRATION=1``.
Import the fixtures into a test module: ``from integration.pg import Cluster, postgres_cluster, pg_database``.
"""

from __future__ import annotations

import datetime as dt
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REQUIRE_INTEGRATION
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUPERUSER = "postgres"
PASSWORD_ROLE = "cfssl_pw"
PASSWORD = "s3cret-Pa55word-9f2c"  # the role's password; tests check it never leaks into messages


@dataclass(frozen=True)
class Cluster:
    directory: Path
    port: int
    bindir: Path
    ca_file: Path  # the CA that issued the server's TLS certificate (for sslrootcert)

    @property
    def socket_dir(self) -> str:
        return str(self.directory)

    def url(self, dbname: str, *, user: str = SUPERUSER, password: str | None = None, **params: str) -> str:
        """``postgres://user[:password]@127.0.0.1:port/dbname?sslmode=disable&...`` (``sslmode`` overridable)."""
        query = {"sslmode": "disable", **params}
        auth = urllib.parse.quote(user, safe="")
        if password is not None:
            auth += ":" + urllib.parse.quote(password, safe="")
        return f"postgres://{auth}@127.0.0.1:{self.port}/{dbname}?{urllib.parse.urlencode(query)}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the Unix socket; stdout (tuples only, unaligned)."""
        return _as_postgres(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.socket_dir,
                "-p",
                str(self.port),
                "-d",
                dbname,
                "-c",
                sql,
            ]
        ).stdout

    def create_database(self, dbname: str) -> str:
        self.psql(f'CREATE DATABASE "{dbname}"')
        self.psql(f'GRANT ALL ON SCHEMA public TO "{PASSWORD_ROLE}"', dbname)
        return dbname


def _find_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(os.path.realpath(found)).parent if found else None


def _unavailable(message: str) -> None:
    if REQUIRE_INTEGRATION:
        pytest.fail(f"{message} (required: CFSSLPY_REQUIRE_INTEGRATION=1)")
    pytest.skip(message)


def _as_postgres(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    command = argv if os.geteuid() != 0 else ["runuser", "-u", SUPERUSER, "--", *argv]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tls_files(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 (not ``localhost``) in ``directory``; returns the CA file."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfsslpy test PostgreSQL CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfsslpy test PostgreSQL server")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    bindir = _find_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed (Debian: postgresql)")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SUPERUSER)
        except KeyError:
            _unavailable("the postgres system user does not exist (initdb refuses to run as root)")
        if shutil.which("runuser") is None:
            _unavailable("runuser is not installed (needed to run initdb as postgres)")
    root = Path(tempfile.mkdtemp(prefix="cfsslpy-pg-"))
    data = root / "data"
    started = False
    try:
        if os.geteuid() == 0:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chmod(root, 0o755)
        _as_postgres([str(bindir / "initdb"), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync", "-D", str(data)])
        ca_file = _tls_files(root)
        for name in ("server.crt", "server.key"):
            os.chmod(root / name, 0o600)
            if os.geteuid() == 0:
                os.chown(root / name, owner.pw_uid, owner.pw_gid)
        hba = data / "pg_hba.conf"
        rules = hba.read_text()
        hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + rules)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"ssl = on\nssl_cert_file = '{root / 'server.crt'}'\nssl_key_file = '{root / 'server.key'}'\n"
                "fsync = off\nmax_connections = 60\npassword_encryption = 'scram-sha-256'\n"
            )
        port = _free_port()
        options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1"
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "-t", "60", "start"])
        started = True
        cluster = Cluster(root, port, bindir, ca_file)
        cluster.psql(f"CREATE ROLE \"{PASSWORD_ROLE}\" LOGIN PASSWORD '{PASSWORD}'")
        yield cluster
    finally:
        if started:
            try:
                _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(root, ignore_errors=True)


_counter = itertools.count()


@pytest.fixture
def pg_database(postgres_cluster: Cluster) -> str:
    """A fresh, empty database in the session's cluster (its name)."""
    return postgres_cluster.create_database(f"certdb_{os.getpid()}_{next(_counter)}")
