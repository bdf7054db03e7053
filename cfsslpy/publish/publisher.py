"""One publishing run: every current certificate's OCSP responses, each issuer's CRL, the index.

Layout of the tree under the output directory::

    ocsp/<request path>   a DER OCSP response per certificate and CertID hash (SHA-1, SHA-256), stored under
                          the RFC 5019 GET path of its request (:mod:`cfsslpy.publish.naming`)
    crl/<key id>.crl      each issuer's CRL, DER           (:mod:`cfsslpy.publish.crls`)
    crl/<key id>.pem      the same CRL, PEM
    index.json            what was published               (:mod:`cfsslpy.publish.index`)

A run touches only what changed (:mod:`cfsslpy.publish.responses` says when a stored response is still
good; CRLs and the index are compared), removes the files of certificates no longer current
(:mod:`cfsslpy.publish.prune`), and writes nothing but public data: keys are only read.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cfsslpy.certdb import CertDB, CertificateRecord, with_aki
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.inputs import os_reason
from cfsslpy.ocsp import OCSPSigner
from cfsslpy.publish.crls import CRLIssuer, PublishedCRL, publish_crl
from cfsslpy.publish.files import read_if_exists, replace_file, streamed_if_changed
from cfsslpy.publish.index import INDEX_NAME, IndexWriter, read_entries
from cfsslpy.publish.naming import CERTID_HASHES, name_path, request_der, request_name
from cfsslpy.publish.prune import Pruner, sweep, usable_index
from cfsslpy.publish.responses import ResponseMaker, Wanted
from cfsslpy.publish.rows import current_certificates
from cfsslpy.x509util import rfc3339, utc

log = logging.getLogger(__name__)

OCSP_DIR = "ocsp"
MAX_ERRORS = 20  # errors kept in the report (all are logged)


@dataclass(frozen=True)
class Issuer:
    """One CA to publish for: its OCSP signer, and its CA key when it publishes a CRL (None: no CRL)."""

    signer: OCSPSigner
    crl: CRLIssuer | None = None

    @property
    def aki(self) -> str:
        return self.signer.issuer_aki


@dataclass
class PublishReport:
    """What one run did. ``max_age`` (seconds) is the Cache-Control max-age for responses that is safe until
    the next run, provided the next run starts within ``max_age`` (see :func:`response_max_age`)."""

    certificates: int = 0
    written: int = 0
    kept: int = 0
    removed: int = 0
    failed: int = 0
    no_signer: int = 0
    errors: list[str] = field(default_factory=list)
    crls: list[PublishedCRL] = field(default_factory=list)
    index_changed: bool = False
    earliest_next_update: dt.datetime | None = None
    max_age: int = 0
    crl_max_age: int = 0


def default_margin(signer: OCSPSigner) -> dt.timedelta:
    """A stored response is re-signed when its nextUpdate is this close: half the response's validity."""
    return signer.interval / 2


def response_max_age(margin: dt.timedelta, earliest_remaining: dt.timedelta | None) -> int:
    """Seconds a response fetched between this run and the next may be cached.

    Every response this run leaves has its nextUpdate at least ``margin`` away (closer ones were re-signed),
    so ``earliest_remaining`` >= ``margin`` in the normal case. With max-age = half of that, and the next run
    due within max-age (the cron period or ``-loop``; the CLI checks), a response fetched just before the next
    run is still fresh in a cache until its nextUpdate: nginx sends one max-age for every file, and this is
    the largest that is right for all of them.
    """
    floor = margin if earliest_remaining is None else min(margin, earliest_remaining)
    return max(0, int(floor.total_seconds()) // 2)


class _Run:
    """The state of one run over the certdb's rows (kept small: a few counters and one old-index cursor)."""

    def __init__(self, root: str, issuers: Sequence[Issuer], now: dt.datetime, margin: dt.timedelta | None) -> None:
        self.root = root
        self.now = now
        self.makers = {i.aki: ResponseMaker(i.signer, now=now, margin=margin or default_margin(i.signer)) for i in issuers}
        self.report = PublishReport()
        self.published: set[str] | None = None  # sweep mode only

    def publish_row(self, row: CertificateRecord) -> tuple[dict[str, object], tuple[str, ...]] | None:
        """Keep or write the row's responses; its index entry and files, None when it is not published."""
        rec = with_aki(row)
        maker = self.makers.get(rec.aki)
        if maker is None:
            self.report.no_signer += 1
            return None
        cert = rec.certificate()
        wanted = Wanted.of(rec, self.now)
        checked = False
        paths: list[str] = []
        next_updates: list[dt.datetime] = []
        for algorithm in CERTID_HASHES:
            rel = f"{OCSP_DIR}/{name_path(request_name(request_der(cert, maker.signer.issuer, algorithm)))}"
            path = os.path.join(self.root, rel)
            verdict = maker.judge(read_if_exists(path), cert.serial_number, wanted)
            kept = verdict.keep_until
            if kept is None:
                if not (checked or verdict.ours):  # as costly as signing: once, when first published
                    maker.check_certificate(cert)
                    checked = True
                replace_file(path, maker.sign(cert, wanted, algorithm))
                self.report.written += 1
                kept = maker.next_update
            else:
                self.report.kept += 1
            paths.append(rel)
            next_updates.append(kept)
        earliest = min(next_updates)
        if self.report.earliest_next_update is None or earliest < self.report.earliest_next_update:
            self.report.earliest_next_update = earliest
        self.report.certificates += 1
        entry: dict[str, object] = {
            "serial": rec.serial,
            "aki": rec.aki,
            "status": rec.status,
            "nextUpdate": rfc3339(earliest),
            "paths": paths,
        }
        return entry, tuple(paths)

    def fail(self, rec: CertificateRecord, exc: CfsslError) -> None:
        self.report.failed += 1
        if len(self.report.errors) < MAX_ERRORS:
            self.report.errors.append(f"serial {rec.serial}: {exc.message}")
        log.error("cannot publish OCSP responses for serial %s (AKI %s): %s", rec.serial, rec.aki or "(none)", exc.message)


def _issuer_json(issuer: Issuer, crl: PublishedCRL | None) -> dict[str, object]:
    return {
        "aki": issuer.aki,
        "subject": issuer.signer.issuer.subject.rfc4514_string(),
        "responder": issuer.signer.responder.subject.rfc4514_string(),
        "crl": None if crl is None else crl.to_json(),
    }


def publish(
    db: CertDB,
    issuers: Sequence[Issuer],
    root: str,
    *,
    now: dt.datetime | None = None,
    margin: dt.timedelta | None = None,
) -> PublishReport:
    """Publish into ``root`` (see the module docstring) and return what was done.

    ``margin``: a stored response is re-signed when its nextUpdate is this close (default: half of its
    signer's interval); a CRL when its nextUpdate is within half its lifetime. Errors: 1211 when a
    responder or CA certificate is not valid now, the CRL errors of :func:`cfsslpy.crl.crl_from_db`, 11000
    for the database; a row that cannot be signed is logged and counted (``failed``), and its files go.
    8100 when the certdb has current certificates and none is of the given issuers.
    """
    if not issuers:
        raise CfsslError(Category.OCSP, Reason.ISSUER_MISMATCH, "no issuer to publish for")
    current = utc(now or dt.datetime.now(dt.timezone.utc))
    try:
        return _publish(db, issuers, root, current, margin)
    except OSError as exc:  # the tree cannot be written (disk full, permissions): one plain line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        raise PlainError(f"cannot publish into {root}: {where}{os_reason(exc)}") from None


def _publish(db: CertDB, issuers: Sequence[Issuer], root: str, current: dt.datetime, margin: dt.timedelta | None) -> PublishReport:
    os.makedirs(os.path.join(root, OCSP_DIR), exist_ok=True)
    run = _Run(root, issuers, current, margin)
    crls = {i.aki: publish_crl(db, root, i.crl, current) for i in issuers if i.crl is not None}
    run.report.crls = list(crls.values())
    index_path = os.path.join(root, INDEX_NAME)
    pruner: Pruner | None = None
    if usable_index(index_path):
        pruner = Pruner(root, read_entries(index_path))
    elif _has_entries(os.path.join(root, OCSP_DIR)):
        run.published = set()  # files from an unknown past: sweep them at the end
    changed = [False]
    with streamed_if_changed(index_path, changed) as fh:
        writer = IndexWriter(fh, [_issuer_json(i, crls.get(i.aki)) for i in issuers])
        for row in current_certificates(db, now=current):
            try:
                published = run.publish_row(row)
            except CfsslError as exc:
                run.fail(row, exc)
                published = None
            paths = () if published is None else published[1]
            if pruner is not None:
                pruner.see(row.serial, paths)
            elif run.published is not None:
                run.published.update(paths)
            if published is not None:
                writer.certificate(published[0])
        report = run.report
        report.max_age = response_max_age(min(m.margin for m in run.makers.values()), _remaining(report, current))
        report.crl_max_age = min((response_max_age(c.lifetime / 2, c.next_update - current) for c in report.crls), default=0)
        writer.close(report.max_age)
    report.index_changed = changed[0]
    if pruner is not None:
        report.removed = pruner.finish()
    elif run.published is not None:
        report.removed = sweep(root, OCSP_DIR, run.published)
    if report.certificates == 0 and report.no_signer and not report.failed:
        raise CfsslError(
            Category.OCSP,
            Reason.ISSUER_MISMATCH,
            f"none of the {report.no_signer} unexpired certificates in the database was issued by the given CA(s)",
        )
    return report


def _remaining(report: PublishReport, now: dt.datetime) -> dt.timedelta | None:
    return None if report.earliest_next_update is None else report.earliest_next_update - now


def _has_entries(directory: str) -> bool:
    with os.scandir(directory) as entries:
        return any(entries)
