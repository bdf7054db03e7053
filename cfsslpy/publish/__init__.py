"""Static publication of OCSP responses and CRLs (``ocsppublish``): a tree of files any web server, object
store or CDN can serve at line rate, in place of (or in front of) a live responder.

:func:`publish` writes, under one directory, every current certificate's OCSP responses named by their
RFC 5019 GET path (SHA-1 and SHA-256 CertIDs; :mod:`~cfsslpy.publish.naming`), each issuer's CRL in DER
and PEM (:mod:`~cfsslpy.publish.crls`) and an index (:mod:`~cfsslpy.publish.index`); atomically, touching
only what changed, removing what expired, with flat memory (:mod:`~cfsslpy.publish.rows`,
:mod:`~cfsslpy.publish.prune`). :func:`nginx_snippet` is the matching nginx configuration, :func:`repeat`
the loop for ``-loop``.
"""

from __future__ import annotations

from cfsslpy.publish.crls import CRLIssuer, PublishedCRL, responder_crl_issuer
from cfsslpy.publish.index import INDEX_NAME
from cfsslpy.publish.naming import CERTID_HASHES, DIR_INDEX, name_path, parse_request_path, request_der, request_name
from cfsslpy.publish.nginx import nginx_snippet
from cfsslpy.publish.publisher import OCSP_DIR, Issuer, PublishReport, default_margin, publish, response_max_age
from cfsslpy.publish.schedule import repeat

__all__ = [
    "CERTID_HASHES",
    "DIR_INDEX",
    "INDEX_NAME",
    "OCSP_DIR",
    "CRLIssuer",
    "responder_crl_issuer",
    "Issuer",
    "PublishReport",
    "PublishedCRL",
    "default_margin",
    "name_path",
    "nginx_snippet",
    "parse_request_path",
    "publish",
    "repeat",
    "request_der",
    "request_name",
    "response_max_age",
]
