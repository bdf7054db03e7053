"""The roots file of ``multirootca``: cfssl's ini-style format, parsed strictly (cfssl's
``multiroot/config.ParseToRawMap`` and ``LoadRoot``, with the checks cfssl leaves out).

::

    # comment
    [ primary ]
    private = file://keys/primary-key.pem
    certificate = certs/primary.pem
    config = primary-config.json
    nets = 10.0.2.1/24, 192.168.3.15/32

    [ hsm ]
    private = pkcs11:token=ca;object=hsm-root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin
    certificate = certs/hsm.pem
    config = hsm-config.json
    dbconfig = hsm-db.json

The lines cfssl accepts: blank lines, comments (``#`` first on the line; leading blanks allowed here), a
section ``[ label ]`` (a label is a Go ``\\w+``: letters, digits, ``_``), and ``key = value`` (the value may be
quoted with ``"`` or ``'``). As in cfssl, keys before the first section belong to a root labelled
``default``.

What is refused here and not by cfssl (each error names the file, the line and the key): a line of any other
shape; a label given twice (cfssl merges the two sections); a key given twice in one section (cfssl keeps the
last); a key cfssl does not know (a typo in ``nets`` would silently allow every network); a missing
``private``, ``certificate`` or ``config``; a ``private`` scheme other than ``file://`` or ``pkcs11:``
(``rofile://``, Red October, is refused with its own message); a malformed PKCS#11 URI; a malformed ``nets``
entry (Go's ``net.ParseCIDR``: a CIDR, host bits allowed).

Relative paths (``certificate``, ``config``, ``dbconfig``, the path of a ``file://`` key, and a PKCS#11
URI's ``pin-source`` file) are relative to the directory of the roots file, not the working directory as in
cfssl. ``file://keys/a.pem`` is the relative path ``keys/a.pem`` (Go's URL host + path, as cfssl joins them);
``file:///etc/a.pem`` is absolute.

This module reads and checks the text only; :mod:`cfsslpy.multiroot.roots` loads what it names.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, replace

from cfsslpy.errors import CfsslError, PlainError

# cfssl's regular expressions (multiroot/config/config.go), with leading blanks allowed before a comment
_SECTION = re.compile(r"^\s*\[\s*(\w+)\s*\]\s*$")
_QUOTED = re.compile(r"""^\s*(\w+)\s*=\s*["'](.*)["']\s*$""")
_LINE = re.compile(r"^\s*(\w+)\s*=\s*(.*?)\s*$")
_COMMENT = re.compile(r"^\s*#")
_BLANK = re.compile(r"^\s*$")

DEFAULT_SECTION = "default"
REQUIRED = ("private", "certificate", "config")
OPTIONAL = ("nets", "dbconfig")
KNOWN = REQUIRED + OPTIONAL
# cfssl's Red October keys: refused with the rofile:// scheme they go with
_RED_OCTOBER = ("ro_server", "ro_user", "ro_pass", "ro_ca")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RootsError(PlainError):
    """A roots file that cannot be used: the message names the file, the line, the root and the key."""

    def __init__(self, message: str, *, path: str, line: int | None = None, label: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.line = line
        self.label = label
        self.key = key
        where = path if line is None else f"{path}:{line}"
        if label is not None:
            where += f": root {label!r}"
        if key is not None:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Entry:
    """One ``key = value`` line."""

    value: str
    line: int


@dataclass(frozen=True)
class KeySpec:
    """A root's ``private`` value: a key file (absolute path) or a PKCS#11 URI (``pin-source`` made absolute)."""

    kind: str  # "file" or "pkcs11"
    location: str


@dataclass(frozen=True)
class RootSpec:
    """One section of the roots file, checked, with every path made absolute."""

    label: str
    line: int  # the line of its [label] (1 for the implicit ``default`` section)
    key: KeySpec
    certificate: str
    config: str
    nets: tuple[Network, ...] | None = None  # None: every address may ask (cfssl's default)
    dbconfig: str = ""
    entries: dict[str, Entry] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int:
        entry = self.entries.get(key)
        return entry.line if entry is not None else self.line


@dataclass(frozen=True)
class RootsFile:
    """The checked roots file: its absolute path and its roots, in file order."""

    path: str
    roots: tuple[RootSpec, ...]

    def labels(self) -> list[str]:
        return [root.label for root in self.roots]


def read_roots_file(path: str) -> RootsFile:
    """Read and check the roots file at ``path``; :class:`RootsError` names what is wrong and where."""
    absolute = os.path.abspath(path)
    try:
        with open(absolute, "rb") as fh:
            data = fh.read(1 << 20)
    except OSError as exc:
        raise RootsError(exc.strerror or "cannot be read", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RootsError("not UTF-8", path=path, line=line) from None
    return parse_roots(text, path=path, base=os.path.dirname(absolute))


def parse_roots(text: str, *, path: str, base: str) -> RootsFile:
    """Check the roots file ``text`` (``path`` names it in messages, relative paths are joined to ``base``)."""
    sections = _sections(text, path)
    if not sections:
        raise RootsError("no roots: the file defines no [label] section", path=path)
    roots = tuple(_root(label, line, entries, path, base) for label, (line, entries) in sections.items())
    return RootsFile(os.path.join(base, os.path.basename(path)), roots)


def _sections(text: str, path: str) -> dict[str, tuple[int, dict[str, Entry]]]:
    """label -> (line of its header, its entries), in file order; every line checked."""
    sections: dict[str, tuple[int, dict[str, Entry]]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if _COMMENT.match(line) or _BLANK.match(line):
            continue
        section = _SECTION.match(line)
        if section:
            label = section.group(1)
            if label in sections:
                first = sections[label][0]
                raise RootsError(f"root {label!r} is defined twice (first on line {first})", path=path, line=number)
            sections[label] = (number, {})
            current = label
            continue
        match = _QUOTED.match(line) or _LINE.match(line)
        if not match:
            raise RootsError(f"not a [label], key = value or # comment line: {line.strip()[:80]!r}", path=path, line=number)
        if current is None:  # cfssl: keys before any section belong to the root "default"
            current = DEFAULT_SECTION
            sections.setdefault(current, (number, {}))
        key, value = match.group(1), match.group(2)
        entries = sections[current][1]
        if key in entries:
            raise RootsError(
                f"given twice in this root (first on line {entries[key].line})", path=path, line=number, label=current, key=key
            )
        if key not in KNOWN:
            hint = " (Red October keys are not supported)" if key in _RED_OCTOBER else f" (known keys: {', '.join(KNOWN)})"
            raise RootsError(f"unknown key{hint}", path=path, line=number, label=current, key=key)
        entries[key] = Entry(value, number)
    return sections


def _root(label: str, line: int, entries: dict[str, Entry], path: str, base: str) -> RootSpec:
    for name in REQUIRED:
        if not entries.get(name, Entry("", 0)).value:
            raise RootsError(f"missing (a root needs {', '.join(REQUIRED)})", path=path, line=line, label=label, key=name)

    def at(key: str) -> tuple[str, int]:
        return entries[key].value, entries[key].line

    value, number = at("private")
    key_spec = _key_spec(value, base, path=path, line=number, label=label)
    nets = None
    if entries.get("nets") is not None and entries["nets"].value:
        nets = parse_nets(*at("nets"), path=path, label=label)
    dbconfig = entries["dbconfig"].value if "dbconfig" in entries else ""
    return RootSpec(
        label=label,
        line=line,
        key=key_spec,
        certificate=_join(base, entries["certificate"].value),
        config=_join(base, entries["config"].value),
        nets=nets,
        dbconfig=_join(base, dbconfig) if dbconfig else "",
        entries=dict(entries),
    )


def _join(base: str, value: str) -> str:
    return os.path.normpath(os.path.join(base, value))


def _key_spec(value: str, base: str, *, path: str, line: int, label: str) -> KeySpec:
    """``file://`` (cfssl joins the URL's host and path: ``file://a/b.pem`` is ``a/b.pem``) or ``pkcs11:``."""
    scheme = value.partition(":")[0].lower() if ":" in value else ""
    if scheme == "file":
        if not value.startswith("file://"):
            raise RootsError(
                "a key file is written file://path (file://keys/ca-key.pem, file:///etc/ca-key.pem)",
                path=path,
                line=line,
                label=label,
                key="private",
            )
        rest = value[len("file://") :]
        if not rest or rest == "/":
            raise RootsError("file:// names no file", path=path, line=line, label=label, key="private")
        return KeySpec("file", _join(base, rest))
    if scheme == "pkcs11":
        from cfsslpy.pkcs11.uri import TokenURI

        try:
            uri = TokenURI.parse(value)
        except CfsslError as exc:
            raise RootsError(exc.message, path=path, line=line, label=label, key="private") from None
        source = uri.pin_source
        if source is not None and not source.startswith(("env:", "|", "file://")):
            file_path = source[len("file:") :] if source.startswith("file:") else source
            if file_path and not os.path.isabs(file_path):
                uri = replace(uri, pin_source="file:" + _join(base, file_path))
        return KeySpec("pkcs11", uri.to_string())
    if scheme == "rofile":
        raise RootsError(
            "rofile:// (a key encrypted with Red October) is not supported: decrypt the key into a file:// key, or keep it "
            "on a token (pkcs11: URI)",
            path=path,
            line=line,
            label=label,
            key="private",
        )
    shown = f"{scheme!r}" if scheme else "none"
    raise RootsError(
        f"unsupported private key scheme {shown}: use file://path or a pkcs11: URI", path=path, line=line, label=label, key="private"
    )


def parse_nets(value: str, line: int, *, path: str, label: str) -> tuple[Network, ...]:
    """cfssl's ``parseACL``: comma-separated CIDRs (blanks around each trimmed; host bits allowed, as Go's
    ``net.ParseCIDR``); anything else names the bad entry."""
    nets: list[Network] = []
    for item in value.split(","):
        text = item.strip()
        if "/" not in text:
            raise RootsError(
                f"{text!r} is not a network in CIDR notation (10.0.0.0/8, 2001:db8::/32)", path=path, line=line, label=label, key="nets"
            )
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise RootsError(f"{text!r} is not a network in CIDR notation", path=path, line=line, label=label, key="nets") from None
    return tuple(nets)
