"""cfsslpy's emulations of Go behaviour that users can observe.

cfssl is a Go program, and some of Go's standard library shows through its interface: the wording of
``encoding/json`` errors, its case-insensitive field matching, ``time.Duration`` strings. This package holds
our copies of that behaviour, each in one place:

* :mod:`~cfsslpy.golang.decode`: one declarative decoder of JSON into Go-shaped models (``encoding/json``'s
  ``Unmarshal`` into a struct, with Go's ``json: cannot unmarshal ...`` texts).
"""

from __future__ import annotations
