"""Scripted CA ceremonies with file keys: plan checks, dry run, a full run, the transcript chain and verify."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from cfsslpy.ceremony import Plan, default_transcript, entry_hash, redact_uri, verify
from cfsslpy.cli.context import IO
from cfsslpy.cli.main import main
from cfsslpy.inputs import Stdin
from cfsslpy.resources import read_asset
from tests.conftest import RunCli, need

PIN = "918273645"

CONFIG = {
    "signing": {
        "default": {"usages": ["signing"], "expiry": "8760h"},
        "profiles": {
            "root": {"usages": ["cert sign", "crl sign"], "expiry": "87600h", "ca_constraint": {"is_ca": True, "max_path_len": 1}},
            "intermediate": {
                "usages": ["cert sign", "crl sign"],
                "expiry": "43800h",
                "ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True},
            },
            "ocsp": {"usages": ["digital signature", "ocsp signing"], "expiry": "8760h", "ocsp_no_check": True},
            "server": {"usages": ["digital signature", "server auth"], "expiry": "8760h"},
        },
    }
}


def full_plan(root_key: str = "root-key.pem", key_id: str = "01") -> dict[str, Any]:
    """Root key and certificate, intermediate, OCSP responder, first CRL: every key a file unless ``root_key``
    is a pkcs11: URI (then the root key pair is generated on that token with CKA_ID ``key_id``)."""
    first: dict[str, Any] = {"name": "root key", "action": "generate-key", "key": root_key, "algo": "ecdsa", "size": 384}
    if root_key.startswith("pkcs11:"):
        first["id"] = key_id
    first["pubkey"] = "root.pub.pem"
    steps: list[dict[str, Any]] = [first]
    steps += [
        {
            "name": "root",
            "action": "self-sign",
            "csr": "root-csr.json",
            "key": root_key,
            "config": "ca-config.json",
            "profile": "root",
            "cert": "root.pem",
        },
        {"action": "generate-key", "key": "int-key.pem", "pubkey": "int.pub.pem"},
        {"action": "generate-csr", "csr": "int-csr.json", "key": "int-key.pem", "csr_pem": "int.csr"},
        {
            "name": "intermediate",
            "action": "sign",
            "ca": "root.pem",
            "ca_key": root_key,
            "csr": "int.csr",
            "config": "ca-config.json",
            "profile": "intermediate",
            "cert": "int.pem",
        },
        {"action": "generate-key", "key": "ocsp-key.pem", "algo": "rsa", "size": 2048, "pubkey": "ocsp.pub.pem"},
        {"action": "generate-csr", "csr": "ocsp-csr.json", "key": "ocsp-key.pem", "csr_pem": "ocsp.csr"},
        {
            "name": "OCSP responder",
            "action": "ocsp-responder",
            "ca": "root.pem",
            "ca_key": root_key,
            "csr": "ocsp.csr",
            "config": "ca-config.json",
            "profile": "ocsp",
            "cert": "ocsp.pem",
        },
        {
            "name": "first CRL",
            "action": "crl",
            "ca": "root.pem",
            "ca_key": root_key,
            "serials": "serials.txt",
            "expiry": "720h",
            "crl": "root.crl",
        },
    ]
    return {"description": "test ceremony", "steps": steps}


def setup_dir(directory: Path, plan: dict[str, Any] | None = None) -> Path:
    """The ceremony directory: the inputs nobody produces, and plan.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca-config.json").write_text(json.dumps(CONFIG))
    (directory / "root-csr.json").write_text(json.dumps({"CN": "Ceremony Root CA", "names": [{"C": "US", "O": "cfsslpy tests"}]}))
    (directory / "int-csr.json").write_text(json.dumps({"CN": "Ceremony Intermediate CA", "names": [{"C": "US", "O": "cfsslpy tests"}]}))
    (directory / "ocsp-csr.json").write_text(json.dumps({"CN": "Ceremony OCSP Responder", "names": [{"O": "cfsslpy tests"}]}))
    (directory / "serials.txt").write_text("12345\n0x2a keyCompromise\n")
    path = directory / "plan.json"
    path.write_text(json.dumps(plan or full_plan(), indent=2))
    return path


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def check_outputs(d: Path) -> None:
    """Every output of the full plan is what a CA ceremony should produce."""
    root, inter, ocsp = cert(d / "root.pem"), cert(d / "int.pem"), cert(d / "ocsp.pem")
    root.verify_directly_issued_by(root)
    inter.verify_directly_issued_by(root)
    ocsp.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(ca=True, path_length=1)
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(ca=True, path_length=0)
    assert ocsp.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ExtendedKeyUsageOID.OCSP_SIGNING in ocsp.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    ocsp.extensions.get_extension_for_class(x509.OCSPNoCheck)
    spki = root.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert (d / "root.pub.pem").read_bytes() == spki
    crl = x509.load_pem_x509_crl((d / "root.crl").read_bytes())
    assert crl.is_signature_valid(root.public_key())
    assert crl.issuer == root.subject
    assert {r.serial_number for r in crl} == {12345, 42}
    assert crl.next_update_utc is not None and crl.last_update_utc is not None
    assert (crl.next_update_utc - crl.last_update_utc).total_seconds() == 720 * 3600
    for key_file in ("int-key.pem", "ocsp-key.pem") + (("root-key.pem",) if (d / "root-key.pem").exists() else ()):
        assert stat.S_IMODE((d / key_file).stat().st_mode) == 0o600


@pytest.fixture
def done(run_cli: RunCli, tmp_path: Path) -> Path:
    """A completed file-key ceremony in tmp_path/c; returns its transcript."""
    plan = setup_dir(tmp_path / "c")
    result = run_cli("ceremony", str(plan), "-yes")
    assert result.status == 0, result.stderr
    transcript = tmp_path / "c" / "plan.transcript.json"
    assert result.json == {"transcript": str(transcript), "steps": 9, "hash": json.loads(transcript.read_text())["entries"][-1]["hash"]}
    return transcript


# -----------------------------------------------------------------------------------------------------------
# a full ceremony


def test_full_ceremony_with_file_keys(done: Path, run_cli: RunCli) -> None:
    d = done.parent
    check_outputs(d)
    doc = json.loads(done.read_text())
    entries = doc["entries"]
    assert doc["format"] == "cfsslpy-ceremony-transcript/1"
    assert len(entries) == 10
    header = entries[0]
    assert header["type"] == "header" and header["seq"] == 0 and header["prev"] == "" and header["steps"] == 9
    assert header["plan"]["sha256"] == hashlib.sha256((d / "plan.json").read_bytes()).hexdigest()
    assert header["plan"]["path"] == "plan.json" and header["host"] and header["tool"].startswith("cfsslpy ")
    for i, entry in enumerate(entries):
        assert entry["hash"] == entry_hash(entry)
        if i:
            assert entry["prev"] == entries[i - 1]["hash"] and entry["step"] == i and entry["type"] == "step"
    sign = entries[5]
    assert sign["action"] == "sign" and sign["parameters"] == {"profile": "intermediate"}
    assert [(r["field"], r["path"]) for r in sign["inputs"]] == [
        ("ca", "root.pem"),
        ("csr", "int.csr"),
        ("config", "ca-config.json"),
        ("ca_key", "root-key.pem"),
    ]
    assert sign["outputs"][0]["path"] == "int.pem"
    first = entries[1]
    assert first["parameters"] == {"algo": "ecdsa", "size": 384}
    assert {o["field"] for o in first["outputs"]} == {"key", "pubkey"}

    result = run_cli("ceremony", "verify", str(done))
    assert result.status == 0, result.stderr
    report = result.json
    assert report["ok"] is True and report["complete"] is True and report["problems"] == []
    assert report["steps_recorded"] == report["steps_planned"] == 9
    assert report["final_hash"] == entries[-1]["hash"]
    assert all(f["status"] == "ok" for f in report["files"]) and len(report["files"]) > 20


@pytest.mark.integration
@pytest.mark.openssl
def test_full_ceremony_outputs_pass_openssl(done: Path) -> None:
    from integration.helpers import openssl_verify

    d = done.parent
    openssl_verify(d / "root.pem", d / "int.pem")
    openssl_verify(d / "root.pem", d / "ocsp.pem", purpose="ocsphelper")
    proc = subprocess.run(
        [need("openssl"), "crl", "-in", str(d / "root.crl"), "-CAfile", str(d / "root.pem"), "-noout"], capture_output=True, check=False
    )
    assert proc.returncode == 0 and b"verify OK" in proc.stderr + proc.stdout, proc.stderr
    proc = subprocess.run([need("openssl"), "x509", "-in", str(d / "ocsp.pem"), "-noout", "-text"], capture_output=True, check=True)
    assert b"OCSP Signing" in proc.stdout and b"OCSP No Check" in proc.stdout


# -----------------------------------------------------------------------------------------------------------
# verify: tampering


def rewrite(transcript: Path, change: Any) -> None:
    doc = json.loads(transcript.read_text())
    change(doc["entries"])
    transcript.write_text(json.dumps(doc))


def failed(run_cli: RunCli, transcript: Path) -> tuple[dict[str, Any], str]:
    result = run_cli("ceremony", "verify", str(transcript))
    assert result.status == 1, result.stdout
    assert result.json["ok"] is False
    error = result.error
    assert error["code"] == 1200
    message: str = error["message"]
    assert message.startswith("ceremony transcript verification failed: ")
    return result.json, message


def test_verify_detects_an_edited_field(done: Path, run_cli: RunCli) -> None:
    rewrite(done, lambda e: e[5]["parameters"].update(profile="root"))
    report, message = failed(run_cli, done)
    assert "entry 5: hash does not match" in message
    assert report["problems"] == ["entry 5: hash does not match its content (entry edited)"]


def test_verify_detects_an_edited_entry_with_a_recomputed_hash(done: Path, run_cli: RunCli) -> None:
    def change(entries: list[dict[str, Any]]) -> None:
        entries[3]["time"] = "2001-01-01T00:00:00Z"
        entries[3]["hash"] = entry_hash(entries[3])

    rewrite(done, change)
    _, message = failed(run_cli, done)
    assert "entry 4: prev does not match" in message


def test_verify_detects_a_removed_entry(done: Path, run_cli: RunCli) -> None:
    rewrite(done, lambda e: e.pop(4))
    report, message = failed(run_cli, done)
    assert message.endswith("entry 4: seq is 5 (entries removed, inserted or reordered)")
    assert any("prev does not match" in p for p in report["problems"])
    assert "ceremony incomplete: 8 of 9 steps recorded" in report["problems"]


def test_verify_detects_reordered_entries(done: Path, run_cli: RunCli) -> None:
    def change(entries: list[dict[str, Any]]) -> None:
        entries[2], entries[3] = entries[3], entries[2]

    rewrite(done, change)
    _, message = failed(run_cli, done)
    assert "entry 2" in message


def test_verify_detects_a_truncated_transcript(done: Path, run_cli: RunCli) -> None:
    rewrite(done, lambda e: e.pop())
    report, message = failed(run_cli, done)
    assert message.endswith("ceremony incomplete: 8 of 9 steps recorded")
    assert report["complete"] is False


def test_verify_detects_a_changed_output_file(done: Path, run_cli: RunCli) -> None:
    crl = done.parent / "root.crl"
    crl.write_bytes(crl.read_bytes().replace(b"-----END", b"\n-----END"))
    report, message = failed(run_cli, done)
    assert message.endswith("step 9: output root.crl changed since the ceremony (sha256 mismatch)")
    assert [f["path"] for f in report["files"] if f["status"] == "changed"] == ["root.crl"]


def test_verify_detects_a_changed_input_file(done: Path, run_cli: RunCli) -> None:
    (done.parent / "serials.txt").write_text("12345\n")
    _, message = failed(run_cli, done)
    assert "input serials.txt changed" in message


def test_verify_lists_missing_files_without_failing(done: Path, run_cli: RunCli) -> None:
    (done.parent / "int-key.pem").unlink()
    result = run_cli("ceremony", "verify", str(done))
    assert result.status == 0, result.stderr
    assert result.json["missing"] == ["int-key.pem", "int-key.pem"]  # output of step 3, input of step 4


def test_verify_works_after_the_directory_moves(done: Path, tmp_path: Path) -> None:
    moved = tmp_path / "archive"
    done.parent.rename(moved)
    report = verify(str(moved / done.name))
    assert report.ok and report.complete and not [f for f in report.files if f.status != "ok"]


def test_verify_refuses_what_is_not_a_transcript(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"entries": []}')
    result = run_cli("ceremony", "verify", "x.json")
    assert result.status == 1 and result.error["code"] == 1200 and "not a cfsslpy-ceremony-transcript/1" in result.error["message"]
    (tmp_path / "y.json").write_text("{")
    result = run_cli("ceremony", "verify", "y.json")
    assert result.status == 1 and "not valid JSON" in result.error["message"]
    result = run_cli("ceremony", "verify", "nope.json")
    assert result.status == 1 and "nope.json" in result.stderr and "Traceback" not in result.stderr


# -----------------------------------------------------------------------------------------------------------
# dry run


def test_dry_run_prints_the_plan_and_changes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    before = listing(plan.parent)
    result = run_cli("ceremony", str(plan), "-dry-run")
    assert result.status == 0, result.stderr
    assert listing(plan.parent) == before
    view = result.json
    assert view["plan"]["path"] == str(plan) and view["transcript"] == str(plan.parent / "plan.transcript.json")
    assert len(view["steps"]) == 9
    root = view["steps"][1]
    assert root["action"] == "self-sign" and root["name"] == "root" and root["parameters"] == {"profile": "root"}
    inputs = {i["field"]: i for i in root["inputs"]}
    assert inputs["csr"]["sha256"] == hashlib.sha256((plan.parent / "root-csr.json").read_bytes()).hexdigest()
    assert inputs["key"]["from_step"] == 1
    assert root["outputs"] == [{"field": "cert", "path": str(plan.parent / "root.pem")}]


def test_dry_run_flag_before_the_plan(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    result = run_cli("ceremony", "-dry-run", "-transcript", str(tmp_path / "t.json"), str(plan))
    assert result.status == 0, result.stderr
    assert result.json["transcript"] == str(tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()


def test_dry_run_never_shows_a_pin(run_cli: RunCli, tmp_path: Path) -> None:
    uri = f"pkcs11:token=CA;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value={PIN}"
    plan = setup_dir(tmp_path / "c", full_plan(uri))
    result = run_cli("ceremony", str(plan), "-dry-run")
    assert result.status == 0, result.stderr
    assert PIN not in result.stdout and PIN not in result.stderr
    assert "pin-value" in result.stderr  # the warning names the attribute, never its value
    assert result.json["steps"][0]["parameters"]["key"] == "pkcs11:token=CA;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so"


def test_redact_uri() -> None:
    assert redact_uri("pkcs11:token=a?pin-value=2&module-path=/x") == "pkcs11:token=a?module-path=/x"
    assert redact_uri("pkcs11:token=a?PIN-VALUE=2") == "pkcs11:token=a"
    assert redact_uri("pkcs11:token=a?pin-source=file:/p") == "pkcs11:token=a?pin-source=file:/p"


# -----------------------------------------------------------------------------------------------------------
# refusals


def refused(run_cli: RunCli, plan: Path, *flags: str) -> str:
    before = listing(plan.parent)
    result = run_cli("ceremony", str(plan), "-yes", *flags)
    assert result.status == 1, result.stdout
    assert listing(plan.parent) == before  # nothing written, not even a transcript
    assert "Traceback" not in result.stderr
    assert result.error["code"] == 5200
    message: str = result.error["message"]
    return message


def test_refuses_to_overwrite_an_existing_output(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    (plan.parent / "int.pem").write_text("keep me")
    message = refused(run_cli, plan)
    assert message.startswith("step 5 (sign: intermediate): output cert ") and "already exists (refusing to overwrite)" in message


def test_refuses_an_existing_transcript(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    (plan.parent / "plan.transcript.json").write_text("{}")
    assert "already exists" in refused(run_cli, plan)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p["steps"].append({"action": "frobnicate"}), "step 10: unknown action 'frobnicate'"),
        (lambda p: p["steps"][4].update(hostname="x"), "step 5 (sign: intermediate): unknown field 'hostname'"),
        (lambda p: p["steps"][4].pop("csr"), "step 5 (sign: intermediate): missing field 'csr'"),
        (lambda p: p.update(extra=1), "unknown field 'extra'"),
        (lambda p: p["steps"][8].update(crl="int.pem"), "step 9 (crl: first CRL): output crl "),
        (lambda p: p["steps"][4].update(csr="nothing.csr"), "step 5 (sign: intermediate): input csr "),
        (
            lambda p: p["steps"][7].update(profile="server"),
            "step 8 (ocsp-responder: OCSP responder): profile 'server' has no 'ocsp signing' usage",
        ),
        (lambda p: p["steps"][7].update(profile="nope"), "step 8 (ocsp-responder: OCSP responder): unknown profile 'nope'"),
        (lambda p: p["steps"][1].update(profile="server"), "step 2 (self-sign: root): profile 'server' is not a CA profile"),
        (lambda p: p["steps"][8].update(expiry="soon"), "step 9 (crl: first CRL): expiry: time: invalid duration"),
        (lambda p: p["steps"][0].update(size=1024, algo="rsa"), "step 1 (generate-key: root key): RSA key is too weak"),
        (lambda p: p["steps"][0].update(id="01"), "step 1 (generate-key: root key): id is for keys on a token"),
        (lambda p: p["steps"][4].update(ca_key="env:ROOT_KEY"), "env: is not allowed"),
        (lambda p: p["steps"][4].update(profile=3), "step 5 (sign: intermediate): profile must be a string"),
        (lambda p: p.update(steps=[]), "steps must be a non-empty list"),
        (
            lambda p: p["steps"][4].update(ca_key="pkcs11:token=CA;bogus=1"),
            "step 5 (sign: intermediate): ca_key: PKCS#11 URI: unknown path attribute",
        ),
        (lambda p: p["steps"][0].update(key="pkcs11:token=CA"), "step 1 (generate-key: root key): key URI names no object="),
    ],
)
def test_refuses_a_bad_plan(run_cli: RunCli, tmp_path: Path, change: Any, expected: str) -> None:
    plan_obj = full_plan()
    change(plan_obj)
    plan = setup_dir(tmp_path / "c", plan_obj)
    assert expected in refused(run_cli, plan)
    # a dry run refuses it just the same
    result = run_cli("ceremony", str(plan), "-dry-run")
    assert result.status == 1 and expected in result.error["message"]


def test_refuses_an_input_produced_only_by_a_later_step(run_cli: RunCli, tmp_path: Path) -> None:
    plan_obj = full_plan()
    plan_obj["steps"].insert(0, plan_obj["steps"].pop(4))  # sign the intermediate before the root exists
    message = refused(run_cli, setup_dir(tmp_path / "c", plan_obj))
    assert message.startswith("step 1 (sign: intermediate): input ca ") and "(produced only by the later step 3)" in message


def test_refuses_a_bad_csr_json_before_anything_runs(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    (plan.parent / "root-csr.json").write_text('{"CN": 5}')
    assert refused(run_cli, plan).startswith("step 2 (self-sign: root): ")


def test_refuses_to_run_without_a_terminal_and_without_yes(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    before = listing(plan.parent)
    result = run_cli("ceremony", str(plan))
    assert result.status == 2
    assert "not a terminal" in result.stderr and "-yes" in result.stderr
    assert listing(plan.parent) == before


def test_usage_errors(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("ceremony").status == 1  # cfssl's "not enough arguments"
    assert run_cli("ceremony", "a.json", "b.json", "-yes").status == 1
    assert run_cli("ceremony", "verify", "t.json", "-yes").status == 2
    assert run_cli("ceremony", "a.json", "-yes", "-dry-run").status == 2
    result = run_cli("ceremony", "-h")
    assert result.status == 0 and "ceremony verify TRANSCRIPT" in result.stderr


# -----------------------------------------------------------------------------------------------------------
# confirmation on a terminal; a failing step


class Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def run_on_terminal(plan: Path, answers: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.chdir(plan.parent)
    environ = {k: v for k, v in os.environ.items() if k != "CFSSL_CA_PK_PASSWORD"}
    status = main(["ceremony", str(plan)], IO(stdin=Stdin(Terminal(answers)), stdout=out, stderr=err, environ=environ))
    return status, out.getvalue(), err.getvalue()


def test_terminal_confirms_each_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = setup_dir(tmp_path / "c")
    status, out, err = run_on_terminal(plan, b"y\n" * 9, monkeypatch)
    assert status == 0, err
    assert err.count("[y/N]") == 9
    assert "step 5: sign (intermediate)\n  profile: intermediate\n  in  ca: " in err and "(from step 2)" in err
    check_outputs(plan.parent)
    assert verify(json.loads(out)["transcript"]).ok


def test_terminal_no_stops_the_ceremony_with_a_valid_transcript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = setup_dir(tmp_path / "c")
    status, out, err = run_on_terminal(plan, b"yes\ny\nn\n", monkeypatch)
    assert status == 1 and out == ""
    assert "step 3 (generate-key) declined: ceremony stopped after 2 step(s)" in err
    assert not (plan.parent / "int-key.pem").exists()
    report = verify(default_transcript(str(plan)))
    assert report.steps_recorded == 2 and report.problems == ["ceremony incomplete: 2 of 9 steps recorded"]


def test_a_failing_step_leaves_the_transcript_of_the_steps_done(run_cli: RunCli, tmp_path: Path) -> None:
    plan_obj = full_plan()
    plan_obj["steps"][4]["ca_key"] = "int-key.pem"  # the intermediate's own key does not match the root
    plan = setup_dir(tmp_path / "c", plan_obj)
    result = run_cli("ceremony", str(plan), "-yes")
    assert result.status == 1
    assert result.error == {"code": 2300, "message": "step 5 (sign: intermediate): Private key does not match public key"}
    assert not (plan.parent / "int.pem").exists()
    report = verify(default_transcript(str(plan)))
    assert report.steps_recorded == 4 and report.problems == ["ceremony incomplete: 4 of 9 steps recorded"]


# -----------------------------------------------------------------------------------------------------------
# the shipped example


def test_example_plan_is_printed(run_cli: RunCli) -> None:
    result = run_cli("ceremony", "example")
    assert result.status == 0
    assert result.stdout.encode() == read_asset("examples", "ceremony-plan.json")
    assert run_cli("ceremony", "example", "x").status == 1


def test_example_plan_parses() -> None:
    data = read_asset("examples", "ceremony-plan.json")
    plan = Plan.from_bytes(data, "/ceremony/ceremony-plan.json")
    assert [s.action for s in plan.steps] == ["generate-key", "self-sign", "sign", "generate-key", "generate-csr", "ocsp-responder", "crl"]
    assert all(uri.startswith("pkcs11:") and "pin-source=file:" in uri for s in plan.steps for uri in s.tokens.values())
    assert plan.steps[2].inputs["config"] == "/ceremony/ca-config.json"


def test_a_step_whose_outputs_cannot_all_be_written_keeps_none() -> None:
    from types import SimpleNamespace

    from cfsslpy import ceremony
    from cfsslpy.errors import PlainError

    with tempfile.TemporaryDirectory() as tmp:
        step = SimpleNamespace(label="step 1 (test)")
        first = os.path.join(tmp, "key.pem")
        second = os.path.join(tmp, "missing-dir", "cert.pem")  # its directory does not exist: the write fails
        with pytest.raises(PlainError, match="none of them was kept"):
            ceremony._write_outputs(step, [("key", first, b"secret", 0o600), ("cert", second, b"cert", 0o644)])
        assert os.listdir(tmp) == []  # the key written first was removed again


# -----------------------------------------------------------------------------------------------------------
# a dry run lists every problem; the example writes its inputs


def test_a_dry_run_lists_every_missing_input_and_every_invalid_step(run_cli: RunCli, tmp_path: Path) -> None:
    plan = setup_dir(tmp_path / "c")
    (plan.parent / "root-csr.json").unlink()
    (plan.parent / "int.pem").write_text("keep me")
    result = run_cli("ceremony", str(plan), "-dry-run")
    assert (result.status, result.stdout) == (1, "")
    lines = result.stderr.splitlines()
    assert lines[0] == f"2 problems in {plan}:"
    assert lines[1].startswith("  - step 2 (self-sign: root): input csr ") and "does not exist" in lines[1]
    assert lines[2].startswith("  - step 5 (sign: intermediate): output cert ") and "already exists" in lines[2]
    assert result.error["message"].endswith("does not exist and no earlier step produces it (and 1 more problem)")

    plan_obj = full_plan()
    plan_obj["steps"][0].update(algo="dsa")
    plan_obj["steps"][4].pop("csr")
    plan_obj["steps"].append({"action": "frobnicate"})
    bad = setup_dir(tmp_path / "d", plan_obj)
    result = run_cli("ceremony", "-dry-run", str(bad))
    problems = [line[4:] for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    assert problems[0].startswith("ceremony plan plan.json: step 1 (generate-key: root key): algo 'dsa'")
    assert problems[1] == "ceremony plan plan.json: step 5 (sign: intermediate): missing field 'csr'"
    assert problems[2].startswith("ceremony plan plan.json: step 10: unknown action 'frobnicate'")


def test_a_plan_with_a_json_error_is_located(run_cli: RunCli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"steps": [\n  {"action": "crl"}\n  {"action": "crl"}]}')
    result = run_cli("ceremony", "-dry-run", str(plan))
    assert result.status == 1
    assert result.stderr.splitlines() == [
        json.dumps(
            {"code": 5200, "message": "ceremony plan plan.json: not valid JSON: invalid character '{' after array element"},
            separators=(",", ":"),
        ),
        f"hint: {plan}:3:3",
    ]


def test_the_example_writes_a_plan_whose_dry_run_passes(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("ceremony", "example", "-write", "rehearsal")
    assert (result.status, result.stdout) == (0, ""), result.stderr
    directory = tmp_path / "rehearsal"
    assert sorted(p.name for p in directory.iterdir()) == [
        "ca-config.json",
        "ceremony-plan.json",
        "intermediate-key.pem",
        "intermediate.csr",
        "ocsp-csr.json",
        "root-csr.json",
    ]
    assert (directory / "intermediate-key.pem").stat().st_mode & 0o777 == 0o600
    assert (directory / "ceremony-plan.json").read_text() == run_cli("ceremony", "example").stdout
    dry = run_cli("ceremony", "-dry-run", str(directory / "ceremony-plan.json"))
    assert dry.status == 0, dry.stderr
    assert "WARNING" not in dry.stderr
    assert [step["action"] for step in dry.json["steps"]] == [
        "generate-key",
        "self-sign",
        "sign",
        "generate-key",
        "generate-csr",
        "ocsp-responder",
        "crl",
    ]
    # written once: a second -write refuses to overwrite, and changes nothing
    before = listing(directory)
    again = run_cli("ceremony", "example", "-write", "rehearsal")
    assert again.status == 1 and "already exists (refusing to overwrite)" in again.stderr
    assert listing(directory) == before
    assert run_cli("ceremony", "-write", "x", "plan.json").status == 2
