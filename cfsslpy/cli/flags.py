"""cfssl's global flag set, parsed with Go's ``flag`` rules, presented with argparse.

Go rules (reference §1.1): ``-f v``, ``-f=v``, ``--f v``, ``--f=v``; booleans only as ``-f`` or ``-f=true``;
parsing stops at the first non-flag argument (``-`` alone is an argument) or after ``--``; an undefined
flag is a usage error (exit 2). No abbreviations: ``-ca-k`` is undefined, not ``-ca-key``.

Every flag is accepted by every command, as in cfssl; a flag that has no effect on the command is
reported with a WARNING instead of being ignored silently. argparse builds each command's ``-h`` text
(grouped flags, defaults, an example) and the typed namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

from cfsslpy.errors import UsageError


@dataclass(frozen=True)
class Flag:
    name: str
    default: Any
    help: str
    group: str
    kind: type = str  # str, bool or int


_FLAGS = [
    # what to sign / describe
    Flag("csr", "", "PEM CSR file ('-' for stdin)", "input"),
    Flag("cert", "", "certificate file ('-' for stdin)", "input"),
    Flag("key", "", "private key file", "input"),
    Flag("hostname", "", "comma-separated SAN override: DNS names, IPs, emails, URIs", "input"),
    Flag("cn", "", "override the CSR JSON's CN", "input"),
    Flag("serial", "", "certificate serial number (decimal)", "input"),
    Flag("aki", "", "authority key identifier (hex)", "input"),
    Flag("domain", "", "remote host[:port] to fetch a certificate from", "input"),
    Flag("ip", "", "IP address to dial instead of resolving -domain", "input"),
    # the CA
    Flag("ca", "", "CA certificate: path, file:path or env:VAR", "ca"),
    Flag("ca-key", "", "CA private key: path, file:path or env:VAR", "ca"),
    Flag("initca", False, "create a self-signed CA", "ca", bool),
    Flag("renewca", False, "re-issue an existing CA (needs -ca and -ca-key)", "ca", bool),
    Flag("config", "", "signing configuration JSON file", "ca"),
    Flag("profile", "", "signing profile name from -config", "ca"),
    Flag("label", "", "signer label (multi-root remotes)", "ca"),
    Flag("crl", "", "CRL distribution point URL for the issued certificate", "ca"),
    Flag("db-config", "", "certificate database configuration file", "ca"),
    # remote
    Flag("remote", "", "remote CFSSL server (overrides the profiles' remotes)", "remote"),
    Flag("tls-remote-ca", "", "CA bundle to trust for an https -remote", "remote"),
    Flag("mutual-tls-client-cert", "", "client certificate for the remote", "remote"),
    Flag("mutual-tls-client-key", "", "client key for the remote", "remote"),
    Flag("authkey", "", "(registered by cfssl, never used)", "remote"),
    # bundles
    Flag("ca-bundle", "", "root certificates PEM bundle", "bundle"),
    Flag("int-bundle", "", "intermediate certificates PEM bundle", "bundle"),
    Flag("int-dir", "", "directory for downloaded intermediates", "bundle"),
    Flag("flavor", "ubiquitous", "bundle flavor: ubiquitous, optimal or force", "bundle"),
    Flag("metadata", "", "ubiquity platform metadata file", "bundle"),
    Flag("password", "0", "PKCS#12 password", "bundle"),
    Flag("intermediates", "", "(registered by cfssl, never used)", "bundle"),
    Flag("bundle", False, "sign, gencert: also return the chain, built from -ca-bundle and -int-bundle", "bundle", bool),
    # server
    Flag("address", "127.0.0.1", "address to listen on", "server"),
    Flag("port", 8888, "port to listen on", "server", int),
    Flag("min-tls-version", "", "minimum TLS version (1.2 or 1.3)", "server"),
    Flag("tls-cert", "", "server TLS certificate", "server"),
    Flag("tls-key", "", "server TLS key", "server"),
    Flag("mutual-tls-ca", "", "require client certificates issued by this CA", "server"),
    Flag("mutual-tls-cn", "", "regex the client certificate CN must match", "server"),
    Flag("disable", "", "comma-separated endpoints not to register", "server"),
    # ours (cfssl has neither)
    Flag("workers", 1, "serve: worker processes (pre-forked; 0 = one per CPU core)", "server", int),
    Flag("datadir", "", "serve: data directory; a CA and signing config are created there on the first run", "server"),
    Flag("allowed-hosts", "", "serve: other names the Host header may give (comma-separated; * = any)", "server"),
    Flag("fetch-allow", "", "serve: hosts/CIDRs certinfo and bundle may dial (none = no fetches; default: not loopback/link-local)", "server"),
    Flag("responses", "", "OCSP responses file", "server"),
    Flag("path", "/", "URL path the OCSP responder is mounted on", "server"),
    Flag("cache-ttl", "60s", "ocspserve live mode: how long a signed response is reused (Go duration; 0 = never)", "server"),
    # revocation / OCSP
    Flag("responder", "", "OCSP responder certificate", "ocsp"),
    Flag("responder-key", "", "OCSP responder private key", "ocsp"),
    Flag("status", "good", "OCSP status: good, revoked or unknown", "ocsp"),
    Flag("reason", "0", "revocation reason (name or number)", "ocsp"),
    Flag("revoked-at", "now", "revocation date YYYY-MM-DD or now", "ocsp"),
    Flag("interval", "96h", "OCSP nextUpdate interval", "ocsp"),
    Flag("expiry", "168h", "CRL lifetime", "ocsp"),
    Flag("pem", False, "gencrl, crl: write the CRL as PEM instead of cfssl's base64 DER", "ocsp", bool),
    # scan
    Flag("list", False, "list scanners", "scan", bool),
    Flag("family", "", "scanner family regex", "scan"),
    Flag("scanner", "", "scanner name regex", "scan"),
    Flag("timeout", "5m", "per-host timeout", "scan"),
    Flag("csv", "", "CSV file of hosts", "scan"),
    Flag("num-workers", 10, "number of workers", "scan", int),
    Flag("max-hosts", 100, "maximum number of hosts", "scan", int),
    # hardware tokens and ceremonies (ours)
    Flag("module", "", "token: path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)", "token"),
    Flag("algo", "ecdsa", "token generate: key algorithm: rsa, ecdsa or ed25519", "token"),
    Flag("size", 256, "token generate: RSA bits or ECDSA curve size", "token", int),
    Flag("id", "", "token generate: CKA_ID of the new key pair (hex)", "token"),
    Flag("dry-run", False, "ceremony: print the plan and the checks, change nothing", "token", bool),
    Flag("transcript", "", "ceremony: transcript file to write (default PLAN.transcript.json)", "token"),
    Flag("yes", False, "ceremony: do not ask for confirmation before each step", "token", bool),
    # the single executable (ours)
    Flag("verbose", False, "version: also list the bundled distributions and the wheels they came from", "other", bool),
    Flag("sbom", False, "selfcheck: print the executable's CycloneDX SBOM instead of checking it", "other", bool),
    # never used by cfssl
    Flag("usage", "", "(registered by cfssl, never used)", "other"),
    Flag("pgp-private", "", "(registered by cfssl, never used)", "other"),
    Flag("pgp-name", "", "(registered by cfssl, never used)", "other"),
    Flag("loglevel", 1, "log level: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal", "other", int),
]
FLAGS: dict[str, Flag] = {f.name: f for f in _FLAGS}

GROUP_TITLES = {
    "input": "input",
    "ca": "certificate authority",
    "remote": "remote signer",
    "bundle": "bundles",
    "server": "server",
    "ocsp": "revocation and OCSP",
    "scan": "scanner",
    "token": "hardware tokens and ceremonies",
    "other": "other",
}


def _parse_bool(name: str, text: str) -> bool:
    # Go's strconv.ParseBool
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise UsageError(f'invalid boolean value "{text}" for -{name}: parse error')


_GO_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)")


def _parse_int(name: str, text: str) -> int:
    """Go's ``strconv.ParseInt(s, 0, 64)``: 0x / 0o / 0b prefixes, a leading 0 means octal, ``_`` separators."""
    if not _GO_INT.fullmatch(text) or "__" in text or text.rstrip("_") != text:
        raise UsageError(f'invalid value "{text}" for flag -{name}: parse error')
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] in "0123456789":
        value = int(body, 8)
    else:
        value = int(body, 0)
    value *= sign
    if not -(1 << 63) <= value < (1 << 63):
        raise UsageError(f'invalid value "{text}" for flag -{name}: value out of range')
    return value


def tokenize(argv: list[str], flagset: dict[str, Flag] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Go ``flag.Parse``: (values of the flags given, positional arguments).

    ``flagset`` defaults to cfssl's global set; ``{}`` parses cfssl's top level, which defines no flags.
    """
    flagset = FLAGS if flagset is None else flagset
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            i += 1
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] == "-" or name[0] == "=":
            raise UsageError(f"bad flag syntax: {arg}")
        i += 1
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            raise HelpRequested()
        flag = flagset.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind is bool:
            values[name] = True if value is None else _parse_bool(name, value)
            continue
        if value is None:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        values[name] = _parse_int(name, value) if flag.kind is int else value
    return values, argv[i:]


class HelpRequested(Exception):
    """``-h`` / ``-help``: print the command's help on stderr, exit 0 (as Go's flag package)."""


def defaults() -> dict[str, Any]:
    return {name.replace("-", "_"): flag.default for name, flag in FLAGS.items()}


def help_parser(prog: str, description: str, usage: str, relevant: list[str], example: str) -> argparse.ArgumentParser:
    """An argparse parser used only to format ``-h``: the command's flags in groups, defaults shown."""
    import argparse  # only -h needs it

    parser = argparse.ArgumentParser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=f"example:\n  {example}\n\nAll of cfssl's flags are accepted (single or double dash, -flag=value);"
        " flags not listed here have no effect on this command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in relevant:
        flag = FLAGS[name]
        group = groups.get(flag.group)
        if group is None:
            group = groups[flag.group] = parser.add_argument_group(GROUP_TITLES[flag.group])
        default = flag.default
        suffix = "" if default in ("", False) else f" (default {default})"
        if flag.kind is bool:
            group.add_argument(f"-{name}", action="store_true", help=flag.help + suffix)
        else:
            group.add_argument(f"-{name}", metavar=_metavar(flag), help=flag.help + suffix)
    return parser


def _metavar(flag: Flag) -> str:
    if flag.kind is int:
        return "N"
    return {"ca": "CERT", "ca-key": "KEY", "cert": "FILE", "csr": "FILE", "key": "FILE", "config": "FILE", "db-config": "FILE"}.get(
        flag.name, "VALUE"
    )
