"""``python -m cfsslpy``."""

from cfsslpy.cli.entry import entry

entry()
