"""A throwaway SoftHSM2 token for the session, with RSA and ECDSA keys generated on it by cfsslpy.

Import the fixture into a test module: ``from integration.softhsm import SoftHSM, softhsm``. The token lives in
a temporary directory with its own ``softhsm2.conf``; ``SOFTHSM2_CONF`` points at it for the whole test session
(this process and every subprocess it starts). Skips when SoftHSM2 or python-pkcs11 is missing, and fails
instead under ``CFSSLPY_REQUIRE_INTEGRATION=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REQUIRE_INTEGRATION

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
LABEL = "cfsslpy-test"
SO_PIN = "87654321"
PIN = "246810"
# the keys cfsslpy generates on the token: object label -> (algo, size)
KEYS = {"rsa": ("rsa", 2048), "ec": ("ecdsa", 256), "ec384": ("ecdsa", 384)}

# Objects made with python-pkcs11 directly, in a separate process (so that this process's login, cached by
# cfsslpy, is not disturbed): an AES key labelled "secret", a public key with no private half ("pubonly"), and
# a P-256 key with CKA_ALWAYS_AUTHENTICATE ("always": a login before each signature, like YubiKey slot 9c).
_RAW_OBJECTS = r"""
import sys, pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
lib = pkcs11.lib(sys.argv[1])
with lib.get_token(token_label=sys.argv[2]).open(rw=True, user_pin=sys.argv[3]) as s:
    s.generate_key(KeyType.AES, 256, label="secret", store=True)
    pub, priv = s.generate_keypair(KeyType.RSA, 2048, label="pubonly", id=b"\x99", store=True)
    priv.destroy()
    params = s.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: bytes.fromhex("06082a8648ce3d030107")}, local=True)
    params.generate_keypair(
        label="always", id=b"\x9c", store=True,
        private_template={Attribute.ALWAYS_AUTHENTICATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
    )
"""


def _unavailable(message: str) -> None:
    if REQUIRE_INTEGRATION:
        pytest.fail(f"{message} (required: CFSSLPY_REQUIRE_INTEGRATION=1)")
    pytest.skip(message)


@dataclass
class SoftHSM:
    dir: Path
    conf: Path
    module: str
    label: str
    pin: str
    pin_file: Path

    def uri(self, obj: str | None = None, *, pin_source: str | None = None, **extra: str) -> str:
        """``pkcs11:token=...;object=OBJ?module-path=...&pin-source=file:<pinfile>`` (``pin_source=""``: none)."""
        path = f"token={self.label}" + (f";object={obj}" if obj else "")
        for name, value in extra.items():
            if name not in ("pin_value", "module_path"):
                path += f";{name.replace('_', '-')}={value}"
        query = f"module-path={extra.get('module_path', self.module)}"
        source = f"file:{self.pin_file}" if pin_source is None else pin_source
        if source:
            query += f"&pin-source={source}"
        if "pin_value" in extra:
            query += f"&pin-value={extra['pin_value']}"
        return f"pkcs11:{path}?{query}"

    def key_uri(self, name: str) -> str:
        return self.uri(name)


# SoftHSM reads SOFTHSM2_CONF once per process (at C_Initialize), so there is one token per test session even
# when several test modules import the fixture (pytest then makes one session fixture per module): the first
# instance makes the token and removes it at the end of the session (session fixtures end last-in first-out).
_TOKEN: SoftHSM | None = None


@pytest.fixture(scope="session")
def softhsm() -> Iterator[SoftHSM]:
    global _TOKEN
    if _TOKEN is not None:
        yield _TOKEN
        return
    util = shutil.which("softhsm2-util")
    module = next((m for m in MODULE_CANDIDATES if os.path.exists(m)), None)
    if util is None or module is None:
        _unavailable("SoftHSM2 is not installed (Debian: softhsm2)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        _unavailable("python-pkcs11 is not installed (pip install python-pkcs11)")
    assert util is not None and module is not None
    from cfsslpy import pkcs11 as token_keys

    with tempfile.TemporaryDirectory(prefix="cfsslpy-softhsm-") as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
        mp.setenv("SOFTHSM2_CONF", str(conf))  # os.environ: seen by this process's SoftHSM and by subprocesses
        init = subprocess.run(
            [util, "--init-token", "--free", "--label", LABEL, "--so-pin", SO_PIN, "--pin", PIN],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        pin_file = root / "pin"
        pin_file.write_text(PIN + "\n")
        pin_file.chmod(0o600)
        token = SoftHSM(root, conf, module, LABEL, PIN, pin_file)
        made = subprocess.run(
            [sys.executable, "-c", _RAW_OBJECTS, module, LABEL, PIN], capture_output=True, text=True, timeout=120, check=False
        )
        assert made.returncode == 0, made.stderr
        for name, (algo, size) in KEYS.items():
            token_keys.generate_key_pair(token.uri(name), algo, size)
        _TOKEN = token
        try:
            yield token
        finally:
            _TOKEN = None
