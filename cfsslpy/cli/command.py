"""The command contract: every subcommand module exposes ``COMMAND = Command(...)``.

A handler has one shape: bind (``Options`` + positional args), validate, call the core once, emit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cfsslpy.cli.context import IO


class Options:
    """Every global flag, typed; ``given`` names the flags present on the command line.

    A plain class with typed class-level defaults rather than a dataclass: generating a 60-field dataclass
    costs a few milliseconds at every start, and nothing here needs its methods.
    """

    csr: str = ""
    cert: str = ""
    key: str = ""
    hostname: str = ""
    cn: str = ""
    serial: str = ""
    aki: str = ""
    domain: str = ""
    ip: str = ""
    ca: str = ""
    ca_key: str = ""
    initca: bool = False
    renewca: bool = False
    config: str = ""
    profile: str = ""
    label: str = ""
    crl: str = ""
    db_config: str = ""
    remote: str = ""
    tls_remote_ca: str = ""
    mutual_tls_client_cert: str = ""
    mutual_tls_client_key: str = ""
    authkey: str = ""
    ca_bundle: str = ""
    int_bundle: str = ""
    int_dir: str = ""
    flavor: str = "ubiquitous"
    metadata: str = ""
    password: str = "0"
    intermediates: str = ""
    bundle: bool = False
    address: str = "127.0.0.1"
    port: int = 8888
    min_tls_version: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    mutual_tls_ca: str = ""
    mutual_tls_cn: str = ""
    disable: str = ""
    workers: int = 1
    datadir: str = ""
    allowed_hosts: str = ""
    fetch_allow: str = ""
    responses: str = ""
    path: str = "/"
    cache_ttl: str = "60s"
    responder: str = ""
    responder_key: str = ""
    status: str = "good"
    reason: str = "0"
    revoked_at: str = "now"
    interval: str = "96h"
    expiry: str = "168h"
    pem: bool = False
    list: bool = False
    family: str = ""
    scanner: str = ""
    timeout: str = "5m"
    csv: str = ""
    num_workers: int = 10
    max_hosts: int = 100
    module: str = ""
    algo: str = "ecdsa"
    size: int = 256
    id: str = ""
    dry_run: bool = False
    transcript: str = ""
    yes: bool = False
    verbose: bool = False
    sbom: bool = False
    usage: str = ""
    pgp_private: str = ""
    pgp_name: str = ""
    loglevel: int = 1
    given: frozenset[str] = frozenset()

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in Options.__annotations__:
                raise TypeError(f"unknown option {name!r}")
            setattr(self, name, value)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Options:
        """Options from tokenized flags (names with dashes); flags we do not model are only recorded in ``given``."""
        kwargs = {k.replace("-", "_"): v for k, v in values.items() if k.replace("-", "_") in cls.__annotations__}
        return cls(**kwargs, given=frozenset(values))

    def __repr__(self) -> str:
        return f"Options({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__annotations__)})"


Handler = Callable[[Options, list[str], IO], int]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    usage: str
    flags: list[str]
    example: str
    run: Handler
    description: str = ""
