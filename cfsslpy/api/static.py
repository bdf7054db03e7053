"""The embedded web UI: ``/`` and ``/static/<name>``, read from ``assets/static`` through importlib.resources.

Files are read with :func:`cfsslpy.resources.asset` so the UI works the same installed, from a checkout and
inside the single-file executable (a zip). Nothing here touches a filesystem path.

Security-relevant defaults: every UI response carries a strict Content-Security-Policy (scripts, styles,
images and connections only from this origin; no inline script; ``blob:`` only for the UI's download links),
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY``. A
requested name must be a plain relative path of safe characters (no ``..``, no absolute path, no backslash,
no NUL) that names an existing file in the package; anything else is a 404, whose body the app's error
handler writes.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

import bottle

from cfsslpy.resources import asset

# cfssl's own UI pulls Bootswatch and Mithril from cdnjs; ours ships every byte and allows nothing else.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

# One path segment: starts with a letter or digit (so no "." / ".." / hidden files), then safe characters.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_DEPTH = 4


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """The path segments of ``name``, or None unless it is a plain relative path of safe segments."""
    if not name or len(name) > 512:
        return None
    parts = tuple(name.split("/"))
    if len(parts) > _MAX_DEPTH or not all(_SEGMENT.fullmatch(p) for p in parts):
        return None
    return parts


@lru_cache(maxsize=64)
def _load(parts: tuple[str, ...]) -> tuple[bytes, str, str] | None:
    """(body, content type, ETag) of ``assets/static/<parts>``, or None when no such file is shipped.

    Shipped files are immutable for the life of the process, so they are read once.
    """
    if not parts or not all(_SEGMENT.fullmatch(p) for p in parts):
        return None
    suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
    content_type = CONTENT_TYPES.get(suffix.lower())
    if content_type is None:
        return None
    node = asset("static", *parts)
    try:
        if not node.is_file():
            return None
        body = node.read_bytes()
    except (OSError, KeyError, ValueError):
        return None
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return body, content_type, etag


def _respond(parts: tuple[str, ...], cache_control: str) -> bytes:
    loaded = _load(parts)
    if loaded is None:
        raise bottle.HTTPError(404)
    body, content_type, etag = loaded
    response = bottle.response
    for key, value in SECURITY_HEADERS.items():
        response.set_header(key, value)
    response.set_header("Content-Type", content_type)
    response.set_header("Cache-Control", cache_control)
    response.set_header("ETag", etag)
    if_none_match = bottle.request.get_header("If-None-Match")
    if if_none_match and etag in (t.strip() for t in if_none_match.split(",")):
        response.status = 304
        return b""
    response.set_header("Content-Length", str(len(body)))
    # bottle drops the body of HEAD responses itself, keeping Content-Length.
    return body


def index() -> bytes:
    # the page is tiny; revalidate so a new executable's UI is seen at once
    return _respond(("index.html",), "no-cache")


def static_file(name: str) -> bytes:
    parts = _safe_parts(name)
    if parts is None:
        raise bottle.HTTPError(404)
    return _respond(parts, "no-cache")


# cfssl 1.6.5's UI is a single page whose router answers /bundle with the same index.html; ours keeps one URL
# for the page and shows a view per fragment, so /bundle (a bookmark or a link into cfssl's UI) redirects to
# the bundle view. Relative, so that the UI still works behind a reverse proxy that mounts it under a prefix.
BUNDLE_VIEW = "./#bundle"


def bundle_view() -> bytes:
    """GET/HEAD ``/bundle``: 302 to the UI's bundle view (``/#bundle``)."""
    response = bottle.response
    for key, value in SECURITY_HEADERS.items():
        response.set_header(key, value)
    response.status = 302
    response.set_header("Location", BUNDLE_VIEW)
    response.set_header("Cache-Control", "no-cache")
    return b""


_API_RULE = re.compile(r"/api/v1/cfssl/([a-z_]+)")


def endpoints(app: bottle.Bottle) -> list[str]:
    """Names of the cfssl endpoints registered on ``app`` (read from its routes at call time)."""
    names = {m.group(1) for route in app.routes if (m := _API_RULE.fullmatch(route.rule))}
    return sorted(names)


def register_static(app: bottle.Bottle) -> None:
    """Serve the UI on ``app``.

    GET/HEAD ``/`` is index.html, GET/HEAD ``/static/<name>`` any shipped file, GET/HEAD ``/bundle`` redirects
    to the bundle view (``/#bundle``, where cfssl 1.6.5 serves its UI page), and GET ``/ui/endpoints``
    lists the registered endpoint names as ``{"endpoints": [...]}`` so the page can show only the tabs the
    server supports without probing (a probe of a missing endpoint is a 404, which browsers log as an error).
    The page itself now reads the console's ``/api/v1/cfsslpy/capabilities`` (which also says whether there is
    a certificate database and whether the bundler trusts this CA); ``/ui/endpoints`` stays for older pages.
    """

    def ui_endpoints() -> bytes:
        response = bottle.response
        for key, value in SECURITY_HEADERS.items():
            response.set_header(key, value)
        response.set_header("Content-Type", "application/json")
        response.set_header("Cache-Control", "no-store")
        return json.dumps({"endpoints": endpoints(app)}, separators=(",", ":")).encode() + b"\n"

    app.route("/", ["GET", "HEAD"], index, name="ui_index")
    app.route("/bundle", ["GET", "HEAD"], bundle_view, name="ui_bundle")
    app.route("/static/<name:path>", ["GET", "HEAD"], static_file, name="ui_static")
    app.route("/ui/endpoints", ["GET", "HEAD"], ui_endpoints, name="ui_endpoints")
