"""The ceremony with its root key generated on a throwaway SoftHSM2 token, and the ``token`` command against it."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from integration.helpers import openssl_verify
from integration.softhsm import SoftHSM, softhsm

from cfsslpy.ceremony import verify
from tests.conftest import RunCli
from tests.test_ceremony import check_outputs, full_plan, setup_dir

pytestmark = [pytest.mark.integration, pytest.mark.softhsm]

__all__ = ["softhsm"]  # the session fixture, imported for pytest


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ceremony_with_the_root_key_on_the_token(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    label = unique("ceremony-root")
    key_id = os.urandom(4).hex()
    uri = softhsm.uri(label)
    plan = setup_dir(tmp_path / "c", full_plan(uri, key_id))
    d = plan.parent

    dry = run_cli("ceremony", str(plan), "-dry-run")
    assert dry.status == 0, dry.stderr
    assert not (d / "plan.transcript.json").exists()

    result = run_cli("ceremony", str(plan), "-yes")
    assert result.status == 0, result.stderr
    assert softhsm.pin not in result.stdout + result.stderr
    check_outputs(d)
    assert not (d / "root-key.pem").exists()  # the root key exists only on the token
    openssl_verify(d / "root.pem", d / "int.pem")
    openssl_verify(d / "root.pem", d / "ocsp.pem", purpose="ocsphelper")

    # the token's key is the root certificate's key
    pub = run_cli("token", "pubkey", uri)
    assert pub.status == 0, pub.stderr
    root = x509.load_pem_x509_certificate((d / "root.pem").read_bytes())
    spki = root.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert pub.json["public_key"] == spki == (d / "root.pub.pem").read_text()

    transcript = d / "plan.transcript.json"
    text = transcript.read_text()
    assert softhsm.pin not in text
    entries = json.loads(text)["entries"]
    assert entries[1]["parameters"] == {"key": uri, "algo": "ecdsa", "size": 384, "id": key_id}
    assert [i["field"] for i in entries[2]["inputs"]] == ["csr", "config"]  # no key file: the key is a token URI
    assert entries[2]["parameters"]["key"] == uri

    verified = run_cli("ceremony", "verify", str(transcript))
    assert verified.status == 0, verified.stderr
    assert verified.json["ok"] and verified.json["complete"]

    # the same plan again: the label is taken on the token, and every output exists: refused before anything
    again = run_cli("ceremony", str(plan), "-yes", "-transcript", str(tmp_path / "again.json"))
    assert again.status == 1 and "already exists" in again.error["message"]


def test_pin_value_is_never_recorded(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    uri = softhsm.uri(unique("pinvalue"), pin_source="", pin_value=softhsm.pin)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"steps": [{"action": "generate-key", "key": uri, "algo": "ecdsa", "size": 256, "pubkey": "k.pub.pem"}]}))
    result = run_cli("ceremony", str(plan), "-yes")
    assert result.status == 0, result.stderr
    transcript = (tmp_path / "plan.transcript.json").read_text()
    assert softhsm.pin not in transcript and softhsm.pin not in result.stdout + result.stderr
    assert "pin-value" not in transcript
    assert verify(str(tmp_path / "plan.transcript.json")).ok


def test_a_token_failure_stops_the_ceremony(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    plan_obj = full_plan(softhsm.uri("rsa"))  # the label is taken: generating the root key is refused by the token
    plan = setup_dir(tmp_path / "c", plan_obj)
    result = run_cli("ceremony", str(plan), "-yes")
    assert result.status == 1
    assert result.error["code"] == 2400 and result.error["message"].startswith("step 1 (generate-key: root key): ")
    report = verify(str(tmp_path / "c" / "plan.transcript.json"))
    assert report.steps_recorded == 0 and report.problems == ["ceremony incomplete: 0 of 9 steps recorded"]


# -----------------------------------------------------------------------------------------------------------
# the token command


def test_token_list(run_cli: RunCli, softhsm: SoftHSM) -> None:
    result = run_cli("token", "list", "-module", softhsm.module)
    assert result.status == 0, result.stderr
    tokens = [s["token"] for s in result.json["slots"] if s.get("token_present")]
    assert softhsm.label in [t["label"] for t in tokens]


def test_token_generate_objects_pubkey(run_cli: RunCli, softhsm: SoftHSM) -> None:
    label = unique("cli")
    uri = softhsm.uri(label)
    made = run_cli("token", "generate", uri, "-algo", "rsa", "-id", "c0ffee")
    assert made.status == 0, made.stderr
    assert made.json["uri"] == uri
    public = serialization.load_pem_public_key(made.json["public_key"].encode())
    assert public.key_size == 2048  # type: ignore[union-attr]

    objects = run_cli("token", "objects", softhsm.uri(None))
    assert objects.status == 0, objects.stderr
    mine = [o for o in objects.json["objects"] if o.get("label") == label]
    assert len(mine) == 2, objects.stdout  # the private and the public key
    assert all(softhsm.pin not in json.dumps(o) for o in objects.json["objects"])

    pub = run_cli("token", "pubkey", uri)
    assert pub.status == 0, pub.stderr
    assert pub.json["public_key"] == made.json["public_key"]

    for algo, size, name in (("ecdsa", "384", "secp384r1"), ("ed25519", "", "ed25519")):
        args = ["token", "generate", softhsm.uri(unique(algo)), "-algo", algo] + (["-size", size] if size else [])
        result = run_cli(*args)
        assert result.status == 0, result.stderr
        key = serialization.load_pem_public_key(result.json["public_key"].encode())
        assert getattr(getattr(key, "curve", None), "name", "ed25519") == name

    dup = run_cli("token", "generate", uri)
    assert dup.status == 1 and dup.error["code"] == 2400


def test_token_output_never_shows_the_pin(run_cli: RunCli, softhsm: SoftHSM) -> None:
    uri = softhsm.uri(unique("pv"), pin_source="", pin_value=softhsm.pin)
    made = run_cli("token", "generate", uri)
    assert made.status == 0, made.stderr
    assert softhsm.pin not in made.stdout + made.stderr
    assert "pin-value" not in made.json["uri"]
