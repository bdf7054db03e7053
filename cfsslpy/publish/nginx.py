"""A ready nginx configuration for a published tree: two ``location`` blocks to include in a ``server``.

* **OCSP** (``location ^~ PATH``, PATH being the URL path of the certificates' OCSP URL): the URI nginx
  maps onto a file is percent-decoded, so a client's ``%2F``, ``%2B`` and ``%3D`` (or raw ``/``, ``+`` and
  ``=``) land on the stored names without rewriting (:mod:`cfsslpy.publish.naming`); ``index _`` serves a
  name ending in ``/``. ``Content-Type: application/ocsp-response`` for every file (an empty ``types`` map
  and that default type); GET and HEAD only (RFC 5019 POSTs go to a live responder, if any).
* **CRLs** (``location ^~ /crl/``): ``.crl`` as ``application/pkix-crl``, ``.pem`` as ``application/x-pem-file``.
* **Caching**: nginx cannot read a response's nextUpdate, so one ``Cache-Control: max-age`` is sent for every
  file of a location: the run's value (:func:`cfsslpy.publish.publisher.response_max_age`), which is right
  for every response as long as the publisher runs at least that often. It is stable from run to run
  (it depends on the interval and margin, not on the clock), so the snippet only changes when they do;
  reload nginx when it does. ``public, no-transform, must-revalidate`` as RFC 5019 §6.2 recommends.
  ``ETag`` and ``Last-Modified`` are nginx's own for static files (size and mtime): a file the publisher
  keeps keeps them, so caches revalidate with 304.
"""

from __future__ import annotations

import os

_CACHE = 'add_header Cache-Control "max-age={age}, public, no-transform, must-revalidate";'


def _quote(path: str) -> str:
    """An nginx string argument (double-quoted, with its escapes)."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nginx_snippet(root: str, *, max_age: int, crl_max_age: int, path: str = "/") -> str:
    """The two locations for the tree at ``root`` (made absolute), OCSP at URL ``path``, CRLs at ``/crl/``."""
    base = os.path.abspath(root).rstrip("/")
    prefix = "/" + path.strip("/") + "/" if path.strip("/") else "/"
    return f"""# cfsslpy ocsppublish: static OCSP responses (RFC 5019 GET) and CRLs from {base}
# include inside a server {{ }} block; reload nginx when this file changes.
# max-age {max_age}s is right as long as the publisher runs at least every {max_age}s.
location ^~ {prefix} {{
    alias {_quote(base + "/ocsp/")};
    index _;
    types {{ }}
    default_type application/ocsp-response;
    etag on;
    {_CACHE.format(age=max(0, int(max_age)))}
    limit_except GET {{ deny all; }}
}}
location ^~ /crl/ {{
    alias {_quote(base + "/crl/")};
    types {{ application/pkix-crl crl; application/x-pem-file pem; }}
    default_type application/octet-stream;
    etag on;
    {_CACHE.format(age=max(0, int(crl_max_age)))}
    limit_except GET {{ deny all; }}
}}
"""
