"""The roots of a ``multirootca``: one signer per label, each with its own key, certificate, signing policy,
auth keys, replay guard, network allow-list and certificate database, and the atomic swap of a reload.

Isolation between roots (cfssl's issue #950 is that a token made with one root's auth key is accepted by
another): each :class:`Root` holds its own :class:`~cfsslpy.config.Config`, loaded from its own file, so its
profiles carry their own key bytes; two configs naming a key the same way share nothing. A root records what
it signs only in its own certificate database (``ca_label`` = the root's label) and remembers used tokens in
its own :class:`~cfsslpy.auth.ReplayGuard`.

Start-up is all or nothing: :func:`load_roots` loads every root and, if one fails, closes what it had opened
and raises a :class:`~cfsslpy.multiroot.rootsfile.RootsError` naming that root. :class:`Authority` keeps the
roots in force; :meth:`Authority.reload` builds a new set from the file and swaps it in one assignment
(requests in progress finish with the set they started with); if the new file is bad, the old set stays and
the error is logged.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from cfsslpy.auth import ReplayGuard
from cfsslpy.config import Config, Signing, SigningProfile
from cfsslpy.errors import CfsslError, Error, log_value
from cfsslpy.multiroot.rootsfile import RootsError, RootSpec, read_roots_file
from cfsslpy.signer import LocalSigner, load_issuer

if TYPE_CHECKING:
    from cfsslpy.certdb import CertDB

log = logging.getLogger("cfsslpy.multiroot")

# Requests in progress when a reload swaps the roots keep the old ones; their databases are closed this long
# after the swap (longer than any request may last on the serving stack).
RETIRE_AFTER = 120.0


def requires_auth(profile: SigningProfile) -> bool:
    """cfssl's ``profile.Provider != nil``: the profile names an ``auth_key``."""
    return bool(profile.auth_key or profile.auth_key_bytes)


@dataclass
class Root:
    """One CA key of the server and everything that goes with it; ``signer.policy`` is its signing policy."""

    label: str
    signer: LocalSigner
    nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None
    replay_guard: ReplayGuard
    db: CertDB | None = None
    spec: RootSpec | None = field(default=None, repr=False)

    @property
    def policy(self) -> Signing:
        return self.signer.policy

    @property
    def on_token(self) -> bool:
        return self.spec is not None and self.spec.key.kind == "pkcs11"

    def permits(self, address: str) -> bool:
        """Whether the peer ``address`` (the TCP peer, never a header) may use this root: cfssl's ``nets``
        allow-list; no list allows every address. An IPv4-mapped IPv6 peer is compared as IPv4."""
        if self.nets is None:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.nets)

    def profile(self, name: str) -> SigningProfile | None:
        """cfssl multirootca's lookup: the named profile (None when the policy has no such profile), else the default."""
        if name:
            return self.policy.profiles.get(name)
        return self.policy.default

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


@dataclass
class Roots:
    """The roots in force: label -> :class:`Root`, and the default label (``-l``) an empty label means."""

    path: str
    roots: dict[str, Root]
    default_label: str = ""

    def get(self, label: str) -> Root | None:
        return self.roots.get(label or self.default_label)

    def resolve(self, label: str) -> str:
        return label or self.default_label

    @cached_property
    def never_wait(self) -> bool:
        """Whether signing with any of these roots is CPU work only (file keys, no certificate database, no
        replay guard, no CT log): the serving stack may then sign on its event-loop thread. Asked for every
        authsign request and fixed for a set of roots (a reload makes a new set), so worked out once."""
        for root in self.roots.values():
            profiles = [root.policy.default, *root.policy.profiles.values()]
            if root.on_token or root.db is not None or any(p.auth_replay_window or p.ct_log_servers for p in profiles):
                return False
        return True

    def close(self) -> None:
        """Close every root's database and replay guard."""
        for root in self.roots.values():
            root.close()
            root.replay_guard.close()


GuardFactory = Callable[[str], ReplayGuard]


def memory_guards(label: str) -> ReplayGuard:
    """One in-memory replay guard per root (one process)."""
    return ReplayGuard(None)


def file_guards(directory: str) -> GuardFactory:
    """One replay guard per root in ``directory`` (``replay-<label>.db``), shared by the worker processes."""
    return lambda label: ReplayGuard(os.path.join(directory, f"replay-{label}.db"))


def load_roots(path: str, default_label: str = "", *, guards: GuardFactory = memory_guards, previous: Roots | None = None) -> Roots:
    """Every root of the roots file at ``path``, or a :class:`RootsError` naming the first unusable one.

    ``previous`` (a reload): a root whose label was already in force keeps its replay guard, so a token used
    before the reload is still refused after it.
    """
    spec = read_roots_file(path)
    if default_label and default_label not in spec.labels():
        raise RootsError(
            f"the default label -l {default_label!r} is not a root of this file (roots: {', '.join(spec.labels())})", path=path
        )
    loaded: dict[str, Root] = {}
    try:
        for root_spec in spec.roots:
            guard = previous.roots[root_spec.label].replay_guard if previous and root_spec.label in previous.roots else None
            loaded[root_spec.label] = load_root(root_spec, path, guard or guards(root_spec.label))
            log.info("loaded root %s (%s key)", root_spec.label, root_spec.key.kind)
    except BaseException:
        for root in loaded.values():
            root.close()
        raise
    return Roots(spec.path, loaded, default_label)


def load_root(spec: RootSpec, path: str, guard: ReplayGuard) -> Root:
    """Load one root: its config (every profile must require auth), its key and certificate (they must
    match), its certificate database. Errors name the root and the key of the roots file at fault."""

    def failed(key: str, exc: Error) -> RootsError:
        detail = f"{exc.message} (code {exc.code})" if isinstance(exc, CfsslError) else exc.message
        return RootsError(detail, path=path, line=spec.line_of(key), label=spec.label, key=key)

    try:
        config = Config.from_file(spec.config)
    except Error as exc:
        raise failed("config", exc) from None
    _check_policy(config.signing, spec, path)
    try:
        issuer = load_issuer(spec.certificate, spec.key.location)
    except Error as exc:
        raise failed(_culprit(exc), exc) from None
    db = None
    recorder = None
    if spec.dbconfig:
        from cfsslpy.certdb import open_db
        from cfsslpy.certdb import recorder as certdb_recorder

        try:
            db = open_db(spec.dbconfig)
        except Error as exc:
            raise failed("dbconfig", exc) from None
        recorder = certdb_recorder(db)
    signer = LocalSigner(issuer, config.signing, recorder=recorder)
    return Root(spec.label, signer, spec.nets, guard, db, spec)


def _culprit(exc: Error) -> str:
    """The roots-file key a failure of :func:`~cfsslpy.signer.load_issuer` comes from: an unreadable key is
    1001 (cfssl's wrapping), a bad or mismatched key 2xxx; the rest is the certificate's."""
    if isinstance(exc, CfsslError) and (exc.code == 1001 or 2000 <= exc.code < 3000):
        return "private"
    return "certificate"


def _check_policy(policy: Signing, spec: RootSpec, path: str) -> None:
    """multirootca answers only authsign: every profile must name an auth_key, and sign locally."""
    for name, profile in [("default", policy.default), *policy.profiles.items()]:
        if profile.is_remote:
            problem = "is a remote profile (a root signs with its own key)"
        elif not requires_auth(profile):
            problem = "has no auth_key (multirootca serves authsign only: every profile must require authentication)"
        else:
            continue
        raise RootsError(
            f"{spec.config}: profile {name!r} {problem}", path=path, line=spec.line_of("config"), label=spec.label, key="config"
        )


class Authority:
    """The roots in force and their reload (SIGHUP). Reading :attr:`roots` is one attribute load: a request
    sees one consistent set from start to end."""

    def __init__(self, path: str, default_label: str = "", *, guards: GuardFactory = memory_guards) -> None:
        self.path = path
        self.default_label = default_label
        self.guards = guards
        self._lock = threading.Lock()
        self._retired: list[Roots] = []
        self.roots = load_roots(path, default_label, guards=guards)
        self.generation = 1

    def reload(self, *, grace: float = RETIRE_AFTER) -> bool:
        """Re-read the roots file and swap it in; False (the old roots stay, the error logged) when it is bad.

        The old roots' databases are closed ``grace`` seconds later (0: now, in a process that serves no
        requests, such as the parent of pre-forked workers)."""
        with self._lock:
            old = self.roots
            try:
                new = load_roots(self.path, self.default_label, guards=self.guards, previous=old)
            except Error as exc:
                log.error(
                    "reload of %s failed; the roots in force stay (%s): %s", self.path, ", ".join(old.roots), log_value(exc.message, 1024)
                )
                return False
            self.roots = new
            self.generation += 1
            log.info("reloaded %s: roots %s", self.path, ", ".join(new.roots))
            self._retire(old, new, grace)
            return True

    def _retire(self, old: Roots, new: Roots, grace: float) -> None:
        """Close the old roots' databases once no request can still use them; guards kept by the new set stay."""
        kept = {id(root.replay_guard) for root in new.roots.values()}
        self._retired.append(old)

        def close() -> None:
            for root in old.roots.values():
                root.close()
                if id(root.replay_guard) not in kept:
                    root.replay_guard.close()
            if old in self._retired:
                self._retired.remove(old)

        if grace <= 0:
            close()
            return
        timer = threading.Timer(grace, close)
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        """Close every root, retired ones included (tests; a server simply exits)."""
        with self._lock:
            kept = {id(root.replay_guard) for root in self.roots.roots.values()}
            for old in self._retired:
                for root in old.roots.values():
                    root.close()
                    if id(root.replay_guard) not in kept:
                        root.replay_guard.close()
            self._retired.clear()
            self.roots.close()
