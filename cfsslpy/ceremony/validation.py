"""Checks of a ceremony step against the files that exist before it runs: configs, profiles, CSR JSON, serials."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from cfsslpy.ceremony.steps import Step, plan_error
from cfsslpy.errors import CfsslError, Error
from cfsslpy.inputs import read_path

log = logging.getLogger(__name__)


def check_contents(step: Step, produced: Mapping[str, int]) -> None:
    """Content checks of the inputs that exist before the ceremony (configs, CSR JSON, serial lists)."""

    def existing(name: str) -> bytes | None:
        path = step.inputs.get(name)
        if path is None or path in produced:
            return None
        return read_path(path)

    try:
        config_data = existing("config")
        if config_data is not None:
            from cfsslpy.config import Config

            config = Config.from_json_bytes(config_data)
            select_profile(step, config)
        if step.action in ("self-sign", "generate-csr"):
            csr_data = existing("csr")
            if csr_data is not None:
                from cfsslpy.csr import CertificateRequest

                req = CertificateRequest.from_json_bytes(csr_data)
                if step.action == "self-sign":
                    req.validate_initca()
        serials = existing("serials")
        if serials is not None:
            from cfsslpy.crl import parse_serial_list

            parse_serial_list(serials, dt.datetime.now(dt.timezone.utc))
    except Error as exc:
        if isinstance(exc, CfsslError) and exc.message.startswith(step.label):
            raise
        raise plan_error(f"{step.label}: {exc.message}") from None


def select_profile(step: Step, config: Any) -> Any:
    """The step's signing profile; an unknown name is an error here (a ceremony never falls back)."""
    from cfsslpy.config import EXT_KEY_USAGES

    name = step.params.get("profile", "")
    signing = config.signing
    if name and name not in signing.profiles:
        raise plan_error(f"{step.label}: unknown profile {name!r} in {step.inputs['config']}")
    profile = signing.profiles[name] if name else signing.default
    if profile.is_remote:
        raise plan_error(f"{step.label}: profile {name or 'default'!r} is a remote profile; a ceremony signs locally")
    if step.action == "self-sign" and not profile.ca_constraint.is_ca:
        raise plan_error(f"{step.label}: profile {name or 'default'!r} is not a CA profile (ca_constraint.is_ca)")
    if step.action == "ocsp-responder":
        _, ekus, _ = profile.key_usages()
        if EXT_KEY_USAGES["ocsp signing"] not in ekus:
            raise plan_error(f"{step.label}: profile {name!r} has no 'ocsp signing' usage: it cannot issue an OCSP responder certificate")
        if profile.ca_constraint.is_ca:
            raise plan_error(f"{step.label}: profile {name!r} is a CA profile: an OCSP responder certificate is not a CA")
        if not profile.ocsp_no_check:
            log.warning("%s: profile %r has no ocsp_no_check: relying parties may check the responder's own status", step.label, name)
    return profile
