"""cfssl's API envelope on the wire: the one place where it is built (reference §2.2).

Every answer of the API is an envelope, whoever makes it: the endpoint wrapper and bottle's error handler
(:mod:`cfsslpy.api.envelope`, :mod:`cfsslpy.api.app`) as well as the connection layer's own refusals (400,
408, 413, 417, 431, 500 from :mod:`cfsslpy.api.connection`; 503 from :mod:`cfsslpy.api.worker`). This module
imports neither bottle nor the connection layer, so that all of them can import it.

* :func:`envelope` builds the bytes: cfssl's key order (``success``, ``result``, ``errors``, ``messages``),
  Go's JSON escaping, the trailing newline of Go's ``json.Encoder``;
* :data:`ERROR_HEADERS` are the headers of Go's ``http.Error``, which cfssl sends every failure through;
* :func:`describe_failure` is the one mapping from an exception to (status, code, message, headers).

Hints (:attr:`cfsslpy.errors.Error.hint`) are not sent: a hint may name a server-side file or an operator's
action, which a client has no business seeing, and cfssl clients read ``errors[0].message`` only. The wrapper
logs them with the failure instead.
"""

from __future__ import annotations

from typing import Any

from cfsslpy.errors import ApiError, CfsslError, PlainError, Unavailable, go_json_dumps
from cfsslpy.golang.json import JSONDecodeError

JSON_TYPE = "application/json"
ERROR_TYPE = "text/plain; charset=utf-8"
# Go's http.Error: the headers of every failure (envelopes, and the plain-text answers of the OCSP
# responder and of -mutual-tls-cn)
ERROR_HEADERS: tuple[tuple[str, str], ...] = (("Content-Type", ERROR_TYPE), ("X-Content-Type-Options", "nosniff"))

# The code of an answer to a failure that cfssl does not type ("any other Go error"): HTTP 500, code 0.
UNTYPED_CODE = 0
INTERNAL_MESSAGE = "internal server error"
RETRY_AFTER = "5"  # seconds a client waits before sending again a request refused with 503 Unavailable


def envelope(success: bool, result: Any, errors: list[tuple[int, str]], messages: list[tuple[int, str]]) -> bytes:
    """The envelope in cfssl's key order, Go-escaped, with the trailing newline of Go's json.Encoder."""
    doc = {
        "success": success,
        "result": result,
        "errors": [{"code": c, "message": m} for c, m in errors],
        "messages": [{"code": c, "message": m} for c, m in messages],
    }
    return (go_json_dumps(doc) + "\n").encode("utf-8")


def error_envelope(code: int, message: str) -> bytes:
    """A failure's envelope: ``success:false``, ``result:null``, one error, no messages."""
    return envelope(False, None, [(code, message)], [])


def describe_failure(exc: BaseException) -> tuple[int, int, str, dict[str, str]]:
    """(HTTP status, envelope code, message, extra headers) for an exception: the one mapping (§2.2).

    * :class:`ApiError` (cfssl's HTTP helper errors): its status, ``code`` = the status;
    * :class:`Unavailable` (a :class:`CfsslError` whose service cannot be reached now, the certdb's server):
      503 with its cfssl code and message, and ``Retry-After``;
    * :class:`CfsslError`: 400 with its cfssl code and message;
    * a :class:`JSONDecodeError` no handler translated: 400, code 400 (the body is the client's fault);
    * :class:`PlainError` (a Go plain error in cfssl): its status, 500 unless the raising site chose another,
      with code 0 for 500 (cfssl's untyped error) and the status otherwise;
    * anything else: 500, code 0, ``internal server error`` -- the details go to the log, never to the client.
    """
    if isinstance(exc, ApiError):
        return exc.status, exc.status, exc.message, exc.headers
    if isinstance(exc, Unavailable):
        return exc.status, exc.code, exc.message, {"Retry-After": RETRY_AFTER}
    if isinstance(exc, CfsslError):
        return 400, exc.code, exc.message, {}
    if isinstance(exc, JSONDecodeError):
        return 400, 400, str(exc), {}
    if isinstance(exc, PlainError):
        return exc.status, UNTYPED_CODE if exc.status == 500 else exc.status, exc.message, {}
    return 500, UNTYPED_CODE, INTERNAL_MESSAGE, {}
