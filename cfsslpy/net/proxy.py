"""Environment proxies as Go's ``http.ProxyFromEnvironment`` reads them."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping

from cfsslpy.net.address import is_ip, is_loopback


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL the environment names for ``url`` as Go's ``http.ProxyFromEnvironment`` reads it, or None:
    none set, ``NO_PROXY`` matches, or the host is ``localhost`` / a loopback address.

    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` (upper case first, then lower case); ``HTTP_PROXY`` is
    ignored when ``REQUEST_METHOD`` is set (CGI). ``NO_PROXY`` entries: ``*``, IP addresses, CIDRs, and
    domains matching themselves and their subdomains (``.example.com`` only the subdomains), each with an
    optional ``:port``.
    """
    import os

    env = os.environ if environ is None else environ
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or is_loopback(host):
        return None
    scheme = parts.scheme.lower()
    if scheme == "https":
        proxy = env.get("HTTPS_PROXY") or env.get("https_proxy") or ""
    elif scheme == "http" and "REQUEST_METHOD" not in env:
        proxy = env.get("HTTP_PROXY") or env.get("http_proxy") or ""
    else:
        proxy = ""
    port = str(parts.port or (443 if scheme == "https" else 80))
    if not proxy or _no_proxy_matches(env.get("NO_PROXY") or env.get("no_proxy") or "", host, port):
        return None
    return proxy if "://" in proxy else "http://" + proxy  # Go: a proxy without a scheme is http


def _no_proxy_matches(no_proxy: str, host: str, port: str) -> bool:
    """Go's ``httpproxy`` NO_PROXY matching for ``host`` (lower case, IPv6 without brackets) and ``port``."""
    ip = ipaddress.ip_address(host.split("%", 1)[0]) if is_ip(host) else None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        entry_port = ""
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
            entry, _, entry_port = entry.rpartition(":")
        entry = entry.strip("[]")
        if entry_port and entry_port != port:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        if network is not None:  # an address or a CIDR matches IP hosts only
            if ip is not None and ip in network:
                return True
            continue
        name = entry[1:] if entry.startswith("*.") else entry
        if host.endswith(name if name.startswith(".") else "." + name) or (not entry.startswith(".") and host == name.lstrip(".")):
            return True
    return False


def proxy_authorization(proxy: urllib.parse.SplitResult) -> dict[str, str]:
    """The ``Proxy-Authorization`` header for a proxy URL with credentials (basic), else none."""
    if proxy.username is None:
        return {}
    import base64

    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    return {"Proxy-Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")}
