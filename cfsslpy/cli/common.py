"""Small pieces shared by the command modules: reading arguments, loading config, printing results."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.cli.command import ArgumentError, Options
from cfsslpy.cli.context import IO
from cfsslpy.cli.jsonhints import json_hint, json_location
from cfsslpy.errors import CfsslError, PlainError, UsageError
from cfsslpy.golang.json import JSONDecodeError, go_json_dumps, loads, type_error
from cfsslpy.inputs import read_input
from cfsslpy.keys import PrivateKey, encode_private_key

if TYPE_CHECKING:  # imported where used: commands that do not sign (bundle, certinfo, revoke, ...) start faster
    from cfsslpy.certdb import CertDB
    from cfsslpy.config import Config, Signing
    from cfsslpy.csr import CertificateRequest
    from cfsslpy.signer import Recorder, Signer, SubjectOverride

log = logging.getLogger("cfsslpy.cli")


# What the helpers below read. A Protocol: any command's options (cfsslpy.cli.command.Options) that declare
# those flags will do. An Options class: the flags several commands share, which they inherit.
class Given(Protocol):
    given: frozenset[str]


class ConfigFlags(Protocol):
    config: str


class CAFlags(Protocol):
    ca: str
    ca_key: str


class RemoteOptions(Options):
    """The remote signer's flags (sign, gencert, info, serve)."""

    remote: str
    tls_remote_ca: str
    mutual_tls_client_cert: str
    mutual_tls_client_key: str


class SignerOptions(RemoteOptions):
    """The flags that choose a signer: a local CA, a signing configuration and profile, or a remote (and its label)."""

    ca: str
    ca_key: str
    config: str
    profile: str
    label: str


def read_arg(spec: str, io: IO, *, prefixes: bool = False) -> bytes:
    """Read a file argument ('-' = stdin; ``env:``/``file:`` when ``prefixes``)."""
    return read_input(spec, stdin=io.stdin, environ=io.environ, allow_prefixes=prefixes)


def load_config(opts: ConfigFlags) -> Config | None:
    """``-config``, loaded and validated before the command runs (cfssl: ``Failed to load config file: ...``).

    cfssl prints that message without a trailing newline; we end it with one like every other error.
    """
    return config_file(opts.config) if opts.config else None


def config_file(path: str) -> Config:
    """A signing configuration file, loaded and validated; any failure is cfssl's one line (and a JSON
    error's position as its hint)."""
    from cfsslpy.config import Config

    with json_location(path):
        try:
            return Config.from_file(path)
        except (CfsslError, PlainError) as exc:
            raise PlainError(f"Failed to load config file: {exc}") from None


def open_certdb(spec: str, io: IO) -> CertDB:
    """``-db-config``'s database, opened (a JSON error in the file is located in the hint)."""
    from cfsslpy.certdb import open_db

    with json_location(spec, io=io):
        return open_db(spec, stdin=io.stdin, environ=io.environ)


def signing_policy(config: Config | None) -> Signing:
    from cfsslpy.config import Config

    return (config or Config.default()).signing


def require_ca(opts: CAFlags, article: str = "") -> None:
    """-ca and -ca-key are both needed to sign locally.

    cfssl only logs these messages and exits 0 (reference §7.9 item 40); we fail with exit status 1
    (README, compatibility). ``article`` reproduces cfssl's wording: gencert says "need a CA ...".
    """
    if not opts.ca:
        raise ArgumentError(f"need {article}CA certificate (provide one with -ca)")
    if not opts.ca_key:
        raise ArgumentError(f"need {article}CA key (provide one with -ca-key)")


REMOTE_FLAGS = list(RemoteOptions.flag_names)


def check_remote_flags(opts: RemoteOptions) -> None:
    """Flag conflicts of the remote group, before anything is read (cfssl ignores a lone cert or key)."""
    if bool(opts.mutual_tls_client_cert) != bool(opts.mutual_tls_client_key):
        raise UsageError("-mutual-tls-client-cert and -mutual-tls-client-key go together")


def needs_ca(opts: RemoteOptions, config: Config | None) -> bool:
    """Whether -ca/-ca-key are read: not with -remote, nor when every profile of -config is remote."""
    from cfsslpy.universal import needs_local_signer  # the remote client is only imported by commands that sign

    return needs_local_signer(signing_policy(config), opts.remote)


def require_signer_flags(opts: SignerOptions, config: Config | None, article: str = "") -> None:
    """-ca/-ca-key are required (cfssl's messages) only when a profile signs locally (no -remote, and -config
    has a local profile); with -remote they are ignored with a WARNING. Called once -config is loaded and
    before any other input is read.
    """
    if needs_ca(opts, config):
        require_ca(opts, article)
    elif opts.remote:
        ignored(opts, ["ca", "ca-key", "db-config"], "with -remote")


@contextmanager
def build_signer(opts: SignerOptions, io: IO, config: Config | None, db_config: str = "") -> Iterator[Signer]:
    """The signer the flags ask for: local (-ca/-ca-key), remote (-remote or remote profiles), or both.

    With ``db_config`` (``-db-config``) every certificate signed locally is recorded in the certdb before it is printed; the
    database is opened (and created) first, so a bad configuration fails before anything is signed, and
    closed when the ``with`` block ends.
    """
    with contextlib.ExitStack() as stack:
        recorder = None
        if db_config and not opts.remote:
            from cfsslpy import certdb

            db = stack.enter_context(open_certdb(db_config, io))
            recorder = certdb.recorder(db)
        yield signer_for(opts, io, config, opts.ca, opts.ca_key, recorder)


def signer_for(opts: RemoteOptions, io: IO, config: Config | None, ca: str, ca_key: str, recorder: Recorder | None) -> Signer:
    """The signer of ``ca``/``ca_key`` (local), of the remote flags, or both, as ``config``'s profiles say."""
    from cfsslpy.universal import signer_from_inputs

    return signer_from_inputs(
        config,
        ca,
        ca_key,
        opts.remote,
        opts.tls_remote_ca,
        opts.mutual_tls_client_cert,
        opts.mutual_tls_client_key,
        stdin=io.stdin,
        environ=io.environ,
        recorder=recorder,
    )


def ignored(opts: Given, names: list[str], why: str) -> None:
    """WARNING for flags that were given but have no effect in the mode the command runs in."""
    for name in names:
        if name in opts.given:
            log.warning("flag -%s has no effect %s", name, why)


def read_csr_json(spec: str, io: IO) -> CertificateRequest:
    from cfsslpy.csr import CertificateRequest

    data = read_arg(spec, io)
    with json_location(spec, data):
        return CertificateRequest.from_json_bytes(data)


def read_subject(spec: str, io: IO) -> SubjectOverride | None:
    """The sign SUBJECT file (reference §3.7); JSON errors are plain text as in cfssl; ``null`` = none."""
    data = read_arg(spec, io)
    try:
        obj = loads(data)
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise type_error(obj, "", "", "signer.Subject")
        from cfsslpy.signer import SubjectOverride

        return SubjectOverride.from_json(obj)
    except JSONDecodeError as exc:
        raise PlainError(str(exc), hint=json_hint(spec, data, str(exc))) from None


def split_hosts(hostname: str) -> list[str] | None:
    """cfssl's SplitHosts: empty means no override."""
    return None if hostname == "" else hostname.split(",")


def pop_arg(args: list[str]) -> tuple[str, list[str]]:
    if not args:
        raise ArgumentError("not enough arguments are supplied --- please refer to the usage")
    return args[0], args[1:]


TOO_MANY = "too many arguments are provided, please check with usage"
ONLY_ONE = "only one argument is accepted, please check with usage"
NO_ARGUMENTS = "argument is provided but not defined; please refer to the usage by flag -h"  # commands that take none


def no_more_args(args: list[str], message: str = TOO_MANY) -> None:
    """cfssl 2016 ignored extra positional arguments; newest cfssl (and we) reject them, in its words."""
    if args:
        raise ArgumentError(message)


def pem_text(obj: x509.Certificate | x509.CertificateSigningRequest) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_text(key: PrivateKey) -> str:
    return encode_private_key(key).decode("ascii")


def print_json(io: IO, obj: dict[str, Any], *, newline: bool = True) -> None:
    """Compact Go-style JSON, keys in the order given (Go struct order or sorted map keys: the caller's)."""
    io.out(go_json_dumps(obj) + ("\n" if newline else ""))


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
