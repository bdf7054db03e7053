"""``sign``: sign a CSR with a CA certificate and key, or have a remote cfssl server sign it.

With ``-bundle`` (ours; cfssl's CLI has no such flag, its API has the ``bundle`` option) the chain of the new
certificate is built with the roots of ``-ca-bundle`` and the intermediates of ``-int-bundle`` (flavor
optimal, as the API's option) and printed as ``"result": {"bundle": <bundle JSON>}`` next to ``cert`` and
``csr``: the nested object that cfssljson ``-bare`` (and ``json-split -bare``) writes to ``<base>-bundle.pem``
(leaf and intermediates, then the root) and ``<base>-root.pem``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import (
    SignerOptions,
    build_signer,
    check_remote_flags,
    ignored,
    load_config,
    no_more_args,
    pem_text,
    pop_arg,
    print_cert,
    print_json,
    read_arg,
    read_subject,
    require_ca,
    require_signer_flags,
    split_hosts,
)
from cfsslpy.cli.context import IO
from cfsslpy.errors import UsageError
from cfsslpy.signer import SignRequest, SubjectOverride
from cfsslpy.universal import check_profile

if TYPE_CHECKING:
    from cryptography import x509

    from cfsslpy.bundler import Bundler

# the API's bundle option bundles with this flavor (cfssl's signhandler and generator)
SIGNED_BUNDLE_FLAVOR = "optimal"


class ChainOptions(Options):
    """``-bundle`` and the pools its chain is built from (sign, gencert)."""

    bundle: bool
    ca_bundle: str
    int_bundle: str


class SignOptions(SignerOptions, ChainOptions):
    hostname: str
    csr: str
    db_config: str


BUNDLE_FLAGS = list(ChainOptions.flag_names)


def check_bundle_flags(opts: ChainOptions) -> bool:
    """Whether the chain is wanted: ``-bundle`` needs both ``-ca-bundle`` and ``-int-bundle`` (usage error)."""
    if not opts.bundle:
        ignored(opts, ["ca-bundle", "int-bundle"], "without -bundle")
        return False
    if not (opts.ca_bundle and opts.int_bundle):
        raise UsageError("-bundle needs -ca-bundle (roots) and -int-bundle (intermediates)")
    return True


def load_bundler(opts: ChainOptions) -> Bundler:
    """The bundler of ``-ca-bundle`` and ``-int-bundle``, loaded before anything is signed."""
    from cfsslpy.bundler import Bundler

    return Bundler.from_files(opts.ca_bundle, opts.int_bundle)


def print_with_bundle(io: IO, fields: dict[str, str], bundler: Bundler | None, cert: x509.Certificate) -> None:
    """cfssl's PrintCert fields, plus ``result.bundle`` (the chain of ``cert``) when a bundler is given."""
    out: dict[str, Any] = dict(fields)
    if bundler is not None:
        out["result"] = {"bundle": bundler.bundle([cert], None, SIGNED_BUNDLE_FLAVOR).to_json()}
    print_json(io, out)


def run(opts: SignOptions, args: list[str], io: IO) -> int:
    # bind and validate: arguments and flags first, nothing read yet
    csr_spec = opts.csr
    if not csr_spec:
        csr_spec, args = pop_arg(args)
    subject_spec = ""
    if args:
        subject_spec, args = pop_arg(args)
        no_more_args(args)
    check_remote_flags(opts)
    want_bundle = check_bundle_flags(opts)
    if not opts.remote and not opts.config:
        require_ca(opts)  # with -config, whether the CA is needed depends on its profiles
    # read the inputs (stdin at most once), then one core call
    config = load_config(opts)
    require_signer_flags(opts, config)
    check_profile(config, opts.remote, opts.profile)  # 5400 before the CSR or the CA is read
    csr = read_arg(csr_spec, io)
    subject: SubjectOverride | None = read_subject(subject_spec, io) if subject_spec else None
    bundler = load_bundler(opts) if want_bundle else None
    req = SignRequest(request=csr, hosts=split_hosts(opts.hostname), subject=subject, profile=opts.profile, label=opts.label)
    with build_signer(opts, io, config, opts.db_config) as signer:
        cert = signer.sign(req)
    # emit: the CSR is echoed byte for byte, as cfssl does
    if bundler is None:
        print_cert(io, cert=pem_text(cert), csr=csr.decode("utf-8", "replace"))
    else:
        print_with_bundle(io, {"cert": pem_text(cert), "csr": csr.decode("utf-8", "replace")}, bundler, cert)
    return 0


COMMAND = Command(
    name="sign",
    summary="signs a client cert with a host name by a given CA and CA key",
    usage=(
        "cfsslpy sign -ca cert -ca-key key [-config config] [-profile profile] [-hostname hostname] CSR [SUBJECT]\n"
        "       cfsslpy sign -remote host[:port][,host2...] [-config config] [-profile profile] [-label label] [-hostname hostname]"
        " CSR [SUBJECT]\n"
        "       cfsslpy sign ... -bundle -ca-bundle roots.pem -int-bundle intermediates.pem CSR [SUBJECT]"
    ),
    options=SignOptions,
    example="cfsslpy sign -ca ca.pem -ca-key ca-key.pem -hostname www.example.com server.csr | cfsslpy json-split -bare server",
    run=run,
    description="Sign the CSR (a file, '-' for stdin, or -csr) with the CA. SUBJECT is an optional JSON file whose\n"
    "CN/names/SerialNumber override the CSR's subject. -hostname replaces every SAN of the CSR.\n"
    "With -remote (or remote profiles in -config) a cfssl server signs instead: a comma-separated list is\n"
    "tried in order; host alone means http://host:8888; https:// remotes are verified with -tls-remote-ca\n"
    "(else the system roots).\n"
    "-bundle also prints the certificate's chain (built from -ca-bundle and -int-bundle) as result.bundle,\n"
    "which json-split -bare writes to BASE-bundle.pem and BASE-root.pem.\n"
    "A -profile the configuration does not define is an error (5400); an expired or not yet valid CA does\n"
    "not sign (1211); a certificate never outlives its CA (its notAfter is cut, with a WARNING).",
)
