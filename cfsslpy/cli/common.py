"""Small pieces shared by the command modules: reading arguments, loading config, printing results."""

from __future__ import annotations

import logging
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.cli.command import Options
from cfsslpy.cli.context import IO
from cfsslpy.config import Config, Signing
from cfsslpy.csr import CertificateRequest
from cfsslpy.errors import CfsslError, PlainError
from cfsslpy.gojson import go_json_dumps
from cfsslpy.inputs import read_input
from cfsslpy.keys import PrivateKey, encode_private_key
from cfsslpy.signer import Issuer, LocalSigner, load_issuer

log = logging.getLogger("cfsslpy.cli")


def read_arg(spec: str, io: IO, *, prefixes: bool = False) -> bytes:
    """Read a file argument ('-' = stdin; ``env:``/``file:`` when ``prefixes``)."""
    return read_input(spec, stdin=io.stdin, environ=io.environ, allow_prefixes=prefixes)


def load_config(opts: Options) -> Config | None:
    """``-config``, loaded and validated before the command runs (cfssl: ``Failed to load config file: ...``)."""
    if not opts.config:
        return None
    try:
        return Config.from_file(opts.config)
    except (CfsslError, PlainError) as exc:
        raise PlainError(f"Failed to load config file: {exc}") from None


def signing_policy(config: Config | None) -> Signing:
    return (config or Config.default()).signing


def require_ca(opts: Options) -> None:
    """cfssl only logs these and exits 0; we fail (README, compatibility)."""
    if not opts.ca:
        raise PlainError("need CA certificate (provide one with -ca)")
    if not opts.ca_key:
        raise PlainError("need CA key (provide one with -ca-key)")


def local_signer(opts: Options, io: IO, config: Config | None) -> LocalSigner:
    require_ca(opts)
    issuer: Issuer = load_issuer(opts.ca, opts.ca_key, stdin=io.stdin, environ=io.environ)
    return LocalSigner(issuer, signing_policy(config))


def read_csr_json(spec: str, io: IO) -> CertificateRequest:
    return CertificateRequest.from_json_bytes(read_arg(spec, io))


def split_hosts(hostname: str) -> list[str] | None:
    """cfssl's SplitHosts: empty means no override."""
    return None if hostname == "" else hostname.split(",")


def pop_arg(args: list[str]) -> tuple[str, list[str]]:
    if not args:
        raise PlainError("not enough arguments are supplied --- please refer to the usage")
    return args[0], args[1:]


def no_more_args(args: list[str]) -> None:
    if args:
        raise PlainError("too many arguments are provided, please check with usage")


def pem_text(obj: x509.Certificate | x509.CertificateSigningRequest) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_text(key: PrivateKey) -> str:
    return encode_private_key(key).decode("ascii")


def print_json(io: IO, obj: dict[str, Any], *, newline: bool = True) -> None:
    """Compact Go-style JSON with sorted keys (cfssl's PrintCert and friends)."""
    io.out(go_json_dumps(dict(sorted(obj.items()))) + ("\n" if newline else ""))


def print_cert(io: IO, *, cert: str | None = None, csr: str | None = None, key: str | None = None) -> None:
    """cfssl's PrintCert: keys present only when set, in the order cert, csr, key."""
    out: dict[str, Any] = {}
    if cert is not None:
        out["cert"] = cert
    if csr is not None:
        out["csr"] = csr
    if key is not None:
        out["key"] = key
    print_json(io, out)
