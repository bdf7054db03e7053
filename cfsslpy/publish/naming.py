"""Where a published OCSP response lives: the RFC 5019 GET path of the request it answers.

An RFC 5019 client asks ``GET {url}/{url-encoding of the base64 of the DER OCSPRequest}``. The request
for one certificate is deterministic (one CertID, no nonce, no extensions; built with cryptography's
``OCSPRequestBuilder``), so the response can be stored under that name and served as a static file.

**Naming.** The file name is the *standard* base64 (RFC 4648 §4, with ``=`` padding) of the DER request, as
the client sends it, read the way a web server hands it to the file system: percent-decoded. ``+`` and ``=``
are ordinary file-name characters. ``/`` cannot be one, so it *is* the directory separator: the name
``MFMw/UTBP+…`` is stored as the file ``UTBP+…`` in the directory ``MFMw``. This is the layout nginx maps a
request onto without any rewriting, whichever way the client spelled the characters: ``%2F`` or a raw
``/`` (nginx decodes ``%2F`` into ``/`` before it maps the URI to a file), ``%2B`` or ``+``, ``%3D`` or ``=``.
Two cases need care, both decided here once:

* ``//`` (an empty segment) in the base64: the file system (and nginx's default ``merge_slashes on``) reads
  it as ``/``, so the file is stored with runs of ``/`` collapsed into one, where both will look;
* a name ending in ``/`` (the DER length is a multiple of 3 and the last sextet is 63): nginx treats such a
  URI as a directory and looks for its index file, so the response is stored as the file :data:`DIR_INDEX`
  (``_``, not a base64 character) inside that directory, and the nginx snippet says ``index _;``.

Different requests never land on the same file or on a directory another file needs: every name is a
multiple of 4 characters long, and two requests of the same issuer and hash differ in their serial number.
(Object stores, which do not collapse ``//``, need the uncollapsed name: :func:`request_name` gives it.)
"""

from __future__ import annotations

import base64
import itertools
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

# the CertID hashes a response is published for (RFC 5019 clients use SHA-1; newer ones SHA-256)
CERTID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}
DIR_INDEX = "_"  # the file name of a response whose request name ends in "/" (see the module docstring)
_SLASHES = re.compile(r"/+")


def request_der(cert: x509.Certificate, issuer: x509.Certificate, algorithm: str) -> bytes:
    """The DER OCSPRequest an RFC 5019 client sends for ``cert``: one CertID hashed with ``algorithm``
    (``sha1`` or ``sha256``), no nonce, no extensions."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, CERTID_HASHES[algorithm]())
    return builder.build().public_bytes(serialization.Encoding.DER)


def request_name(der: bytes) -> str:
    """The GET path segment before URL-encoding: standard base64 with padding."""
    return base64.b64encode(der).decode("ascii")


def name_path(name: str) -> str:
    """The relative file path (``/``-separated) a request name is stored under (see the module docstring)."""
    path = _SLASHES.sub("/", name)
    if path.endswith("/"):
        path += DIR_INDEX
    return path.lstrip("/")


def path_name(path: str) -> str:
    """The stored relative ``path`` as a name with single slashes (``//`` runs are not in it: see
    :func:`parse_request_path`)."""
    return path[: -len(DIR_INDEX)] if path.endswith("/" + DIR_INDEX) else path


def parse_request_path(path: str) -> ocsp.OCSPRequest:
    """The OCSPRequest a stored relative ``path`` answers (tests and tools). A name whose ``//`` runs were
    collapsed is a few characters short of a multiple of 4: the slashes are put back, trying each place a
    slash is, until the base64 decodes to a request stored at this very path. ValueError when none does."""
    name = path_name(path)
    missing = -len(name) % 4
    slashes = [i for i, c in enumerate(name) if c == "/"]
    for places in itertools.combinations_with_replacement(slashes, missing) if slashes or not missing else ():
        candidate = name
        for at in sorted(places, reverse=True):
            candidate = candidate[:at] + "/" + candidate[at:]
        try:
            der = base64.b64decode(candidate, validate=True)
            request = ocsp.load_der_ocsp_request(der)
        except ValueError:
            continue
        if name_path(request_name(der)) == path:
            return request
    raise ValueError(f"{path}: not the path of an OCSP request")
