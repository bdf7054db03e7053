"""``bundle``: build a certificate bundle (reference §1.3 ``bundle``, §4.2) from a file, stdin or a TLS server.

Output is cfssl's bundle JSON, compact, keys sorted and **no trailing newline** (cfssl prints it with ``%s``).
``-flavor force`` uses a bundler without pools (``-ca-bundle``/``-int-bundle`` are ignored, as in cfssl).
Like cfssl, a ``-metadata`` file that fails to load is only logged, and ``-cert -`` (stdin) reads PKCS#12 with
an empty password (cfssl's quirk) while a file uses ``-password`` (default ``"0"``).
"""

from __future__ import annotations

from cfsslpy import bundler
from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import no_more_args, print_json, read_arg
from cfsslpy.cli.context import IO
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.keys import PrivateKey

NO_TARGET = "Must specify bundle target through -cert or -domain"


class BundleOptions(Options):
    cert: str
    key: str
    ca_bundle: str
    int_bundle: str
    flavor: str
    int_dir: str
    metadata: str
    domain: str
    ip: str
    password: str


def _read_key(opts: BundleOptions, io: IO) -> PrivateKey | None:
    if not opts.key:
        return None
    try:
        data = read_arg(opts.key, io)
    except PlainError as exc:
        raise CfsslError(Category.PRIVATE_KEY, Reason.READ_FAILED, exc.message) from None
    if not data:
        raise CfsslError(Category.PRIVATE_KEY, Reason.DECODE_FAILED)
    return bundler.load_bundle_key(data)


def run(opts: BundleOptions, args: list[str], io: IO) -> int:
    no_more_args(args)
    if not opts.cert and not opts.domain:
        raise ArgumentError(NO_TARGET)
    if opts.flavor == bundler.FLAVOR_FORCE:
        b = bundler.Bundler.force()
        b.int_dir = opts.int_dir or None
    else:
        b = bundler.Bundler.from_files(opts.ca_bundle, opts.int_bundle, opts.int_dir, opts.metadata)
    if opts.cert:
        try:
            data = read_arg(opts.cert, io)
        except PlainError as exc:
            raise CfsslError(Category.CERTIFICATE, Reason.READ_FAILED, exc.message) from None
        key = _read_key(opts, io)
        certs, bundled_key = bundler.parse_bundle_input(data, "" if opts.cert == "-" else opts.password)
        result = b.bundle(certs, key if key is not None else bundled_key, opts.flavor)
    else:
        result = b.bundle_from_remote(opts.domain, opts.ip, opts.flavor)
    print_json(io, result.to_json(), newline=False)
    return 0


COMMAND = Command(
    name="bundle",
    summary="create a certificate bundle that contains the client cert",
    usage=(
        "cfsslpy bundle -cert file [-key file] [-ca-bundle file] [-int-bundle file] [-int-dir dir] [-metadata file] "
        "[-flavor optimal|ubiquitous|force] [-password password]\n"
        "       cfsslpy bundle -domain host[:port] [-ip address] [-ca-bundle file] [-int-bundle file] [-int-dir dir] [-metadata file]"
    ),
    options=BundleOptions,
    example="cfsslpy bundle -cert server.pem -ca-bundle roots.pem -int-bundle intermediates.pem",
    run=run,
    description=(
        "Build the chain of a certificate (-cert: PEM, PKCS#7, PKCS#12 with -password, or DER; '-' for stdin) or of "
        "the certificate a TLS server presents (-domain host[:port], port 443 by default; -ip dials that address). "
        "Intermediates come from -int-bundle, -int-dir, the input itself and AIA caIssuers URLs (http:// only); "
        "roots from -ca-bundle or the system store. -flavor picks among the valid chains: ubiquitous (the default; "
        "platform coverage per -metadata), optimal (shortest, longest-lived, strongest) or force (the input chain "
        "as given, verified link by link, no pools)."
    ),
)
