"""``POST /bundle``: build a certificate's chain (reference §2.3, §4.2), and the chain that sign, authsign
and newcert return for ``"bundle": true``.

Request: a JSON object of strings (cfssl decodes it into a ``map[string]string``), the first present of

* ``certificate``: the leaf, optionally followed by intermediates (PEM, or PKCS#7 in PEM), with optional
  ``private_key`` (PEM; it must match the leaf: 2300 otherwise), ``flavor``, ``domain`` and ``ip``. A
  non-empty ``domain`` and then ``ip`` are checked against the leaf as Go's ``VerifyHostname`` does: a
  mismatch is 400 code 1200 with Go's message (``x509: certificate is valid for a.example, not b.example``);
* ``domain`` (+ optional ``ip`` to dial instead of resolving it): the chain a TLS server on port 443 sends.

``flavor`` is ``ubiquitous`` unless given (``optimal``, ``force``; any other string behaves like
ubiquitous). Neither key: 400 ``no valid parameter sets found``. A body that is not a JSON object of strings
is cfssl's untyped decoding error: 500, code 0, Go's message. The result is the bundle JSON.

Security: a ``domain`` request makes the server open a TLS connection to a host a client names, and the
bundler may fetch AIA ``caIssuers`` URLs named by client certificates; cfssl does both to any address. serve
restricts both with ``-fetch-allow`` (by default never loopback or link-local; ``none`` = no fetches), and a
request that may reach out holds one of 4 slots per worker (``MAX_OUTBOUND``; 503 when none is free). ``-disable bundle`` turns
the endpoint off. The client's private key is only matched against the leaf
and echoed back in ``key``; server-side key passwords (``CFSSL_CA_PK_PASSWORD``) are never applied to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfsslpy.api.endpoints import OutboundSlots, Registry, string_map
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.errors import PlainError

if TYPE_CHECKING:
    from cryptography import x509

    from cfsslpy.api.state import ApiState
    from cfsslpy.bundler import Bundle, Bundler

DEFAULT_FLAVOR = "ubiquitous"
# sign, authsign and newcert bundle with this flavor (cfssl's signhandler and generator)
SIGNED_FLAVOR = "optimal"


def register(reg: Registry) -> None:
    bundler = reg.state.bundler
    if bundler is None:
        reg.skip("bundle", "no bundler")
        return
    reg.add("bundle", "POST", _BundleHandler(bundler, reg.outbound))


def signed_bundle(state: ApiState, cert: x509.Certificate) -> dict[str, Any] | None:
    """The chain of a certificate just issued (the ``bundle`` option), or None when serve has no such option."""
    if not state.sign_bundle or state.bundler is None:
        return None
    return state.bundler.bundle([cert], None, SIGNED_FLAVOR).to_json()


class _BundleHandler:
    """The endpoint, holding the bundler serve built."""

    def __init__(self, bundler: Bundler, outbound: OutboundSlots) -> None:
        self.bundler = bundler
        self.outbound = outbound

    def __call__(self, req: ApiRequest) -> Reply:
        blob = string_map(req, PlainError)
        if "domain" in blob or self.bundler.fetch_aia:  # it may wait on another host: one of the few slots
            with self.outbound.slot():
                return self._bundle(blob)
        return self._bundle(blob)

    def _bundle(self, blob: dict[str, str]) -> Reply:
        flavor = blob.get("flavor") or DEFAULT_FLAVOR
        if "certificate" in blob:
            return Reply(self._from_certificate(blob, flavor).to_json())
        if "domain" in blob:
            return Reply(self.bundler.bundle_from_remote(blob["domain"], blob.get("ip", ""), flavor).to_json())
        raise ApiError(400, "no valid parameter sets found")

    def _from_certificate(self, blob: dict[str, str], flavor: str) -> Bundle:
        """cfssl's ``BundleFromPEMorDER(certificate, private_key, flavor, "")`` and the host name checks."""
        from cfsslpy.bundler import load_bundle_key, parse_bundle_input, verify_hostname

        key_pem = blob.get("private_key", "").encode("utf-8")
        key = load_bundle_key(key_pem) if key_pem else None  # the key's errors come first
        # a PKCS#12 (with cfssl's empty password) may carry the key; the request's own key wins
        certs, bundled_key = parse_bundle_input(blob["certificate"].encode("utf-8"), password="")
        bundle = self.bundler.bundle(certs, key if key is not None else bundled_key, flavor)
        for host in (blob.get("domain", ""), blob.get("ip", "")):
            if host:
                verify_hostname(bundle.cert, host)
        return bundle
