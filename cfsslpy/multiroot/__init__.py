"""multirootca's core: one authenticated signing server for several CA keys, each isolated from the others.

* :mod:`~cfsslpy.multiroot.rootsfile`: the roots file (cfssl's ini-style format), checked line by line;
* :mod:`~cfsslpy.multiroot.roots`: the roots it names, loaded all or nothing, and their atomic reload.

The HTTP face is :mod:`cfsslpy.api.multiroot`, the command :mod:`cfsslpy.cli.multirootca`.
"""

from __future__ import annotations

from cfsslpy.multiroot.roots import Authority, Root, Roots, file_guards, load_root, load_roots, memory_guards, requires_auth
from cfsslpy.multiroot.rootsfile import KeySpec, RootsError, RootsFile, RootSpec, parse_nets, parse_roots, read_roots_file

__all__ = [
    "Authority",
    "KeySpec",
    "Root",
    "RootSpec",
    "Roots",
    "RootsError",
    "RootsFile",
    "file_guards",
    "load_root",
    "load_roots",
    "memory_guards",
    "parse_nets",
    "parse_roots",
    "read_roots_file",
    "requires_auth",
]
