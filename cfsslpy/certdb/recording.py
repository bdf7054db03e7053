"""Recording from the signer: every certificate issued locally with ``-db-config`` is inserted in the certdb
before it is handed out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography import x509

from cfsslpy.certdb.db import CertDB
from cfsslpy.certdb.records import CertificateRecord


def recorder(db: CertDB) -> Callable[[x509.Certificate, Any], None]:
    """A :data:`cfsslpy.signer.Recorder` that inserts every issued certificate before it is handed out."""
    from cryptography.hazmat.primitives import serialization

    def record(cert: x509.Certificate, req: Any) -> None:
        pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        metadata = getattr(req, "metadata", None)
        db.insert_certificate(
            CertificateRecord.from_certificate(cert, pem=pem, ca_label=getattr(req, "label", "") or "", metadata=metadata)
        )

    return record
