"""``cfsslpy mkbundle`` / ``cfssl-mkbundle``: its own Go flag set, one call into :mod:`cfsslpy.mkbundle`, a report.

``mkbundle [-f cert-bundle.crt] [-nw 4] [-loglevel n] PATH...``: mkbundle's own flag set, parsed by the one Go
``flag`` parser (:mod:`cfsslpy.cli.goflag`; flags before the paths).
The bundle is written to ``-f``; stderr gets one line per dropped certificate (INFO), one per certificate kept
without a completed revocation check (WARNING), one per unusable input (WARNING), a summary, and cfssl's last
line ``Wrote N certificates.``. On a terminal a progress line is redrawn while revocation checks run.
"""

from __future__ import annotations

import logging

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS
from cfsslpy.cli.goflag import Flag, print_defaults
from cfsslpy.cli.progress import progress_bar
from cfsslpy.cli.runner import run_command
from cfsslpy.errors import UsageError
from cfsslpy.mkbundle import DEFAULT_BUNDLE, DEFAULT_WORKERS, BuildOptions, BundleResult, NothingUsable, mkbundle

# cfssl-mkbundle's own flag set (threads for the CRL and OCSP checks: -nw); -loglevel is cfssl's
FLAGSET: dict[str, Flag] = {
    "f": Flag("f", DEFAULT_BUNDLE, "path to store certificate bundle"),
    "nw": Flag("nw", DEFAULT_WORKERS, "number of workers"),
    "loglevel": FLAGS["loglevel"],
    # ours
    "no-fetch": Flag("no-fetch", False, "fetch no CRL and ask no OCSP responder (air-gapped hosts): keep those certificates unchecked"),
    "progress": FLAGS["progress"],
}

SUMMARY = "build a bundle of the valid, unrevoked certificates found under some paths"


def usage(prog: str) -> str:
    """Help in the layout of the other commands' ``-h`` (``usage: <prog> ...``), flags as Go prints them."""
    return f"""usage: {prog} [-f cert-bundle.crt] [-nw 4] [-no-fetch] [-loglevel n] PATH...

Reads every CERTIFICATE PEM block in the files and directories given (recursively, links followed),
drops expired, not yet valid, duplicate and revoked certificates (CRL distribution points and OCSP,
over http with a 5 s timeout; OCSP needs the issuer among the inputs), and writes the rest as PEM,
sorted by SHA-256 fingerprint. A certificate whose revocation check cannot be completed
(network failure) is kept, with a warning. -no-fetch fetches nothing: the certificates that need a
check are kept unchecked, and the summary says so. On a terminal a progress bar shows the checks.

flags:
{print_defaults(FLAGSET)}
example:
  {prog} -f roots.crt /usr/share/ca-certificates
"""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def report(result: BundleResult, log: logging.Logger, *, wrote: bool = True) -> None:
    """Every dropped or unverified certificate and unusable input, then the summary (cfssl's line last,
    when the bundle was written)."""
    for problem in result.problems:
        log.warning("%s", problem)
    for dropped in result.dropped:
        detail = f", {dropped.detail}" if dropped.detail else ""
        log.info("Skipping %s (%s): %s%s", dropped.found.subject, dropped.found.source, dropped.reason.value, detail)
    for unverified in result.unverified:
        log.warning(
            "Keeping %s (%s) without a completed revocation check: %s", unverified.found.subject, unverified.found.source, unverified.detail
        )
    for found, note in result.skipped:
        log.info("%s (%s): %s", found.subject, found.source, note)
    for found in result.unchecked:
        log.info("Keeping %s (%s) without a revocation check (-no-fetch)", found.subject, found.source)
    counts = result.counts()
    if counts:
        parts = ", ".join(f"{n} {reason.value}" for reason, n in counts.items())
        log.info("Dropped %s: %s.", _plural(len(result.dropped), "certificate"), parts)
    if result.unverified:
        log.warning("Kept %s whose revocation status could not be checked.", _plural(len(result.unverified), "certificate"))
    if result.unchecked:
        log.warning(
            "Skipped the CRL and OCSP checks (-no-fetch): %s kept without a revocation check.",
            _plural(len(result.unchecked), "certificate"),
        )
    if result.problems:
        log.warning("%s could not be used.", _plural(len(result.problems), "input"))
    if wrote:
        log.info("Wrote %d certificates.", len(result.kept))


class MkbundleOptions(Options, flagset=FLAGSET):
    f: str
    nw: int
    no_fetch: bool
    progress: bool
    loglevel: int  # applied by the runner, as for every cfssl command


def run(opts: MkbundleOptions, paths: list[str], io: IO) -> int:
    """Validate, build and write the bundle, report."""
    # cfssl writes an empty bundle when given no paths or no workers; both are mistakes worth saying
    if not paths:
        raise UsageError("no PATH given")
    if opts.nw < 1:
        raise UsageError(f"-nw must be at least 1, not {opts.nw}")
    if not opts.f:
        raise UsageError("-f must not be empty")
    progress = progress_bar(io, "checked for revocation", wanted=opts.progress)
    logger = logging.getLogger("cfsslpy.cli.mkbundle")
    try:
        result = mkbundle(paths, opts.f, BuildOptions(workers=opts.nw, progress=progress, online=not opts.no_fetch))
    except NothingUsable as exc:
        progress.finish()
        report(exc.result, logger, wrote=False)  # why nothing was usable, before the runner prints the error
        raise
    finally:
        progress.finish()
    report(result, logger)
    return 0


COMMAND = Command(
    name="mkbundle",
    summary=SUMMARY,
    usage="cfsslpy mkbundle [-f cert-bundle.crt] [-nw 4] [-no-fetch] [-loglevel n] PATH...",
    options=MkbundleOptions,
    example="cfsslpy mkbundle -f roots.crt /usr/share/ca-certificates",
    run=run,
    description=SUMMARY,
    help=usage,
)


def run_mkbundle(argv: list[str], io: IO, prog: str = "cfsslpy mkbundle") -> int:
    """``mkbundle`` with its own Go flag set (``prog`` names it in the usage); the exit status."""
    return run_command(COMMAND, argv, io, prog)
