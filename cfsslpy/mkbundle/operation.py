"""The mkbundle operation: certificates read, filtered (duplicates, validity, revocation), sorted, written."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography.utils import CryptographyDeprecationWarning

from cfsslpy.errors import PlainError
from cfsslpy.inputs import os_reason, write_atomic
from cfsslpy.mkbundle.fetching import FETCH_TIMEOUT, Fetch, http_fetch
from cfsslpy.mkbundle.results import BundleResult, Dropped, DropReason, Found, NothingUsable, Problem, Unverified
from cfsslpy.mkbundle.revocation import Checker, crl_urls, ocsp_urls
from cfsslpy.mkbundle.walking import read_all
from cfsslpy.x509util import utc

DEFAULT_BUNDLE = "cert-bundle.crt"
DEFAULT_WORKERS = 4

Progress = Callable[[int, int], None]


# DER encodings of the OIDs of cRLDistributionPoints (2.5.29.31) and authorityInfoAccess (1.3.6.1.5.5.7.1.1)
_CRL_DP_OID = bytes.fromhex("0603551d1f")
_AIA_OID = bytes.fromhex("06082b06010505070101")


def _sort_key(found: Found) -> bytes:
    return hashlib.sha256(found.der).digest()


@dataclass(frozen=True)
class BuildOptions:
    """How :func:`build` works: ``workers`` threads run the network checks, each fetch bounded by ``timeout``
    seconds through ``fetch``; ``now`` is the time validity is judged at (default: now); ``progress(done,
    total)`` is called (from those threads) as certificates with revocation information are checked.
    ``online=False`` (an air-gapped host) fetches nothing: certificates with CRL or OCSP URLs are kept
    unchecked and listed in :attr:`BundleResult.unchecked`."""

    workers: int = DEFAULT_WORKERS
    timeout: float = FETCH_TIMEOUT
    now: dt.datetime | None = None
    fetch: Fetch = http_fetch
    progress: Progress | None = None
    online: bool = True


def build(paths: Sequence[str], options: BuildOptions = BuildOptions()) -> BundleResult:
    """Read, filter and sort the certificates under ``paths`` (see the module docstring for the rules)."""
    if options.workers < 1:
        raise PlainError(f"the number of workers must be at least 1, not {options.workers}")
    with warnings.catch_warnings():
        # negative serial numbers (old roots) parse with a deprecation warning; Go accepted them too
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _build(paths, options)


def _build(paths: Sequence[str], options: BuildOptions) -> BundleResult:
    result = BundleResult()
    found, result.files = read_all(paths, result.problems)
    seen, candidates = _screen(found, utc(options.now or dt.datetime.now(dt.timezone.utc)), result)
    online = _needing_network(candidates, result)
    if online and not options.online:
        result.kept += online
        result.unchecked += online
    elif online:
        checker = Checker([f.cert for f in seen.values()], options.fetch, options.timeout)
        _check_online(online, checker, options.workers, result, options.progress)
    result.kept.sort(key=_sort_key)
    result.dropped.sort(key=lambda d: (d.found.source.path, d.found.source.block))
    result.unverified.sort(key=lambda u: (u.found.source.path, u.found.source.block))
    result.skipped.sort(key=lambda s: (s[0].source.path, s[0].source.block))
    result.unchecked.sort(key=lambda f: (f.source.path, f.source.block))
    return result


def _screen(found: list[Found], current: dt.datetime, result: BundleResult) -> tuple[dict[bytes, Found], list[Found]]:
    """(every distinct certificate by DER, those valid at ``current``); duplicates and the expired or not yet
    valid ones are dropped into ``result``."""
    seen: dict[bytes, Found] = {}
    candidates: list[Found] = []
    for item in found:
        first = seen.get(item.der)
        if first is not None:
            result.dropped.append(Dropped(item, DropReason.DUPLICATE, f"same as {first.source}"))
            continue
        seen[item.der] = item
        not_after = item.cert.not_valid_after_utc
        not_before = item.cert.not_valid_before_utc
        if current >= not_after:
            result.dropped.append(Dropped(item, DropReason.EXPIRED, f"notAfter {not_after:%Y-%m-%dT%H:%M:%SZ}"))
        elif current <= not_before:
            result.dropped.append(Dropped(item, DropReason.NOT_YET_VALID, f"notBefore {not_before:%Y-%m-%dT%H:%M:%SZ}"))
        else:
            candidates.append(item)
    return seen, candidates


def _needing_network(candidates: list[Found], result: BundleResult) -> list[Found]:
    """The candidates with a CRL or OCSP URL to ask; the others are kept in ``result`` (or, with a malformed
    extension, recorded as a problem)."""
    online: list[Found] = []
    for item in candidates:
        if _CRL_DP_OID not in item.der and _AIA_OID not in item.der:
            result.kept.append(item)  # neither extension can be present: skip parsing the extensions
            continue
        try:
            needs = bool(crl_urls(item.cert) or ocsp_urls(item.cert))
        except ValueError as exc:  # a malformed extension, parsed lazily by cryptography
            result.problems.append(Problem(item.source.path, f"x509: malformed extension ({exc})", item.source.block))
            continue
        if needs:
            online.append(item)
        else:
            result.kept.append(item)
    return online


def _check_online(online: list[Found], checker: Checker, workers: int, result: BundleResult, progress: Progress | None) -> None:
    total = len(online)
    done = 0
    lock = threading.Lock()

    def one(item: Found) -> tuple[Found, DropReason | None, str, list[str], list[str]]:
        nonlocal done
        try:
            outcome = checker.check(item.cert)
        finally:
            if progress is not None:
                with lock:
                    done += 1
                    count = done
                progress(count, total)
        return (item, *outcome)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mkbundle") as pool:
        outcomes = list(pool.map(one, online))
    for item, reason, detail, failures, notes in outcomes:
        if reason is not None:
            result.dropped.append(Dropped(item, reason, detail))
            continue
        result.kept.append(item)
        if failures:
            result.unverified.append(Unverified(item, "; ".join(failures)))
        for note in notes:
            result.skipped.append((item, note))


def mkbundle(paths: Sequence[str], output: str = DEFAULT_BUNDLE, options: BuildOptions = BuildOptions()) -> BundleResult:
    """:func:`build`, then write the bundle to ``output`` atomically (mode 0644); returns the result.

    When no certificate is left to write, :class:`NothingUsable` is raised and ``output`` is left as it was
    (cfssl writes an empty bundle and exits 0, which silently empties a trust store).
    """
    result = build(paths, options)
    if not result.kept:
        raise NothingUsable(result, output)
    try:
        write_atomic(output, result.pem(), 0o644)
    except OSError as exc:
        raise PlainError(f"open {output}: {os_reason(exc)}") from None
    return result
