"""The local signer: one issuer, one signing policy, and ``sign_csr`` running the steps of reference §3.8."""

from __future__ import annotations

import datetime as dt
import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.config import Signing, SigningProfile
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.keys import public_key_matches
from cfsslpy.pem import parse_csr_pem
from cfsslpy.signer import extensions, steps
from cfsslpy.signer.constraints import check_name_constraints
from cfsslpy.signer.interface import Recorder, SignerInfo
from cfsslpy.signer.issuer import Issuer
from cfsslpy.signer.request import SignRequest
from cfsslpy.signer.validity import validity_period, within_issuer

log = logging.getLogger("cfsslpy.signer")  # one logger for the package, as when it was one module


class LocalSigner:
    """Signs CSRs with one issuer under one signing policy."""

    def __init__(self, issuer: Issuer, policy: Signing, *, recorder: Recorder | None = None) -> None:
        self.issuer = issuer
        self.policy = policy
        self.recorder = recorder

    @property
    def certificate(self) -> x509.Certificate | None:
        return self.issuer.cert

    def profile(self, name: str) -> SigningProfile:
        return self.policy.profile(name)

    def info(self, profile_name: str = "", label: str = "") -> SignerInfo:
        """cfssl's ``info``: the CA certificate and the profile's usages and expiry string."""
        if self.issuer.cert is None:
            raise CfsslError(Category.PRIVATE_KEY, Reason.UNKNOWN)
        profile = self.policy.profile(profile_name)
        from cfsslpy.golang.json import format_duration

        expiry = profile.expiry_string or format_duration(profile.expiry)
        return SignerInfo(certificate=self.issuer.cert, usages=list(profile.usages), expiry=expiry)

    def sign(self, req: SignRequest, *, now: dt.datetime | None = None) -> x509.Certificate:
        profile = self.policy.profile(req.profile)
        if profile.is_remote:
            raise CfsslError(
                Category.POLICY,
                Reason.INVALID_POLICY,
                f"profile {req.profile or 'default'!r} is a remote profile: pass -remote or use serve",
            )
        csr = parse_csr_pem(req.request)
        cert = self.sign_csr(csr, req, profile, now=now)
        if self.recorder is not None:
            self.recorder(cert, req)
        return cert

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        req: SignRequest,
        profile: SigningProfile,
        *,
        now: dt.datetime | None = None,
        exact_subject: x509.Name | None = None,
    ) -> x509.Certificate:
        """Build and sign the certificate for a parsed CSR (reference §3.8 steps 2-14), one named step each.

        ``now`` fixes the clock (tests); ``exact_subject`` replaces the re-encoded subject with these exact
        bytes (renewing a CA must keep its subject byte for byte, or the certificates it issued stop chaining).
        """
        # 1. (after the decoding done by sign) a valid CA, and a subject key we accept
        public_key = steps.check_request_key(self.issuer, csr, now)
        # 2. template from the CSR
        template = steps.template_from_csr(csr, profile)
        # 3. CSR whitelist
        if profile.csr_whitelist is not None:
            steps.apply_csr_whitelist(template, profile.csr_whitelist)
        # 4. crl_override: see crl_distribution_points (step 11), where it wins over the profile
        # 5. CA requests
        issued_pathlen = steps.check_ca_request(template, profile, self.issuer)
        # 6. host override, 7. subject override
        steps.apply_request_overrides(template, req)
        # 8. name whitelist
        if profile.name_whitelist is not None:
            steps.check_name_whitelist(profile.name_whitelist, template.subject, template.sans)
        # 9. serial
        serial = steps.choose_serial(profile, req)
        # 10. request extensions
        request_exts = steps.request_extensions(req, profile, template.carried)

        # 11. fill
        is_ca = profile.ca_constraint.is_ca
        sans = steps.final_sans(template.subject, template.sans, is_ca=is_ca)
        key_usage, ekus = extensions.certificate_usages(profile, public_key, is_ca)
        not_before, not_after = validity_period(profile, self.policy.default, req, now)
        if self.issuer.cert is not None:
            not_after = within_issuer(self.issuer.cert, not_before, not_after)
        check_name_constraints(self.issuer.name_constraints, template.subject, sans)
        name = steps.certificate_subject(template.subject, exact_subject, is_ca=is_ca)
        issuer_name = self.issuer.subject if self.issuer.subject is not None else name
        if self.issuer.cert is None and not public_key_matches(self.issuer.key, public_key):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
        )
        default = self.policy.default
        built_in = [
            *extensions.usage_extensions(key_usage, ekus, is_ca=is_ca, path_length=issued_pathlen),
            *extensions.key_identifier_extensions(self.issuer, name, public_key, is_ca=is_ca),
            *extensions.authority_info_access(profile, default),
            *extensions.subject_alt_name(sans, name),
            *extensions.name_constraints_extension(profile, template.name_constraints, is_ca=is_ca),
            *extensions.crl_distribution_points(req, profile, default),
        ]
        builder = extensions.add_extensions(builder, built_in, [*template.carried, *request_exts], extensions.trailing_extensions(profile))
        # 12. CT
        if profile.ct_log_servers:
            builder = self._add_scts(builder, profile.ct_log_servers)

        # 14. sign (13, zlint, is not done)
        try:
            return builder.sign(self.issuer.key, self.issuer.hash_algorithm)
        except ValueError as exc:
            raise CfsslError(Category.CERTIFICATE, Reason.NONE, str(exc)) from exc

    def _add_scts(self, builder: x509.CertificateBuilder, servers: list[str]) -> x509.CertificateBuilder:
        """Sign a poisoned precertificate, submit ``[precert, issuer]`` to every log, embed the SCT list.

        The precertificate is the final certificate (same serial, validity, extensions) plus the critical CT
        poison; any failed submission fails the signing with 10100 (see :mod:`cfsslpy.ct`).
        """
        from cfsslpy.ct import sct_list_extension, submit_precert

        if self.issuer.cert is None:
            raise CfsslError(
                Category.CT, Reason.PRECERT_SUBMISSION_FAILED, "ct_log_servers needs an issuing CA certificate (not a self-signed one)"
            )
        try:
            precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(self.issuer.key, self.issuer.hash_algorithm)
        except ValueError as exc:
            raise CfsslError(Category.CERTIFICATE, Reason.NONE, str(exc)) from exc
        chain = [precert.public_bytes(serialization.Encoding.DER), self.issuer.cert.public_bytes(serialization.Encoding.DER)]
        scts = []
        for server in servers:
            log.info("submitting poisoned precertificate to %s", server)
            scts.append(submit_precert(server, chain))
        return builder.add_extension(sct_list_extension(scts), critical=False)
