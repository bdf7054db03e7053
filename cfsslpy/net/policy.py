"""serve's outbound policy: which addresses a network client may make the server connect to (``-fetch-allow``)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.net.address import dial_error, join_host_port


@dataclass(frozen=True)
class FetchPolicy:
    """Which addresses a server may open outbound connections to when a network client asks it to (serve's
    ``certinfo`` ``domain``, ``bundle`` ``domain`` and AIA fetches; ``-fetch-allow``).

    The default refuses loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16 with the cloud metadata
    address 169.254.169.254, fe80::/10) and unspecified addresses, IPv4-mapped ones included: a client must not
    reach the services of the server's own host. ``networks`` and ``names`` (an allow-list) replace that default:
    only addresses in ``networks``, or any address of a host name in ``names``, are dialled. ``disabled``
    refuses every fetch. The check is made on each address the name resolves to, and the connection is made to
    that checked address, so a DNS answer cannot swap in another one. The CLI does not use it.
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    names: frozenset[str] = frozenset()
    disabled: bool = False

    @classmethod
    def parse(cls, text: str) -> FetchPolicy:
        """``-fetch-allow``: empty = the default, ``none`` = no fetches, else comma-separated CIDRs, addresses
        and host names."""
        entries = [e.strip() for e in text.split(",") if e.strip()]
        if not entries:
            return cls()
        if [e.lower() for e in entries] == ["none"]:
            return cls(disabled=True)
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: set[str] = set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if entry.lower() == "none" or not re.fullmatch(r"[A-Za-z0-9_.-]{1,253}", entry):
                    raise CfsslError(Category.DIAL, Reason.NONE, f"invalid -fetch-allow entry {entry!r}") from None
                names.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names))

    @property
    def restricted(self) -> bool:
        return bool(self.networks or self.names)

    def permits(self, name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether ``address`` (one that ``name`` resolved to, or ``name`` itself) may be dialled."""
        if self.disabled:
            return False
        if self.restricted:
            return name.lower().rstrip(".") in self.names or any(address in net for net in self.networks)
        mapped = getattr(address, "ipv4_mapped", None)
        plain = mapped if mapped is not None else address
        return not (plain.is_loopback or plain.is_link_local or plain.is_unspecified)

    def connect(self, address: tuple[str, int], timeout: float) -> Any:
        """A connected socket to ``address`` (host, port), tried address by address as resolved, skipping the
        ones this policy refuses. Raises 6000 when none is permitted, or the resolver's / the last connect's
        ``OSError`` (which callers report in Go's words)."""
        import socket

        host, port = address
        if self.disabled:
            raise dial_error(f"dial tcp {join_host_port(host, str(port))}: outbound connections are disabled (serve -fetch-allow none)")
        refused: list[str] = []
        last: OSError | None = None
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not self.permits(host, ip):
                refused.append(str(ip))
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return sock
        if last is not None:
            raise last
        raise dial_error(
            f"dial tcp {join_host_port(host, str(port))}: refusing to connect to {', '.join(refused) or host}: "
            "not permitted by the server's fetch policy (serve -fetch-allow)"
        )


# ---------------------------------------------------------------------------------------------------------
