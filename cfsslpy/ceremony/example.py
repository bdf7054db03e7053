"""``ceremony example -write DIR``: the example plan together with the input files it reads, so that
``ceremony -dry-run DIR/ceremony-plan.json`` passes and the ceremony can be rehearsed (with SoftHSM2).

The inputs: the root's CSR JSON (a CA request), the OCSP responder's CSR JSON, the signing configuration
with the ``intermediate`` (a CA, path length 0) and ``ocsp`` (``ocsp signing``, ``ocsp_no_check``)
profiles, and the intermediate's CSR with its key, as the intermediate's own host would have made them
(``cfsslpy genkey``); on a real ceremony that CSR arrives from there and its key never comes near the root.
"""

from __future__ import annotations

import json
import os

from cfsslpy.errors import PlainError
from cfsslpy.inputs import write_atomic, write_secret

PLAN = "ceremony-plan.json"

ROOT_CSR = {
    "CN": "Example Root CA 2025",
    "key": {"algo": "ecdsa", "size": 384},
    "names": [{"C": "US", "O": "Example", "OU": "Example PKI"}],
    "ca": {"expiry": "87600h", "pathlen": 1},
}
INTERMEDIATE_CSR = {
    "CN": "Example Intermediate CA 2025",
    "key": {"algo": "ecdsa", "size": 256},
    "names": [{"C": "US", "O": "Example", "OU": "Example PKI"}],
}
OCSP_CSR = {"CN": "Example Root CA 2025 OCSP responder", "key": {"algo": "ecdsa", "size": 256}, "names": [{"C": "US", "O": "Example"}]}
CA_CONFIG = {
    "signing": {
        "default": {"expiry": "8760h", "usages": ["digital signature", "key encipherment", "server auth"]},
        "profiles": {
            "intermediate": {
                "expiry": "43800h",
                "usages": ["cert sign", "crl sign"],
                "ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True},
            },
            "ocsp": {"expiry": "2160h", "usages": ["digital signature", "ocsp signing"], "ocsp_no_check": True},
        },
    }
}


def example_files(plan: bytes) -> dict[str, tuple[bytes, int]]:
    """Every file of the example (name -> contents, mode): the plan and its inputs."""
    from cryptography.hazmat.primitives import serialization

    from cfsslpy.csr import CertificateRequest, new_key_and_csr
    from cfsslpy.keys import encode_private_key

    def doc(obj: object) -> bytes:
        return (json.dumps(obj, indent=2) + "\n").encode()

    csr, key = new_key_and_csr(CertificateRequest.from_json_bytes(doc(INTERMEDIATE_CSR)))
    return {
        PLAN: (plan, 0o644),
        "root-csr.json": (doc(ROOT_CSR), 0o644),
        "ocsp-csr.json": (doc(OCSP_CSR), 0o644),
        "ca-config.json": (doc(CA_CONFIG), 0o644),
        "intermediate.csr": (csr.public_bytes(serialization.Encoding.PEM), 0o644),
        "intermediate-key.pem": (encode_private_key(key), 0o600),
    }


def write_example(directory: str, plan: bytes) -> list[str]:
    """Write the example into ``directory`` (created if missing; no file in it is overwritten); returns the paths."""
    files = example_files(plan)
    paths = [os.path.join(directory, name) for name in files]
    existing = [path for path in paths if os.path.lexists(path)]
    if existing:
        raise PlainError(f"ceremony example: {existing[0]} already exists (refusing to overwrite)")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise PlainError(f"ceremony example: cannot create {directory}: {exc.strerror}") from None
    for path, (data, mode) in zip(paths, files.values(), strict=True):
        if mode == 0o600:
            write_secret(path, data)
        else:
            write_atomic(path, data, mode)
    return paths
