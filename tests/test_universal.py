"""Signer selection (reference §3.2): local, remote, universal per-profile dispatch, and the -remote override."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from cfsslpy.config import Config
from cfsslpy.remote import RemoteSigner
from cfsslpy.signer import LocalSigner, SignerInfo, SignRequest
from cfsslpy.universal import UniversalSigner, needs_local_signer, override_remote, signer_from_inputs
from tests.conftest import RunCli, make_ca
from tests.test_remote import KEY, KEY_HEX, PKI, FakeCfssl, build_pki, error_of, new_csr, remote_config


@pytest.fixture
def pki(run_cli: RunCli, tmp_path: Path) -> PKI:
    return build_pki(run_cli, tmp_path / "pki")


def mixed_config(remote: str, *, auth: bool = False) -> Config:
    fwd: dict[str, Any] = {"auth_remote": {"remote": "ca", "auth_key": "k"}} if auth else {"remote": "ca"}
    return Config.from_json(
        {
            "signing": {
                "default": {"expiry": "1h", "usages": ["server auth"]},
                "profiles": {"local": {"expiry": "2h", "usages": ["client auth"]}, "fwd": fwd},
            },
            "remotes": {"ca": remote},
            "auth_keys": {"k": {"type": "standard", "key": KEY_HEX}},
        }
    )


def test_a_mixed_policy_dispatches_per_profile(pki: PKI, run_cli: RunCli, tmp_path: Path) -> None:
    other = make_ca(run_cli, tmp_path / "other", name="other")
    other_subject = x509.load_pem_x509_certificate(other.cert.read_bytes()).subject
    with FakeCfssl(pki.signer).running() as fake:
        signer = signer_from_inputs(mixed_config(fake.address), str(other.cert), str(other.key), "")
        assert isinstance(signer, UniversalSigner)
        local = signer.sign(SignRequest(request=new_csr(), profile="local"))
        default = signer.sign(SignRequest(request=new_csr()))
        assert fake.seen == []
        remote = signer.sign(SignRequest(request=new_csr(), profile="fwd"))
        assert [s.path for s in fake.seen] == ["/api/v1/cfssl/sign"]
        info = signer.info("fwd")
        assert info.certificate == pki.signer.certificate
        assert signer.info("local").expiry == "2h"
    assert local.issuer == default.issuer == other_subject
    assert remote.issuer == pki.signer.certificate.subject  # type: ignore[union-attr]
    err = error_of(lambda: signer.sign(SignRequest(request=new_csr(), profile="nope")))
    assert (err.code, err.message) == (5400, "Unknown policy profile")
    assert error_of(lambda: signer.info("nope")).code == 5400


def test_an_unknown_profile_of_a_mixed_policy_is_logged_bounded(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    signer = signer_from_inputs(mixed_config("127.0.0.1:9"), str(pki.ca.cert), str(pki.ca.key), "")
    assert isinstance(signer, UniversalSigner)
    name = "\x1b[2J" + "n" * 200_000
    assert error_of(lambda: signer.sign(SignRequest(request=new_csr(), profile=name))).code == 5400
    (record,) = [r for r in caplog.records if "unknown profile" in r.getMessage()]
    assert len(record.getMessage()) < 300 and "\x1b" not in record.getMessage()


def test_all_local_is_the_local_signer_and_needs_the_ca(pki: PKI) -> None:
    signer = signer_from_inputs(None, str(pki.ca.cert), str(pki.ca.key), "")
    assert isinstance(signer, LocalSigner)
    err = error_of(lambda: signer_from_inputs(None, "", "", ""))
    assert (err.code, err.message) == (2000, "Unknown private key error")


def test_all_remote_needs_no_ca(pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        signer = signer_from_inputs(remote_config(fake.address), "", "", "")
        assert isinstance(signer, RemoteSigner)
        signer.sign(SignRequest(request=new_csr()))
    assert len(fake.seen) == 1


def test_remote_flag_overrides_every_profile(pki: PKI, tmp_path: Path) -> None:
    with FakeCfssl(pki.signer, auth_key=KEY).running() as fake:
        signer = signer_from_inputs(mixed_config("http://127.0.0.1:1", auth=True), "", "", fake.address)
        assert isinstance(signer, RemoteSigner)
        signer.sign(SignRequest(request=new_csr(), profile="local"))
        signer.sign(SignRequest(request=new_csr(), profile="fwd"))  # keeps its auth_remote key
        signer.info("local")
    assert [s.path for s in fake.seen] == ["/api/v1/cfssl/sign", "/api/v1/cfssl/authsign", "/api/v1/cfssl/info"]
    assert fake.seen[0].json["profile"] == "local"


def test_override_remote_leaves_the_config_alone() -> None:
    cfg = mixed_config("http://a:1")
    copy = override_remote(cfg.signing, "b")
    assert copy.profiles["local"].remote_server == copy.default.remote_server == "b"
    assert cfg.signing.profiles["local"].remote_server == "" and cfg.signing.profiles["fwd"].remote_server == "http://a:1"


def test_remote_info_round_trip(pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        info = RemoteSigner(remote_config(fake.address).signing).info()
    assert isinstance(info, SignerInfo) and info.to_json() == pki.signer.info().to_json()


def test_needs_local_signer() -> None:
    assert needs_local_signer(Config.default().signing)
    assert not needs_local_signer(Config.default().signing, "ca.example")
    assert not needs_local_signer(remote_config("ca.example").signing)
    assert needs_local_signer(mixed_config("ca.example").signing)
