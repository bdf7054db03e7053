"""The universal pyz on aarch64 for real, in CI: tests/platforms/aarch64-qemu.sh under qemu-user in a Debian
arm64 root filesystem (made with debootstrap on first use, cached in build/), with that filesystem's own
python3, openssl and SoftHSM2. Needs qemu-user-static and debootstrap (and root to make the rootfs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from integration.pyz import ROOT, built_pyz

from tests.conftest import REQUIRE_INTEGRATION, need

__all__ = ["built_pyz"]

pytestmark = [pytest.mark.integration, pytest.mark.zipapp]


def test_pyz_on_aarch64_under_qemu(built_pyz: Path) -> None:
    need("qemu-aarch64-static", "qemu-user-static runs the arm64 rootfs")
    rootfs = ROOT / "build" / "aarch64-rootfs"
    if not rootfs.exists():
        need("debootstrap", "debootstrap makes the Debian arm64 rootfs")
        if os.geteuid() != 0:
            message = "making the arm64 rootfs needs root (debootstrap)"
            pytest.fail(message) if REQUIRE_INTEGRATION else pytest.skip(message)
    result = subprocess.run(
        ["bash", str(ROOT / "tests" / "platforms" / "aarch64-qemu.sh"), str(built_pyz)],
        capture_output=True,
        text=True,
        timeout=1500,
        stdin=subprocess.DEVNULL,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "RESULT: PASS" in report and "guest uname -m: aarch64" in report, report
    assert " 0 failed" in report and "pkcs11-sign" in report, report
