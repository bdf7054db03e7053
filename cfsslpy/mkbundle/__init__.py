"""Build a certificate pool bundle: every valid, unrevoked, distinct certificate under some paths, as PEM.

What cfssl's ``mkbundle`` does (reference §4.3), with these deliberate differences:

* **Walk.** Files and directories are walked in sorted order; symbolic links are followed (cfssl's
  ``filepath.Walk`` ignores them, so ``/etc/ssl/certs`` yields only its bundle file), with each directory
  and file visited once (by device and inode), so link loops terminate. A missing path is an error before
  anything is written (cfssl logs ``Walk failed`` and writes whatever it found).
* **Blocks.** Every ``CERTIFICATE`` PEM block is parsed; other block types are skipped. A block that does not
  decode is reported with its file and block number and the rest of the file is still read (cfssl's
  ``pem.Decode`` stops at the first block it cannot frame).
* **Checks.** Expired or not yet valid (cfssl's bounds: ``now >= notAfter``, ``now <= notBefore``) -> dropped.
  Exact duplicates (same DER) -> dropped, the first one found is kept. Revocation: every http(s) CRL
  distribution point (LDAP and other schemes skipped, as cfssl) and, independently, every http(s) OCSP URL of
  the AIA extension (cfssl asks OCSP only inside its CRL loop). OCSP needs the issuer, which must be among the
  input certificates (we never fetch the AIA caIssuers URL); without it the OCSP check is skipped and the
  reason recorded. A CRL is checked against the issuer's signature when the issuer is among the inputs.
  OCSP ``revoked`` and ``unknown`` both drop the certificate, as in cfssl (anything but ``good``).
* **Network failures keep the certificate.** When a CRL or OCSP responder cannot be reached or its answer
  cannot be verified, the certificate is kept and listed in :attr:`BundleResult.unverified` (cfssl logs
  ``Failed to verify certificate.`` and drops it). A bundle builder whose network hiccups should not
  silently lose roots; the caller reports every such certificate.
* **Air-gapped hosts.** ``BuildOptions(online=False)`` (``mkbundle -no-fetch``) fetches nothing; the
  certificates that would need a CRL or OCSP check are kept and listed in :attr:`BundleResult.unchecked`.
* **Fetching.** Each URL is fetched at most once per run (concurrent askers wait for the first fetch), with a
  timeout (:data:`FETCH_TIMEOUT`), by ``workers`` threads. A responder that could not be reached is not asked
  again in the same run. Responses are limited to :data:`MAX_RESPONSE` bytes.
* **Output order is deterministic**: sorted by SHA-256 fingerprint of the DER (the order of
  ``openssl x509 -noout -fingerprint -sha256``), so two runs over the same certificates give byte-identical
  files whatever the file names, thread timing or library version (a subject sort would depend on how names
  are rendered, and costs more than the whole parse). cfssl's order follows worker completion. The PEM is
  Go's ``pem.Encode`` layout. The file is written atomically: no partial bundle on failure.
* **Nothing usable is an error.** When no certificate is left (none parsed, or all dropped), nothing is
  written and :class:`NothingUsable` (1002 / 1000) is raised; cfssl writes an empty bundle and exits 0.
* **Bounded reads.** A file over 64 MiB is reported as an unusable input and skipped.

The package, by job: :mod:`~cfsslpy.mkbundle.results` (what was found and decided),
:mod:`~cfsslpy.mkbundle.walking` (the input files walked, read and parsed), :mod:`~cfsslpy.mkbundle.fetching`
(the outbound CRL and OCSP requests), :mod:`~cfsslpy.mkbundle.revocation` (the CRL and OCSP checks) and
:mod:`~cfsslpy.mkbundle.operation` (filtering, sorting and writing the bundle).
"""

from __future__ import annotations

from cfsslpy.mkbundle.fetching import FETCH_TIMEOUT as FETCH_TIMEOUT
from cfsslpy.mkbundle.fetching import MAX_RESPONSE as MAX_RESPONSE
from cfsslpy.mkbundle.fetching import Fetch as Fetch
from cfsslpy.mkbundle.fetching import FetchError as FetchError
from cfsslpy.mkbundle.fetching import Unreachable as Unreachable
from cfsslpy.mkbundle.fetching import http_fetch as http_fetch
from cfsslpy.mkbundle.operation import DEFAULT_BUNDLE as DEFAULT_BUNDLE
from cfsslpy.mkbundle.operation import DEFAULT_WORKERS as DEFAULT_WORKERS
from cfsslpy.mkbundle.operation import BuildOptions as BuildOptions
from cfsslpy.mkbundle.operation import Progress as Progress
from cfsslpy.mkbundle.operation import build as build
from cfsslpy.mkbundle.operation import mkbundle as mkbundle
from cfsslpy.mkbundle.results import BundleResult as BundleResult
from cfsslpy.mkbundle.results import Dropped as Dropped
from cfsslpy.mkbundle.results import DropReason as DropReason
from cfsslpy.mkbundle.results import Found as Found
from cfsslpy.mkbundle.results import NothingUsable as NothingUsable
from cfsslpy.mkbundle.results import Problem as Problem
from cfsslpy.mkbundle.results import Source as Source
from cfsslpy.mkbundle.results import Unverified as Unverified
from cfsslpy.mkbundle.revocation import Checker as Checker
from cfsslpy.mkbundle.revocation import crl_urls as crl_urls
from cfsslpy.mkbundle.revocation import issued_by as issued_by
from cfsslpy.mkbundle.revocation import ocsp_urls as ocsp_urls
from cfsslpy.mkbundle.walking import parse_file as parse_file
from cfsslpy.mkbundle.walking import pem_blocks as pem_blocks
from cfsslpy.mkbundle.walking import read_all as read_all
from cfsslpy.mkbundle.walking import walk as walk
