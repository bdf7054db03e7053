"""Scripted offline CA ceremonies: a declared plan of steps, run once, recorded in a hash-chained transcript.

A **plan** is a JSON document ``{"description": "...", "steps": [...]}``; each step has an ``action``, an
optional ``name``/``comment``, and the inputs, parameters and outputs of that action (paths are relative to
the plan's directory):

=================  =====================================================  ===================================
action             inputs and parameters                                   outputs
=================  =====================================================  ===================================
generate-key       ``key`` (a ``pkcs11:`` URI naming the new key pair's    ``pubkey`` (public key PEM); a
                   label, or a key file to create), ``algo``, ``size``,    ``key`` file is an output (0600)
                   ``id`` (hex CKA_ID, token keys only)
generate-csr       ``csr`` (cfssl CSR JSON), ``key`` (URI or file)         ``csr_pem`` (PEM CSR)
self-sign          ``csr`` (cfssl CSR JSON), ``key``, ``config``,          ``cert``
                   ``profile`` (a CA profile; default: cfssl's CA policy)
sign               ``ca``, ``ca_key``, ``csr`` (PEM), ``config``,          ``cert``
                   ``profile``
ocsp-responder     as sign; ``config`` and ``profile`` are required and    ``cert``
                   the profile must have the ``ocsp signing`` usage
crl                ``ca``, ``ca_key``, ``serials`` (gencrl's serial        ``crl`` (PEM)
                   list; default none), ``expiry`` (Go duration, 168h)
=================  =====================================================  ===================================

The whole plan is checked before anything happens (:meth:`Plan.check`): unknown actions and fields, missing
inputs that no earlier step produces, outputs that already exist (nothing is ever overwritten), an output
named twice, signing configurations and profiles, CSR JSON and serial lists that already exist.

A run (:func:`run`) writes each step's outputs atomically (key files 0600) and then the **transcript**, also
atomically, so a crash leaves a valid transcript of the steps done. The transcript is
``{"format": ..., "entries": [...]}``: entry 0 is the header (tool version, plan path and SHA-256, planned
step count, start time, host name), then one entry per step (action, parameters, inputs and outputs as
``{field, path, sha256}``, time). Every entry carries ``seq``, ``prev`` (the previous entry's ``hash``; ""
for the header) and ``hash`` = SHA-256 of the entry's canonical JSON without ``hash`` (keys sorted, no
whitespace, UTF-8). Paths are recorded relative to the transcript's directory, so a ceremony directory can
be archived and verified elsewhere. PINs never appear: ``pin-value`` attributes are removed from URIs.

The chain protects against editing, removing and reordering entries, not against rewriting the whole file:
write the final hash (printed at the end of a run) on the paper ceremony record. :func:`verify` recomputes
the chain and re-hashes every input and output still present.

The package, by job: :mod:`~cfsslpy.ceremony.steps` (the actions and one step of a plan, parsed),
:mod:`~cfsslpy.ceremony.validation` (a step against the files that exist before it runs),
:mod:`~cfsslpy.ceremony.plan` (the plan document, checked as a whole and described),
:mod:`~cfsslpy.ceremony.actions` (what each action does), :mod:`~cfsslpy.ceremony.transcript` (the
hash-chained record), :mod:`~cfsslpy.ceremony.runner` (running a plan) and
:mod:`~cfsslpy.ceremony.verification` (checking a transcript).
"""

from __future__ import annotations

from cfsslpy.ceremony import runner
from cfsslpy.ceremony.plan import Plan, step_view
from cfsslpy.ceremony.runner import Confirm as Confirm
from cfsslpy.ceremony.runner import RunResult, run
from cfsslpy.ceremony.steps import ACTIONS, Step, redact_uri
from cfsslpy.ceremony.steps import DEFAULT_CRL_EXPIRY as DEFAULT_CRL_EXPIRY
from cfsslpy.ceremony.steps import plan_error as plan_error
from cfsslpy.ceremony.transcript import FORMAT, Transcript, canonical_json, default_transcript, entry_hash
from cfsslpy.ceremony.transcript import sha256_file as sha256_file
from cfsslpy.ceremony.verification import FileCheck, VerifyReport, verify

# The single module's private name that tests/test_ceremony.py reaches for (all-or-none output writing).
_write_outputs = runner.write_outputs

__all__ = [
    "ACTIONS",
    "FORMAT",
    "FileCheck",
    "Plan",
    "RunResult",
    "Step",
    "Transcript",
    "VerifyReport",
    "canonical_json",
    "default_transcript",
    "entry_hash",
    "redact_uri",
    "run",
    "step_view",
    "verify",
]
