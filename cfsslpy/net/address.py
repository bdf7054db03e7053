"""Addresses in Go's terms (``net.SplitHostPort``, ``JoinHostPort``), and the 6000 error of a failed dial."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from cfsslpy.errors import Category, CfsslError, Reason

Connect = Callable[[tuple[str, int], float], Any]  # socket.create_connection's shape: ((host, port), timeout) -> socket


def split_host_port(domain: str) -> tuple[str, str]:
    """Go ``net.SplitHostPort``, falling back to (domain, "443") like cfssl when it fails."""
    if domain.startswith("["):
        end = domain.find("]")
        if end > 0 and domain[end + 1 : end + 2] == ":" and ":" not in domain[end + 2 :]:
            return domain[1:end], domain[end + 2 :]
        return (domain[1:end] if end > 0 and end == len(domain) - 1 else domain), "443"
    if domain.count(":") == 1:
        host, _, port = domain.partition(":")
        return host, port
    return domain, "443"


def join_host_port(host: str, port: str) -> str:
    """Go ``net.JoinHostPort``: IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP literal (then no SNI is sent and no host name is checked)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (IPv6 in brackets or not): never proxied, as in Go."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def dial_error(message: str) -> CfsslError:
    """A failed outbound connection: 6000, with ``message`` in Go's words."""
    return CfsslError(Category.DIAL, Reason.NONE, message)
