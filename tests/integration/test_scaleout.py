"""Several ``serve`` instances on one PostgreSQL certdb are one CA (issue 15, part 1).

Two real ``serve`` processes (two worker processes each) on different loopback ports share one database of the
session's throwaway PostgreSQL cluster (:mod:`integration.pg`), as two hosts behind a load balancer would:

* an authsign token sent to both at once is accepted exactly once (the replay guard lives in the certdb);
* 4 x 50 concurrent signs spread over both are all recorded;
* CRL numbers handed out by both are distinct, and increase from one request to the next;
* a revocation through one is reported by a live ``ocspserve`` on the same database once its cache TTL passed;
* two instances starting together on a fresh database migrate it once;
* the readiness endpoint follows the database, liveness does not;
* PostgreSQL stopped under load: clean envelopes with cfssl's 11000 (no traceback, no certificate returned
  unrecorded), and issuing resumes once it is back. That test stops and restarts the session's cluster, so
  it runs last in this module.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CA, RunCli, make_ca
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from integration.pg import SUPERUSER, Cluster, pg_database, postgres_cluster
from integration.test_serve import SIGN, Serve, new_csr, serving
from servers import process

from cfsslpy.auth import AuthenticatedRequest, ReplayGuard
from cfsslpy.certdb import DBConfig
from cfsslpy.certdb.replay import PostgresTokens
from cfsslpy.errors import PlainError

__all__ = ["pg_database", "postgres_cluster"]  # fixtures, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

AUTH_KEY = "5f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
AUTHSIGN = "/api/v1/cfssl/authsign"
CRL = "/api/v1/cfssl/crl"
REVOKE = "/api/v1/cfssl/revoke"
HEALTH = "/api/v1/cfssl/health"
READY = "/api/v1/cfsslpy/ready"
LISTENING = re.compile(r"Now listening on (\S+)")


@dataclass
class Site:
    """One CA, its signing config and the -db-config of a fresh PostgreSQL database."""

    ca: CA
    config: Path
    db_config: Path
    cluster: Cluster
    dbname: str

    def serve_args(self, workers: int = 2) -> list[str]:
        args = ["-ca", str(self.ca.cert), "-ca-key", str(self.ca.key), "-config", str(self.config)]
        return [*args, "-db-config", str(self.db_config), "-workers", str(workers)]

    def sql(self, query: str) -> str:
        return str(self.cluster.psql(query, self.dbname)).strip()


@pytest.fixture
def site(run_cli: RunCli, tmp_path: Path, postgres_cluster: Cluster, pg_database: str) -> Site:
    ca = make_ca(run_cli, tmp_path / "ca")
    config = tmp_path / "config.json"
    usages = ["digital signature", "key encipherment", "server auth"]
    config.write_text(
        json.dumps(
            {
                "signing": {
                    "default": {"expiry": "720h", "usages": usages},
                    "profiles": {"guarded": {"expiry": "720h", "usages": usages, "auth_key": "k", "auth_replay_window": "5m"}},
                },
                "auth_keys": {"k": {"type": "standard", "key": AUTH_KEY}},
            }
        )
    )
    db_config = tmp_path / "db.json"
    db_config.write_text(json.dumps({"driver": "postgres", "data_source": postgres_cluster.url(pg_database)}))
    return Site(ca, config, db_config, postgres_cluster, pg_database)


@contextlib.contextmanager
def two_serves(site: Site) -> Iterator[tuple[Serve, Serve]]:
    with serving(*site.serve_args()) as a, serving(*site.serve_args()) as b:
        assert a.port != b.port
        yield a, b


def call(url: str, body: bytes | None = None, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """GET (no body) or POST JSON; the status and the parsed envelope, whatever the status."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            pytest.fail(f"HTTP {exc.code} without a JSON envelope: {raw[:300]!r}")


def sign(server: Serve, cn: str) -> tuple[int, dict[str, Any]]:
    csr, _key = new_csr(cn, (cn,))
    return call(server.url + SIGN, json.dumps({"certificate_request": csr}).encode())


def serial_of(envelope: dict[str, Any]) -> str:
    return str(x509.load_pem_x509_certificate(envelope["result"]["certificate"].encode()).serial_number)


def recorded_serials(site: Site) -> set[str]:
    return set(site.sql("SELECT convert_from(serial_number, 'UTF8') FROM certificates").split())


def crl_number(envelope: dict[str, Any]) -> int:
    crl = x509.load_der_x509_crl(base64.b64decode(envelope["result"]))
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


# ---------------------------------------------------------------------------------------------------------
# the replay guard in the certdb


def authsign_body(cn: str, *, timestamp: int | None = None) -> bytes:
    csr, _key = new_csr(cn, (cn,))
    request = json.dumps({"certificate_request": csr, "profile": "guarded"}).encode()
    auth = AuthenticatedRequest.build(bytes.fromhex(AUTH_KEY), request, timestamp=timestamp, timestamped=True)
    return json.dumps(auth.to_json()).encode()


def test_one_token_sent_to_both_instances_is_accepted_once(site: Site) -> None:
    bodies = [authsign_body(f"token{i}.example.net") for i in range(6)]
    with two_serves(site) as (a, b), concurrent.futures.ThreadPoolExecutor(4) as pool:
        for body in bodies:
            # the same body to both instances at the same moment, twice each
            answers = list(pool.map(call, [u + AUTHSIGN for u in (a.url, b.url, a.url, b.url)], [body] * 4))
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200, 400, 400, 400], answers
            refused = [env for status, env in answers if status == 400]
            assert all(env["errors"] == [{"code": 400, "message": "invalid token"}] for env in refused), refused
        assert "Traceback" not in a.log + b.log
    assert site.sql("SELECT count(*) FROM cfsslpy_auth_replay") == str(len(bodies))
    assert site.sql("SELECT count(*) FROM certificates") == str(len(bodies))


def test_certdb_token_store_purges_and_fails_closed(site: Site, postgres_cluster: Cluster) -> None:
    dsn = postgres_cluster.url(site.dbname)
    now = time.time()
    guard = ReplayGuard(store=PostgresTokens(DBConfig("postgres", dsn), purge_interval=0.0))
    other = ReplayGuard(store=PostgresTokens(DBConfig("postgres", dsn)))
    try:
        assert guard.first_use(b"token-1", now + 1, now=now) is True
        assert other.first_use(b"token-1", now + 1, now=now) is False  # another instance's connection
        assert guard.first_use(b"token-2", now + 300, now=now + 2) is True  # purges token-1 (expired at now+1)
        assert site.sql("SELECT count(*) FROM cfsslpy_auth_replay") == "1"
        assert site.sql("SELECT encode(digest, 'hex') FROM cfsslpy_auth_replay") == hashlib.sha256(b"token-2").hexdigest()
    finally:
        guard.close()
        other.close()
    # a database that cannot be reached refuses the token (503), it never lets it through
    unreachable = ReplayGuard(store=PostgresTokens(DBConfig("postgres", f"postgres://{SUPERUSER}@127.0.0.1:1/nodb?sslmode=disable")))
    with pytest.raises(PlainError) as info:
        unreachable.first_use(b"token-3", now + 300, now=now)
    assert (info.value.status, info.value.message) == (503, "replay guard unavailable")
    unreachable.close()
    with pytest.raises(ValueError, match="PostgreSQL"):
        PostgresTokens(DBConfig("sqlite3", str(site.db_config.with_name("x.db"))))


# ---------------------------------------------------------------------------------------------------------
# issuing, CRL numbers and revocation across instances


def test_concurrent_signs_across_both_instances_are_all_recorded(site: Site) -> None:
    with two_serves(site) as (a, b):

        def client(n: int) -> list[str]:
            serials = []
            for i in range(50):
                status, envelope = sign((a, b)[(n + i) % 2], f"c{n}-{i}.example.net")
                assert status == 200, envelope
                serials.append(serial_of(envelope))
            return serials

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            issued = [serial for serials in pool.map(client, range(4)) for serial in serials]
        assert "Traceback" not in a.log + b.log
    assert len(issued) == len(set(issued)) == 200
    assert site.sql("SELECT count(*) FROM certificates") == "200"
    assert recorded_serials(site) == set(issued)


def test_crl_numbers_from_both_instances_are_distinct_and_increasing(site: Site) -> None:
    with two_serves(site) as (a, b):
        status, envelope = sign(a, "revoked.example.net")
        assert status == 200
        (aki,) = site.sql("SELECT DISTINCT convert_from(authority_key_identifier, 'UTF8') FROM certificates").split()
        revoke = {"serial": serial_of(envelope), "authority_key_id": aki, "reason": "keyCompromise"}
        assert call(b.url + REVOKE, json.dumps(revoke).encode())[0] == 200
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda url: call(url + CRL), [a.url, b.url] * 10))
        assert all(status == 200 for status, _ in answers), answers
        concurrent_numbers = [crl_number(env) for _, env in answers]
        assert len(set(concurrent_numbers)) == 20
        # one after the other, alternating: each number above the one before, whichever instance made it
        sequence = [crl_number(call(server.url + CRL)[1]) for server in (a, b, a, b, b, a)]
        assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
        assert sequence[0] > max(concurrent_numbers)
    assert site.sql(f"SELECT crl_number FROM cfsslpy_crl_numbers WHERE authority_key_identifier = '{aki}'") == str(sequence[-1])


def ocsp_status(url: str, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    req = urllib.request.Request(
        url, data=request.public_bytes(serialization.Encoding.DER), headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(req, timeout=20) as resp:
        answer = ocsp.load_der_ocsp_response(resp.read())
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    public_key = issuer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and answer.signature_hash_algorithm is not None
    public_key.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm))  # the CA signs
    return answer.certificate_status


def test_revocation_through_one_instance_reaches_the_other_hosts_live_ocsp(site: Site) -> None:
    ca_cert = x509.load_pem_x509_certificate(site.ca.cert.read_bytes())
    ttl = 1.0
    command = [
        sys.executable,
        "-m",
        "cfsslpy",
        "ocspserve",
        "-address",
        "127.0.0.1",
        "-port",
        "0",
        "-workers",
        "2",
        "-db-config",
        str(site.db_config),
        "-ca",
        str(site.ca.cert),
        "-responder",
        str(site.ca.cert),
        "-responder-key",
        str(site.ca.key),
        "-cache-ttl",
        f"{ttl:g}s",
    ]
    with serving(*site.serve_args()) as a, process(command) as responder:
        url = responder.wait_for(LISTENING, 30.0).group(1)
        status, envelope = sign(a, "ocsp.example.net")
        assert status == 200
        cert = x509.load_pem_x509_certificate(envelope["result"]["certificate"].encode())
        for _ in range(4):  # both responder workers cache a "good" answer
            assert ocsp_status(url, cert, ca_cert) == ocsp.OCSPCertStatus.GOOD
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki is not None
        revoke = {"serial": str(cert.serial_number), "authority_key_id": aki.hex(), "reason": "superseded"}
        assert call(a.url + REVOKE, json.dumps(revoke).encode()) == (200, {"success": True, "result": {}, "errors": [], "messages": []})
        time.sleep(ttl + 0.3)
        for _ in range(4):
            assert ocsp_status(url, cert, ca_cert) == ocsp.OCSPCertStatus.REVOKED
        assert "Traceback" not in a.log + responder.log


# ---------------------------------------------------------------------------------------------------------
# starting together, readiness, losing the database


def test_two_instances_migrate_a_fresh_database_once(site: Site) -> None:
    assert site.sql("SELECT to_regclass('goose_db_version') IS NULL") == "t"
    with contextlib.ExitStack() as stack:
        # started at the same moment: both migrate on their first connection, before they listen
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(2))
        started = list(pool.map(lambda _: stack.enter_context(serving(*site.serve_args())), range(2)))
        for server in started:
            assert sign(server, "after-migration.example.net")[0] == 200
    rows = site.sql("SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id").split()
    assert rows == ["0|1", "1|1", "2|1", "1001|1", "1002|1"]
    # and plain processes racing on another fresh database
    fresh = site.cluster.create_database(f"{site.dbname}_race")
    script = (
        "import sys; from cfsslpy.certdb import CertDB, DBConfig\n"
        "sys.stdin.readline()\n"  # all start, then all connect when the test writes a line
        f"db = CertDB(DBConfig('postgres', {site.cluster.url(fresh)!r})); db.issuers(); db.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(1.0)  # the interpreters are up and waiting
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    rows = site.cluster.psql("SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id", fresh).split()
    assert rows == ["0|1", "1|1", "2|1", "1001|1", "1002|1"]


def test_losing_postgresql_mid_request_answers_5xx(site: Site) -> None:
    """A database lost mid-request is a 503 with cfssl's certdb code (11000) and Retry-After, not the 400 cfssl
    answers for every typed error: the request was fine and can be sent again (errors.Unavailable)."""
    with serving(*site.serve_args(workers=1)) as a:
        assert sign(a, "before.example.net")[0] == 200
        site.cluster.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{site.dbname}'")
        status, envelope = sign(a, "lost.example.net")
        assert envelope["errors"][0]["code"] == 11000 and envelope["result"] is None, envelope
        assert status == 503, envelope
        assert sign(a, "after.example.net")[0] == 200


def pg_ctl(cluster: Cluster, action: str) -> None:
    """Stop (fast: sessions are cut) or start the session's cluster with the options the fixture gave it."""
    data = cluster.directory / "data"
    argv = [str(cluster.bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    if action == "stop":
        argv += ["-m", "fast", "stop"]
    else:
        options = f"-k {cluster.directory} -p {cluster.port} -c listen_addresses=127.0.0.1"
        argv += ["-o", options, "-l", str(cluster.directory / "server.log"), "start"]
    command = argv if os.geteuid() != 0 else ["runuser", "-u", SUPERUSER, "--", *argv]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def test_losing_postgresql_under_load_gives_clean_errors_and_issuing_resumes(site: Site) -> None:
    """Runs last: it stops the session's cluster and starts it again."""
    with two_serves(site) as (a, b):
        for server in (a, b):
            assert call(server.url + READY) == (200, {"success": True, "result": {"ready": True}, "errors": [], "messages": []})
        issued: list[str] = []
        failures: list[tuple[int, dict[str, Any]]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(n: int) -> None:
            i = 0
            while not stop.is_set():
                status, envelope = sign((a, b)[(n + i) % 2], f"load{n}-{i}.example.net")
                with lock:
                    if status == 200:
                        issued.append(serial_of(envelope))
                    else:
                        failures.append((status, envelope))
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.5)
            pg_ctl(site.cluster, "stop")
            time.sleep(2.0)  # requests while the database is down
            down_ready = [call(server.url + READY) for server in (a, b)]
            down_health = [call(server.url + HEALTH) for server in (a, b)]
        finally:
            pg_ctl(site.cluster, "start")
        time.sleep(1.5)  # requests once it is back: every worker reconnects
        stop.set()
        for thread in threads:
            thread.join(60)
        # a load balancer takes both out while the database is down; liveness is cfssl's answer, unchanged
        for status, envelope in down_ready:
            assert status == 503 and envelope["success"] is False and envelope["result"] is None, envelope
            assert envelope["errors"][0]["code"] == 503
            assert envelope["errors"][0]["message"].startswith("certificate database unavailable: "), envelope
        assert down_health == [(200, {"success": True, "result": {"healthy": True}, "errors": [], "messages": []})] * 2
        assert failures, "no request failed while PostgreSQL was stopped"
        for _status, envelope in failures:
            # the signed certificate could not be recorded: it is not returned, and the error is the certdb's
            assert envelope["success"] is False and envelope["result"] is None, envelope
            assert envelope["errors"][0]["code"] == 11000, envelope
        # issuing resumed on both instances
        for server in (a, b):
            for i in range(3):  # every worker has reconnected by the second try at most
                status, envelope = sign(server, f"after{i}.example.net")
                if status == 200:
                    break
            assert status == 200, envelope
            issued.append(serial_of(envelope))
            assert call(server.url + READY)[0] == 200
        logs = a.log + b.log
        assert "Traceback" not in logs
    # nothing issued unrecorded: every certificate a client received is in the database
    assert set(issued) <= recorded_serials(site)
    assert len(issued) > 10
