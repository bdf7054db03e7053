"""``python -m cfsslpy``."""

from cfsslpy.cli.main import entry

entry()
