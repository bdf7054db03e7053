"""``gencert``: generate a key and a certificate, a new CA (-initca) or a renewed CA (-renewca).

``-bundle`` (with ``-ca-bundle`` and ``-int-bundle``) adds the new certificate's chain as ``result.bundle``,
as ``sign -bundle`` does (:mod:`cfsslpy.cli.sign`).
"""

from __future__ import annotations

import logging

from cfsslpy.cli.command import Command
from cfsslpy.cli.common import (
    ONLY_ONE,
    REMOTE_FLAGS,
    SignerOptions,
    build_signer,
    check_remote_flags,
    ignored,
    key_text,
    load_config,
    no_more_args,
    pem_text,
    pop_arg,
    print_cert,
    read_arg,
    read_csr_json,
    require_ca,
    require_signer_flags,
    split_hosts,
)
from cfsslpy.cli.context import IO
from cfsslpy.cli.sign import BUNDLE_FLAGS, ChainOptions, check_bundle_flags, load_bundler, print_with_bundle
from cfsslpy.errors import PlainError, UsageError
from cfsslpy.initca import new_ca, profile_from_config, renew_ca, self_sign_ca
from cfsslpy.keys import load_key_spec
from cfsslpy.pem import parse_certificate_pem
from cfsslpy.signer import NO_HOSTS_WARNING, SignRequest, issue
from cfsslpy.universal import check_profile

log = logging.getLogger("cfsslpy.cli")


class GencertOptions(SignerOptions, ChainOptions):
    initca: bool
    renewca: bool
    cn: str
    hostname: str
    crl: str
    db_config: str


def run(opts: GencertOptions, args: list[str], io: IO) -> int:
    if opts.initca and opts.renewca:
        raise UsageError("-initca and -renewca cannot be used together")
    if opts.renewca:
        return _renew(opts, args, io)
    csr_json_spec, args = pop_arg(args)
    no_more_args(args, ONLY_ONE)
    if opts.initca:
        return _initca(opts, csr_json_spec, io)

    check_remote_flags(opts)
    want_bundle = check_bundle_flags(opts)
    if not opts.remote and not opts.config:
        require_ca(opts, "a ")  # with -config, whether the CA is needed depends on its profiles
    hosts = split_hosts(opts.hostname)
    config = load_config(opts)
    require_signer_flags(opts, config, "a ")
    check_profile(config, opts.remote, opts.profile)  # 5400 before any key is generated
    req = read_csr_json(csr_json_spec, io)
    if req.ca is not None:
        raise PlainError("ca section only permitted in initca")
    if opts.cn:
        req.CN = opts.cn
    if hosts is not None:
        req.hosts = hosts  # the override goes into the generated CSR too, as in cfssl
    bundler = load_bundler(opts) if want_bundle else None
    sreq = SignRequest(request=b"", hosts=hosts, profile=opts.profile, label=opts.label, crl_override=opts.crl)
    with build_signer(opts, io, config, opts.db_config) as signer:
        cert, csr, new_key = issue(signer, req, sreq)
    if not req.hosts:
        log.warning(NO_HOSTS_WARNING)
    if bundler is None:
        print_cert(io, cert=pem_text(cert), csr=pem_text(csr), key=key_text(new_key))
    else:
        print_with_bundle(io, {"cert": pem_text(cert), "csr": pem_text(csr), "key": key_text(new_key)}, bundler, cert)
    return 0


def _initca(opts: GencertOptions, csr_json_spec: str, io: IO) -> int:
    """A new self-signed CA: a new key, or the existing -ca-key (then no key is printed)."""
    ignored(opts, ["hostname", "ca", "label", "crl", *REMOTE_FLAGS, *BUNDLE_FLAGS], "with -initca (a new CA is always made here)")
    config = load_config(opts)
    check_profile(config, "", opts.profile)  # 5400, as for a leaf (the CA profile is then looked up by name)
    profile = profile_from_config(config, opts.profile)
    req = read_csr_json(csr_json_spec, io)
    if opts.cn:
        req.CN = opts.cn
    if opts.ca_key:
        key = load_key_spec(opts.ca_key, stdin=io.stdin, environ=io.environ)
        cert, csr = self_sign_ca(req, key, profile)
        print_cert(io, cert=pem_text(cert), csr=pem_text(csr))
        return 0
    cert, csr, new_key = new_ca(req, profile)
    print_cert(io, cert=pem_text(cert), csr=pem_text(csr), key=key_text(new_key))
    return 0


def _renew(opts: GencertOptions, args: list[str], io: IO) -> int:
    """Re-issue the -ca root with its -ca-key: same subject, SANs, pathlen and lifetime, from now."""
    no_more_args(args)
    require_ca(opts)
    ignored(opts, ["config", "profile", "hostname", "cn", "label", "crl", *REMOTE_FLAGS, *BUNDLE_FLAGS], "with -renewca")
    cert = parse_certificate_pem(read_arg(opts.ca, io, prefixes=True))
    key = load_key_spec(opts.ca_key, stdin=io.stdin, environ=io.environ)
    print_cert(io, cert=pem_text(renew_ca(cert, key)))
    return 0


COMMAND = Command(
    name="gencert",
    summary="generate a new key and signed certificate",
    usage=(
        "cfsslpy gencert -initca CSRJSON\n"
        "       cfsslpy gencert -initca -ca-key key CSRJSON\n"
        "       cfsslpy gencert -renewca -ca cert -ca-key key\n"
        "       cfsslpy gencert -ca cert -ca-key key [-config config] [-profile profile] [-hostname hostname] [-cn name] CSRJSON\n"
        "       cfsslpy gencert -remote host[:port][,host2...] [-config config] [-profile profile] [-label label] [-hostname hostname]"
        " CSRJSON\n"
        "       cfsslpy gencert ... -bundle -ca-bundle roots.pem -int-bundle intermediates.pem CSRJSON"
    ),
    options=GencertOptions,
    example="cfsslpy gencert -initca ca-csr.json | cfsslpy json-split -bare ca",
    run=run,
    description='Generate a private key (ECDSA P-256 unless CSRJSON\'s "key" says otherwise) and a CSR, and sign it\n'
    'with the CA; or, with -initca, make a self-signed CA (5 years unless "ca"."expiry"); or, with -renewca,\n'
    "re-issue an existing root for the same key. With -remote (or remote profiles in -config) a cfssl server\n"
    "signs the new CSR; the private key never leaves this machine. -bundle also prints the new certificate's\n"
    "chain (from -ca-bundle and -int-bundle) as result.bundle, for json-split -bare.\n"
    "A -profile the configuration does not define is an error (5400), as is an expired or not yet valid CA (1211).",
)
