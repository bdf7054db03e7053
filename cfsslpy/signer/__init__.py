"""The local signer: a CSR and a profile in, an X.509 certificate out (reference §3.8, §7, §8).

Security-relevant behaviour, in cfssl's order:

* the CSR's signature is checked; RSA keys under 2048 bits and unsupported curves are refused (9300);
* a CSR asking to be a CA needs a CA profile, and a strictly smaller pathlen than a pathlen-limited issuer
  (5300); the *issued* pathlen comes from the profile and must also fit under the issuer's;
* ``-hostname`` / ``hosts`` replace the CSR's SANs; the subject override merges per attribute type;
* ``name_whitelist`` (unanchored search) covers the CN and every SAN: DNS, email, URI and IP address, an
  IP in its text form (``10.0.0.1``, ``2001:db8::1``) (5500; cfssl does not check IP SANs); an issuer with
  X.509 name constraints (our addition) must permit every name it signs (5300);
* validity: round(now, 1 min) - backdate (5 min default) + expiry, unless the profile or the request fix it;
  a notAfter later than the CA certificate's is cut to the CA's, with a WARNING (cfssl issues it as asked);
* serial: 20 CSPRNG bytes with the top bit cleared (positive, at most 159 bits);
* extensions in Go's order: KU (critical), EKU, basicConstraints (critical, always), SKI, AKI (not on
  self-signed CAs; Go also drops it on self-signed leaves and on any certificate whose issuer name equals its
  subject name), AIA (OCSP, caIssuers), SAN (critical iff the subject is empty), name constraints, CRL DP,
  then copied CSR extensions, request extensions, certificate policies, OCSP no-check;
* key usages RFC 5280/8813 forbid for the subject key (key encipherment on EC/Ed25519 keys, cert sign on a
  non-CA...) are left out with a WARNING (cfssl includes them);
* ``copy_extensions`` never lets a CSR set a CA-managed extension (KU, EKU, basicConstraints, key IDs, AIA,
  CRL DP, policies, name constraints, OCSP no-check, SAN): those stay the profile's.

The issuer is checked when the signer is built: the key must match the certificate (2300) and the
certificate must be allowed to sign certificates (5300). cfssl checks neither. When it signs, the CA
certificate must be valid at that moment: an expired or not yet valid CA is refused with 1211 (the code cfssl
gives an expired certificate in a chain); cfssl signs with it.

One module per job; this package re-exports the names its users import:

* :mod:`~cfsslpy.signer.request`: the sign request document (``SignRequest``, its subject override and extensions);
* :mod:`~cfsslpy.signer.issuer`: the issuer (CA certificate and key) and ``load_issuer``;
* :mod:`~cfsslpy.signer.steps`: the numbered steps of §3.8 that shape the template (1-10, and step 11's names);
* :mod:`~cfsslpy.signer.extensions`: step 11's extensions, in Go's order;
* :mod:`~cfsslpy.signer.validity`: notBefore / notAfter;
* :mod:`~cfsslpy.signer.constraints`: the issuer's name constraints;
* :mod:`~cfsslpy.signer.interface`: the ``Signer`` protocol, ``SignerInfo`` and ``issue``;
* :mod:`~cfsslpy.signer.local`: ``LocalSigner``, which runs the steps.
"""

from __future__ import annotations

from cfsslpy.signer.constraints import check_name_constraints, subject_emails
from cfsslpy.signer.extensions import (
    CA_MANAGED,
    OID_OCSP_NO_CHECK,
    GeneratedExtension,
    add_extensions,
    authority_info_access,
    certificate_usages,
    crl_distribution_points,
    key_identifier_extensions,
    name_constraints_extension,
    subject_alt_name,
    trailing_extensions,
    usage_extensions,
)
from cfsslpy.signer.interface import NO_HOSTS_WARNING, Recorder, Signer, SignerInfo, certificate_pem, issue
from cfsslpy.signer.issuer import Issuer, load_issuer
from cfsslpy.signer.local import LocalSigner
from cfsslpy.signer.request import RequestExtension, SignRequest, SubjectOverride
from cfsslpy.signer.steps import (
    Template,
    apply_csr_whitelist,
    apply_request_overrides,
    certificate_subject,
    check_ca_request,
    check_name_whitelist,
    check_request_key,
    choose_serial,
    final_sans,
    new_serial,
    request_extensions,
    template_from_csr,
)
from cfsslpy.signer.validity import X509_EARLIEST, X509_LATEST, round_minute, validity_period, within_issuer

__all__ = [
    "CA_MANAGED",
    "GeneratedExtension",
    "Issuer",
    "LocalSigner",
    "NO_HOSTS_WARNING",
    "OID_OCSP_NO_CHECK",
    "Recorder",
    "RequestExtension",
    "SignRequest",
    "Signer",
    "SignerInfo",
    "SubjectOverride",
    "Template",
    "X509_EARLIEST",
    "X509_LATEST",
    "add_extensions",
    "apply_csr_whitelist",
    "apply_request_overrides",
    "authority_info_access",
    "certificate_pem",
    "certificate_subject",
    "certificate_usages",
    "check_ca_request",
    "check_name_constraints",
    "check_name_whitelist",
    "check_request_key",
    "choose_serial",
    "crl_distribution_points",
    "final_sans",
    "issue",
    "key_identifier_extensions",
    "load_issuer",
    "name_constraints_extension",
    "new_serial",
    "request_extensions",
    "round_minute",
    "subject_alt_name",
    "subject_emails",
    "template_from_csr",
    "trailing_extensions",
    "usage_extensions",
    "validity_period",
    "within_issuer",
]
