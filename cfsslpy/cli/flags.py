"""cfssl's flag set: every flag of every cfssl command, one table (Go's single ``flag.FlagSet``).

Every flag is accepted by every command, as in cfssl; a command reads the ones its options class declares
(:class:`cfsslpy.cli.command.Options`) and a flag it does not read is reported with a WARNING instead of
being ignored silently. Parsing is Go's (:mod:`cfsslpy.cli.goflag`); argparse only formats each command's
``-h`` (grouped flags, defaults, an example).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfsslpy.cli.goflag import Flag, HelpRequested, parse

if TYPE_CHECKING:
    import argparse

__all__ = ["FLAGS", "GROUP_TITLES", "Flag", "HelpRequested", "help_parser", "tokenize"]


def _group(group: str, *flags: tuple[str, Any, str]) -> list[Flag]:
    return [Flag(name, default, text, group) for name, default, text in flags]


_FLAGS = [
    # what to sign / describe
    *_group(
        "input",
        ("csr", "", "PEM CSR file ('-' for stdin)"),
        ("cert", "", "certificate file ('-' for stdin)"),
        ("key", "", "private key file"),
        ("hostname", "", "comma-separated SAN override: DNS names, IPs, emails, URIs"),
        ("cn", "", "override the CSR JSON's CN"),
        ("serial", "", "certificate serial number (decimal)"),
        ("aki", "", "authority key identifier (hex)"),
        ("domain", "", "remote host[:port] to fetch a certificate from"),
        ("ip", "", "IP address to dial instead of resolving -domain"),
    ),
    # the CA
    *_group(
        "ca",
        ("ca", "", "CA certificate: path, file:path or env:VAR"),
        ("ca-key", "", "CA private key: path, file:path or env:VAR"),
        ("initca", False, "create a self-signed CA"),
        ("renewca", False, "re-issue an existing CA (needs -ca and -ca-key)"),
        ("config", "", "signing configuration JSON file"),
        ("profile", "", "signing profile name from -config"),
        ("label", "", "signer label (multi-root remotes)"),
        ("crl", "", "CRL distribution point URL for the issued certificate"),
        ("db-config", "", "certificate database configuration file"),
    ),
    # remote
    *_group(
        "remote",
        ("remote", "", "remote CFSSL server (overrides the profiles' remotes)"),
        ("tls-remote-ca", "", "CA bundle to trust for an https -remote"),
        ("mutual-tls-client-cert", "", "client certificate for the remote"),
        ("mutual-tls-client-key", "", "client key for the remote"),
        ("authkey", "", "(registered by cfssl, never used)"),
    ),
    # bundles
    *_group(
        "bundle",
        ("ca-bundle", "", "root certificates PEM bundle"),
        ("int-bundle", "", "intermediate certificates PEM bundle"),
        ("int-dir", "", "directory for downloaded intermediates"),
        ("flavor", "ubiquitous", "bundle flavor: ubiquitous, optimal or force"),
        ("metadata", "", "ubiquity platform metadata file"),
        ("password", "0", "PKCS#12 password"),
        ("intermediates", "", "(registered by cfssl, never used)"),
        ("bundle", False, "sign, gencert: also return the chain, built from -ca-bundle and -int-bundle"),
    ),
    # server
    *_group(
        "server",
        ("address", "127.0.0.1", "address to listen on"),
        ("port", 8888, "port to listen on"),
        ("min-tls-version", "", "minimum TLS version (1.2 or 1.3)"),
        ("tls-cert", "", "server TLS certificate"),
        ("tls-key", "", "server TLS key"),
        ("mutual-tls-ca", "", "require client certificates issued by this CA"),
        ("mutual-tls-cn", "", "regex the client certificate CN must match"),
        ("disable", "", "comma-separated endpoints not to register"),
        # ours (cfssl has neither)
        ("workers", 1, "serve: worker processes (pre-forked; 0 = one per CPU core)"),
        ("datadir", "", "serve: data directory; a CA and signing config are created there on the first run"),
        ("allowed-hosts", "", "serve: other names the Host header may give (comma-separated; * = any)"),
        ("fetch-allow", "", "serve: hosts/CIDRs certinfo and bundle may dial (none = no fetches; default: not loopback/link-local)"),
        ("responses", "", "OCSP responses file"),
        ("path", "/", "URL path the OCSP responder is mounted on"),
        ("cache-ttl", "60s", "ocspserve live mode: how long a signed response is reused (Go duration; 0 = never)"),
    ),
    # revocation / OCSP
    *_group(
        "ocsp",
        ("responder", "", "OCSP responder certificate"),
        ("responder-key", "", "OCSP responder private key"),
        ("status", "good", "OCSP status: good, revoked or unknown"),
        ("reason", "0", "revocation reason (name or number)"),
        ("revoked-at", "now", "revocation date YYYY-MM-DD or now"),
        ("interval", "96h", "OCSP nextUpdate interval"),
        ("expiry", "168h", "CRL lifetime"),
        ("pem", False, "gencrl, crl: write the CRL as PEM instead of cfssl's base64 DER"),
    ),
    # scan
    *_group(
        "scan",
        ("list", False, "list scanners"),
        ("family", "", "scanner family regex"),
        ("scanner", "", "scanner name regex"),
        ("timeout", "5m", "per-host timeout"),
        ("csv", "", "CSV file of hosts"),
        ("num-workers", 10, "number of workers"),
        ("max-hosts", 100, "maximum number of hosts"),
    ),
    # hardware tokens and ceremonies (ours)
    *_group(
        "token",
        ("module", "", "token: path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)"),
        ("algo", "ecdsa", "token generate: key algorithm: rsa, ecdsa or ed25519"),
        ("size", 256, "token generate: RSA bits or ECDSA curve size"),
        ("id", "", "token generate: CKA_ID of the new key pair (hex)"),
        ("dry-run", False, "ceremony: print the plan and the checks, change nothing"),
        ("transcript", "", "ceremony: transcript file to write (default PLAN.transcript.json)"),
        ("yes", False, "ceremony: do not ask for confirmation before each step"),
        ("write", "", "ceremony example: directory to write the example plan and its input files to"),
    ),
    # the single executable (ours)
    *_group(
        "other",
        ("verbose", False, "version: also list the bundled distributions and the wheels they came from"),
        ("sbom", False, "selfcheck: print the executable's CycloneDX SBOM instead of checking it"),
        ("progress", True, "ocsprefresh, crl, gencrl, mkbundle: a progress bar on a terminal (-progress=false: never)"),
        # never used by cfssl
        ("usage", "", "(registered by cfssl, never used)"),
        ("pgp-private", "", "(registered by cfssl, never used)"),
        ("pgp-name", "", "(registered by cfssl, never used)"),
        ("loglevel", 1, "log level: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal"),
    ),
]
FLAGS: dict[str, Flag] = {f.name: f for f in _FLAGS}

# -h lists a command's flags in these groups, in this order
GROUP_TITLES = {
    "server": "server",
    "input": "input",
    "ca": "certificate authority",
    "remote": "remote signer",
    "bundle": "bundles",
    "ocsp": "revocation and OCSP",
    "scan": "scanner",
    "token": "hardware tokens and ceremonies",
    "other": "other",
}


def tokenize(argv: list[str], flagset: dict[str, Flag] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Go ``flag.Parse`` over ``flagset`` (default: cfssl's; ``{}`` is cfssl's top level, which defines none)."""
    return parse(argv, FLAGS if flagset is None else flagset)


def help_parser(
    prog: str, description: str, usage: str, relevant: list[Flag], example: str, *, cfssl: bool = True
) -> argparse.ArgumentParser:
    """An argparse parser used only to format ``-h``: the command's flags by group (in :data:`GROUP_TITLES`
    order, each in the order ``relevant`` gives), defaults shown. ``cfssl``: the flags are cfssl's, every
    one of which every command accepts."""
    import argparse  # only -h needs it

    accepted = (
        "All of cfssl's flags are accepted (single or double dash, -flag=value); flags not listed here have no effect on this command."
        if cfssl
        else "Flags: single or double dash, -flag=value."
    )
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=f"example:\n  {example}\n\n{accepted}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,
    )
    used = {flag.group for flag in relevant}
    order = [*GROUP_TITLES, *sorted(used - set(GROUP_TITLES))]
    groups = {key: parser.add_argument_group(GROUP_TITLES.get(key, key)) for key in order if key in used}
    for flag in relevant:
        name = flag.name
        group = groups[flag.group]
        default = flag.default
        suffix = "" if default in ("", False) else f" (default {str(default).lower() if flag.kind is bool else default})"
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
