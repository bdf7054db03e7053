"""The streams and environment one CLI invocation works with (passed in, so tests need no patching)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from cfsslpy.inputs import Stdin


@dataclass
class IO:
    """stdout carries the result only; stderr carries logs, warnings and errors."""

    stdin: Stdin = field(default_factory=Stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stdout_binary: BinaryIO | None = None

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text)
        self.stderr.flush()
