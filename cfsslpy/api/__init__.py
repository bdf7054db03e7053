"""The cfssl HTTP API on bottle (see issue: serve)."""
