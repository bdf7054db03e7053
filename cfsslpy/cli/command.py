"""The command contract: every command module exposes ``COMMAND = Command(...)`` and an :class:`Options` class.

A command declares the flags it reads as a subclass of :class:`Options`, one typed annotation per flag; a
handler has one shape: bind (its options + positional args), validate, call the core once, emit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS
from cfsslpy.cli.goflag import Flag
from cfsslpy.errors import PlainError

_KINDS = {"str": str, "bool": bool, "int": int}
_O = TypeVar("_O", bound="Options")


class Options:
    """The flags one command reads, typed and read-only.

    A subclass declares them as annotations (``ca_key: str`` reads ``-ca-key``; a flag's ``attr`` may name its
    attribute otherwise, as multirootca's ``-a`` is ``address``); classes that several commands
    share (``SignerOptions``) are inherited, and their flags come first. Each names a flag of the class's flag
    set (cfssl's unless the class says ``flagset=...``) of that type, checked when the class is made, and
    holds the flag's default when the command line does not give it. ``-h`` lists them by group, in this
    order within a group. ``given`` names every flag on the command line, read by the command or not
    (cfssl's "has no effect" warnings need them all).

    ``Options`` itself reads every flag of cfssl's set (untyped: tests and tools). A plain class rather than
    a dataclass: generating dataclasses costs milliseconds at every start, and nothing here needs them.
    """

    flagset: ClassVar[Mapping[str, Flag]] = FLAGS
    flag_attrs: ClassVar[dict[str, str]] = {name: flag.attribute for name, flag in FLAGS.items()}  # flag read -> attribute
    flag_names: ClassVar[tuple[str, ...]] = tuple(FLAGS)  # the flags read, as the command line spells them
    given: frozenset[str]

    def __init_subclass__(cls, flagset: Mapping[str, Flag] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if flagset is not None:
            cls.flagset = flagset
        by_attribute = {flag.attribute: flag for flag in cls.flagset.values()}
        attrs: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if issubclass(klass, Options) and klass is not Options:
                for attr, kind in klass.__annotations__.items():
                    flag = by_attribute.get(attr)
                    if flag is None:
                        raise TypeError(f"{cls.__name__}.{attr}: its flag set has no flag -{attr.replace('_', '-')}")
                    if _KINDS.get(str(kind)) is not flag.kind:
                        raise TypeError(f"{cls.__name__}.{attr}: -{flag.name} is a {flag.kind.__name__} flag, not {kind}")
                    attrs[flag.name] = attr
        cls.flag_attrs = attrs
        cls.flag_names = tuple(attrs)

    def __init__(self, given: frozenset[str] = frozenset(), **values: Any) -> None:
        fields = self.__dict__
        for name, attr in self.flag_attrs.items():
            fields[attr] = self.flagset[name].default
        for attr, value in values.items():
            if attr not in fields:
                raise TypeError(f"{type(self).__name__} reads no flag -{attr.replace('_', '-')}")
            fields[attr] = value
        fields["given"] = frozenset(given)

    @classmethod
    def from_values(cls: type[_O], values: Mapping[str, Any]) -> _O:
        """The options from parsed flags (dashed names): the declared ones are read, all are recorded in ``given``."""
        read = {cls.flag_attrs[name]: value for name, value in values.items() if name in cls.flag_attrs}
        return cls(given=frozenset(values), **read)

    def with_flags(self: _O, values: Mapping[str, Any]) -> _O:
        """These options with more flags given (later on the command line: they win)."""
        merged = {attr: getattr(self, attr) for attr in self.flag_attrs.values()}
        merged.update((self.flag_attrs[name], value) for name, value in values.items() if name in self.flag_attrs)
        return type(self)(given=self.given | frozenset(values), **merged)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and not meant as a key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class ArgumentError(PlainError):
    """A usage mistake cfssl reports in plain text with exit status 1 (too few or too many arguments, a required
    flag missing), in cfssl's words; the CLI follows it with the command's usage line (cfssl says "please
    refer to the usage" and shows none).
    """


@dataclass(frozen=True)
class Command(Generic[_O]):
    """One program of the CLI: its name, the options it reads, its handler and its ``-h``.

    ``help`` replaces the ``-h`` built from the other fields (cfssljson and mkbundle print Go's layout); it
    is given the program's name as invoked. ``flags_anywhere``: the command parses flags after its
    subcommand and arguments itself (token, ceremony), so a flag there is no mistake.
    """

    name: str
    summary: str
    usage: str
    options: type[_O]
    example: str
    run: Callable[[_O, list[str], IO], int]
    description: str = ""
    help: Callable[[str], str] | None = None
    flags_anywhere: bool = False

    @property
    def flags(self) -> list[str]:
        return list(self.options.flag_names)
