"""cfsslpy's emulations of Go behaviour that users can observe.

cfssl is a Go program, and some of Go's standard library shows through its interface: the wording of
``encoding/json`` errors, its case-insensitive field matching, ``time.Duration`` strings. This package holds
our copies of that behaviour, each in one place:

* :mod:`~cfsslpy.golang.json`: ``encoding/json``'s scanner and encoder (error texts, depth limit, escaping),
  key folding, ``time.Duration`` and ``time.Time`` texts;
* :mod:`~cfsslpy.golang.decode`: one declarative decoder of JSON into Go-shaped models (``encoding/json``'s
  ``Unmarshal`` into a struct, with Go's ``json: cannot unmarshal ...`` texts);
* :mod:`~cfsslpy.golang.base64`: ``encoding/base64``'s ``StdEncoding.DecodeString`` with Go's error offsets;
* :mod:`~cfsslpy.golang.url`: ``net/url``'s ``Parse`` and ``URL.String`` (certinfo's URI names);
* :mod:`~cfsslpy.golang.strconv`: ``strconv.Quote`` (certinfo's quoted names).

Each module is imported on its own (``from cfsslpy.golang.json import loads``); this package imports nothing.
"""

from __future__ import annotations
