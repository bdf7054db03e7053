"""``token``: look at and use PKCS#11 tokens (list slots, list objects, generate a key pair, print a public key)."""

from __future__ import annotations

from typing import Any, TypeVar

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import no_more_args, pop_arg, print_json
from cfsslpy.cli.context import IO
from cfsslpy.cli.goflag import HelpRequested, parse
from cfsslpy.errors import CfsslError, UsageError

MODULE_ENV = "CFSSLPY_PKCS11_MODULE"  # cfsslpy.pkcs11.library.MODULE_ENV (not imported: it loads the PKCS#11 layer)
EXAMPLE_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

SUBCOMMANDS = ("list", "objects", "generate", "pubkey")
_DEFAULT_SIZES = {"ecdsa": 256, "rsa": 2048, "ed25519": 0}

OptionsT = TypeVar("OptionsT", bound=Options)


class TokenOptions(Options):
    module: str
    algo: str
    size: int
    id: str


def interleaved(opts: OptionsT, args: list[str]) -> tuple[OptionsT, list[str]]:
    """Flags given after positional arguments (``token generate URI -algo rsa``), parsed with the same Go rules.

    main stops parsing flags at the first positional argument, as Go does; subcommands take their flags
    after the subcommand too. Returns new options (flags later on the line win) and the positionals.
    """
    values: dict[str, Any] = {}
    positionals: list[str] = []
    rest = list(args)
    while rest:
        try:
            found, rest = parse(rest, opts.flagset)
        except HelpRequested:
            raise UsageError("-h/-help goes before the subcommand (cfsslpy token -h)") from None
        values.update(found)
        if rest:
            positionals.append(rest[0])
            rest = rest[1:]
    if not values:
        return opts, positionals
    return opts.with_flags(values), positionals


def run(opts: TokenOptions, args: list[str], io: IO) -> int:
    try:
        return _run(opts, args, io)
    except CfsslError as exc:
        if exc.message.startswith("no PKCS#11 module") and not exc.hint:
            exc.hint = (
                f"pass the module's path with -module (token list -module {EXAMPLE_MODULE}) or set {MODULE_ENV}"
                if args and args[0] == "list"
                else f"add the module's path to the URI (pkcs11:token=...?module-path={EXAMPLE_MODULE}), or set {MODULE_ENV}"
            )
        raise


def _run(opts: TokenOptions, args: list[str], io: IO) -> int:
    # bind and validate: the subcommand, its one argument and its flags; nothing touched yet
    opts, args = interleaved(opts, args)
    if not args:
        raise UsageError(f"token needs a subcommand: {', '.join(SUBCOMMANDS)}")
    sub, args = args[0], args[1:]
    if sub not in SUBCOMMANDS:
        raise UsageError(f"unknown token subcommand {sub!r} (want {', '.join(SUBCOMMANDS)})")
    if sub == "list":
        no_more_args(args)
        return _list(opts, io)
    uri, args = pop_arg(args)
    no_more_args(args)
    from cfsslpy import pkcs11

    if not pkcs11.is_uri(uri):
        raise UsageError(f"token {sub}: want a pkcs11: URI, not {uri!r}")
    shown = pkcs11.TokenURI.parse(uri).without_secrets().to_string()
    if sub == "objects":
        print_json(io, {"uri": shown, "objects": pkcs11.list_objects(uri, environ=io.environ)})
    elif sub == "pubkey":
        pem = pkcs11.public_key_pem(pkcs11.public_key(uri, environ=io.environ)).decode("ascii")
        print_json(io, {"uri": shown, "public_key": pem})
    else:
        algo, size, key_id = _generate_params(opts)
        public = pkcs11.generate_key_pair(uri, algo, size, key_id=key_id, environ=io.environ)
        print_json(io, {"uri": shown, "public_key": pkcs11.public_key_pem(public).decode("ascii")})
    return 0


def _generate_params(opts: TokenOptions) -> tuple[str, int, bytes | None]:
    """-algo, -size (default by algorithm when not given: ecdsa 256, rsa 2048), -id (hex)."""
    algo = opts.algo
    if algo not in _DEFAULT_SIZES:
        raise UsageError(f"-algo {algo!r}: want rsa, ecdsa or ed25519")
    size = opts.size if "size" in opts.given else _DEFAULT_SIZES[algo]
    key_id: bytes | None = None
    if opts.id:
        try:
            key_id = bytes.fromhex(opts.id)
        except ValueError:
            raise UsageError(f"-id {opts.id!r} is not hex") from None
    return algo, size, key_id


def _list(opts: TokenOptions, io: IO) -> int:
    from cfsslpy import pkcs11

    print_json(io, {"slots": pkcs11.list_slots(opts.module or None, environ=io.environ)})
    return 0


COMMAND = Command(
    name="token",
    summary="list, inspect and generate keys on PKCS#11 tokens",
    usage=(
        "cfsslpy token list [-module PATH]\n"
        "       cfsslpy token objects URI\n"
        "       cfsslpy token generate URI [-algo ecdsa|rsa|ed25519] [-size N] [-id HEX]\n"
        "       cfsslpy token pubkey URI"
    ),
    options=TokenOptions,
    example="cfsslpy token generate 'pkcs11:token=CA;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so"
    "&pin-source=file:/run/ca-pin' -algo ecdsa -size 384",
    run=run,
    flags_anywhere=True,
    description="Work with keys on a PKCS#11 token (HSM, smart card, SoftHSM); output is JSON on stdout.\n"
    "  list      the module's slots and their tokens (-module: module path, or $CFSSLPY_PKCS11_MODULE)\n"
    "  objects   the objects on the token URI names (filtered by its object=/id=/type=)\n"
    "  generate  a new key pair on the token, labelled with the URI's object=; prints its public key\n"
    "  pubkey    the public key of the key pair URI names\n"
    "URIs follow RFC 7512: pkcs11:token=LABEL;object=KEY?module-path=PATH&pin-source=file:PATH. The PIN comes\n"
    "from pin-source (a file or env:VAR) or a prompt on the terminal; it is never printed. Flags may follow\n"
    "the subcommand.",
)
