"""The publisher on a PostgreSQL certdb (the private throwaway cluster): rows streamed in pages in key order
(bytea keys bound as stored), unchanged runs touch nothing, a revocation rewrites only its files."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from integration.pg import Cluster, pg_database, postgres_cluster
from test_ocsp import NOW, make_ca, make_leaf, record

from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.ocsp import OCSPSigner
from cfsslpy.publish import CRLIssuer, Issuer, publish
from cfsslpy.publish.rows import current_certificates
from cfsslpy.x509util import key_identifier

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
__all__ = ["pg_database", "postgres_cluster"]  # fixtures, imported for pytest


def test_publish_from_postgres(postgres_cluster: Cluster, pg_database: str, tmp_path: Path) -> None:
    db = CertDB(DBConfig("postgres", postgres_cluster.url(pg_database)))
    ca = make_ca("p256#pg-publish", "PG publish CA")
    leaves = [make_leaf(ca, f"pg{i}.example") for i in range(7)]
    try:
        for leaf in leaves:
            db.insert_certificate(record(leaf))
        serials = sorted(str(leaf.cert.serial_number) for leaf in leaves)
        assert [r.serial for r in current_certificates(db, now=NOW, page_size=2)] == serials
        assert [r.aki for r in current_certificates(db, now=NOW, page_size=3)] == [key_identifier(ca.cert).hex()] * 7
        issuer = Issuer(OCSPSigner(ca.cert, ca.cert, ca.key), CRLIssuer(ca.cert, ca.key, dt.timedelta(days=7)))
        root = tmp_path / "pub"
        first = publish(db, [issuer], str(root))
        assert (first.certificates, first.written) == (7, 14)
        files = sorted(p for p in (root / "ocsp").rglob("*") if p.is_file())
        for p in files:
            os.utime(p, ns=(10**18, 10**18))
        again = publish(db, [issuer], str(root))
        assert (again.written, again.kept, again.index_changed, again.crls[0].number) == (0, 14, False, first.crls[0].number)
        db.revoke(str(leaves[3].cert.serial_number), key_identifier(ca.cert).hex(), 1)
        third = publish(db, [issuer], str(root))
        assert (third.written, third.kept) == (2, 12)
        assert third.crls[0].number > first.crls[0].number
        assert sum(p.stat().st_mtime_ns != 10**18 for p in files) == 2
    finally:
        db.close()
