"""The embedded web UI routes, called in-process through WSGI on a bare bottle app."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults

import bottle
import pytest

from cfsslpy.api import static
from cfsslpy.api.static import register_static
from cfsslpy.resources import asset

if TYPE_CHECKING:
    from cfsslpy.resources import Traversable


@pytest.fixture
def app() -> Iterator[bottle.Bottle]:
    static._load.cache_clear()
    app = bottle.Bottle()
    app.config["catchall"] = False
    register_static(app)
    yield app
    static._load.cache_clear()


class Headers(dict[str, str]):
    """Response headers looked up case-insensitively, as HTTP means them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__((k.lower(), v) for k, v in pairs)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


def call(
    app: bottle.Bottle, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, Headers, bytes]:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = path
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    for key, value in (headers or {}).items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = Headers(response_headers)

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return seen["status"], seen["headers"], data


def assert_security_headers(headers: Headers) -> None:
    csp = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Cache-Control" in headers


def test_index_is_served_with_security_headers(app: bottle.Bottle) -> None:
    status, headers, body = call(app, "GET", "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert body == asset("static", "index.html").read_bytes()
    assert b"<!doctype html>" in body
    assert_security_headers(headers)
    assert headers["ETag"].startswith('"')


def test_index_has_no_inline_script_or_style_and_nothing_external(app: bottle.Bottle) -> None:
    for name in ("index.html", "app.js", "app.css"):
        status, _, body = call(app, "GET", "/" if name == "index.html" else f"/static/{name}")
        assert status == 200
        text = body.decode()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
    html = call(app, "GET", "/")[2].decode()
    # every <script> has a src (the CSP forbids inline script); no style attributes or <style> blocks
    assert html.count("<script") == html.count('<script src="static/') == 1
    assert "<style" not in html and " style=" not in html and "onclick" not in html.lower()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/index.html", "text/html; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_have_their_types(app: bottle.Bottle, path: str, content_type: str) -> None:
    status, headers, body = call(app, "GET", path)
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert body == asset("static", path.rsplit("/", 1)[1]).read_bytes()
    assert_security_headers(headers)


def test_head_sends_headers_without_body(app: bottle.Bottle) -> None:
    full = call(app, "GET", "/static/app.js")
    status, headers, body = call(app, "HEAD", "/static/app.js")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(len(full[2]))
    assert headers["Content-Type"] == full[1]["Content-Type"]
    status, headers, body = call(app, "HEAD", "/")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_etag_revalidation_answers_304(app: bottle.Bottle) -> None:
    _, headers, _ = call(app, "GET", "/static/app.css")
    status, _, body = call(app, "GET", "/static/app.css", headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, _, _ = call(app, "GET", "/static/app.css", headers={"If-None-Match": '"other"'})
    assert status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../__init__.py",
        "/static/..%2f__init__.py",
        "/static/%2e%2e/__init__.py",
        "/static/defaults/../../cfsslpy/__init__.py",
        "/static//etc/passwd",
        "/static/%2fetc/passwd",
        "/static/..\\__init__.py",
        "/static/app.js%00.css",
        "/static/app.js\x00",
        "/static/.hidden.js",
        "/static/./app.js",
        "/static/",
        "/static/missing.js",
        "/static/app.js/",
        "/static/APP.JS",
        "/static/index.html/x",
        "/static/" + "a/" * 10 + "x.js",
        "/static/" + "a" * 600 + ".js",
    ],
)
def test_traversal_and_unknown_files_are_404(app: bottle.Bottle, path: str) -> None:
    # bottle hands PATH_INFO over already percent-decoded (as WSGI servers do), so test both spellings
    from urllib.parse import unquote

    for candidate in {path, unquote(path)}:
        status, _, body = call(app, "GET", candidate)
        assert status == 404, candidate
        assert b"root:" not in body and b"__future__" not in body


def test_only_shipped_types_are_served(app: bottle.Bottle) -> None:
    # assets/__init__.py exists in the package, but not under static/ and not with a served type
    assert call(app, "GET", "/static/__init__.py")[0] == 404
    assert static._safe_parts("defaults/csr.json") == ("defaults", "csr.json")
    assert static._safe_parts("../defaults/csr.json") is None
    # the loader refuses unsafe segments on its own too (defence in depth)
    assert static._load(("..", "defaults", "csr.json")) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_not_served(app: bottle.Bottle, method: str) -> None:
    for path in ("/", "/static/app.js"):
        status, headers, body = call(app, method, path, body=b"{}")
        assert status == 405, (method, path)
        assert "Content-Security-Policy" not in headers  # not one of ours: the app's error handler answers


def test_endpoint_list_reflects_registered_routes(app: bottle.Bottle) -> None:
    status, headers, body = call(app, "GET", "/ui/endpoints")
    assert status == 200 and json.loads(body) == {"endpoints": []}
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert_security_headers(headers)
    app.route("/api/v1/cfssl/sign", "POST", lambda: "")
    app.route("/api/v1/cfssl/bundle", "POST", lambda: "")
    app.route("/api/v1/cfssl/<name>", "GET", lambda name: "")  # a catch-all is not an endpoint
    assert json.loads(call(app, "GET", "/ui/endpoints")[2]) == {"endpoints": ["bundle", "sign"]}


def test_files_are_read_through_importlib_resources_from_a_zip(app: bottle.Bottle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the single-file executable the assets live in a zip: no filesystem path is involved."""
    archive = tmp_path / "ui.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("cfsslpy_assets/static/index.html", b"<!doctype html><p>zipped</p>")
        zf.writestr("cfsslpy_assets/static/app.js", b"'use strict';")
        zf.writestr("cfsslpy_assets/__init__.py", b"")

    def zipped_asset(*parts: str) -> Traversable:
        node: Traversable = zipfile.Path(archive, "cfsslpy_assets/")
        for part in parts:
            node = node.joinpath(part)
        return node

    monkeypatch.setattr(static, "asset", zipped_asset)
    static._load.cache_clear()
    status, headers, body = call(app, "GET", "/")
    assert (status, body) == (200, b"<!doctype html><p>zipped</p>")
    assert call(app, "GET", "/static/app.js")[2] == b"'use strict';"
    assert call(app, "GET", "/static/app.css")[0] == 404
    assert call(app, "GET", "/static/../__init__.py")[0] == 404
