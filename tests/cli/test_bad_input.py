"""Bad input through the CLI: cfssl's exact error code (or plain message), exit status, and no side effects.

Every row was run against the real cfssl (the 2016 build at /usr/bin/cfssl) while the table was written.
Rows without ``cfssl=`` behave identically there (``tests/integration/test_cli_interop.py`` re-checks them);
rows with ``cfssl=`` describe what cfssl does instead and why we differ. Rows with ``xfail=`` name a bug in
a file owned elsewhere; they assert the cfssl-compatible outcome and fail until that bug is fixed.

For every row: the exit status, the code/message on stderr's last line (first line for usage errors), no
traceback, nothing on stdout, and no file created, changed or removed in the working directory.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cfsslpy.cli.context import IO
from cfsslpy.cli.main import main
from cfsslpy.golang.json import go_json_dumps
from cfsslpy.inputs import Stdin
from tests.conftest import RunCli

# ---------------------------------------------------------------------------------------------------------
# Material: a CA, a leaf CSR and damaged variants, built once per module with our own CLI.


def _cli(cwd: Path, *args: str) -> dict[str, str]:
    import io as _io

    out, err = _io.StringIO(), _io.StringIO()
    status = main([*args], IO(stdin=Stdin(_io.BytesIO(b"")), stdout=out, stderr=err, environ={}), prog="cfsslpy")
    assert status == 0, err.getvalue()
    data: dict[str, str] = json.loads(out.getvalue())
    return data


def _pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


def _der(pem: bytes) -> bytes:
    match = re.search(rb"-----BEGIN [^-]+-----\n(.*?)-----END", pem, re.S)
    assert match is not None
    return base64.b64decode(match.group(1))


def build_materials(directory: Path) -> dict[str, bytes]:
    """The shared input files (name -> bytes). The CA is ECDSA P-256, which the 2016 cfssl also handles."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "spec.json"

    def run(obj: dict[str, object], *args: str) -> dict[str, str]:
        spec.write_text(json.dumps(obj))
        return _cli(directory, *args, str(spec))

    ca = run({"CN": "Bad Input Test CA", "names": [{"C": "US", "O": "cfsslpy"}]}, "gencert", "-initca")
    leaf = run({"CN": "leaf", "hosts": ["leaf.example.com"]}, "genkey")
    subca = run({"CN": "sub CA", "ca": {"pathlen": 0, "pathlenzero": True}}, "gencert", "-initca")  # its CSR asks for CA:TRUE
    (directory / "ca.pem").write_text(ca["cert"])
    (directory / "ca-key.pem").write_text(ca["key"])
    leafcert = _cli(
        directory,
        "gencert",
        "-ca",
        str(directory / "ca.pem"),
        "-ca-key",
        str(directory / "ca-key.pem"),
        _write(directory / "l.json", {"CN": "leaf cert", "hosts": ["leaf.example.com"]}),
    )
    spec.unlink()
    ca_der, csr_der, key_der = _der(ca["cert"].encode()), _der(leaf["csr"].encode()), _der(ca["key"].encode())
    bad_sig = bytearray(csr_der)
    bad_sig[-1] ^= 0x01
    ca_key = serialization.load_pem_private_key(ca["key"].encode(), None)
    encrypted = ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"secret")
    )
    k1 = ec.generate_private_key(ec.SECP256K1())
    weak = rsa.generate_private_key(65537, 1024)
    pkcs8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    materials: dict[str, bytes] = {
        "secp256k1-key.pem": k1.private_bytes(*pkcs8),
        "rsa1024-key.pem": weak.private_bytes(*pkcs8),
        "ca.pem": ca["cert"].encode(),
        "ca-key.pem": ca["key"].encode(),
        "ca.der": ca_der,
        "two-certs.pem": (ca["cert"] * 2).encode(),
        "enc-ca-key.pem": encrypted,
        "leaf.csr": leaf["csr"].encode(),
        "leaf-key.pem": leaf["key"].encode(),
        "leaf.json": json.dumps({"CN": "leaf", "hosts": ["leaf.example.com"]}).encode(),
        "leafcert.pem": leafcert["cert"].encode(),
        "leafcert-key.pem": leafcert["key"].encode(),
        "subca.csr": subca["csr"].encode(),
        "ca-csr.json": json.dumps({"CN": "Another CA"}).encode(),
        "trunc-ca.pem": _pem("CERTIFICATE", ca_der[: len(ca_der) // 2]),
        "trunc.csr": _pem("CERTIFICATE REQUEST", csr_der[: len(csr_der) // 2]),
        "trunc-ca-key.pem": _pem("EC PRIVATE KEY", key_der[: len(key_der) // 2]),
        "garbage.csr": _pem("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x00garbage"),
        "badsig.csr": _pem("CERTIFICATE REQUEST", bytes(bad_sig)),
        "nopem.csr": leaf["csr"].encode()[:200],  # the BEGIN line without its END: no PEM block at all
        "empty": b"",
    }
    for path in directory.iterdir():
        path.unlink()
    return materials


def _write(path: Path, obj: dict[str, object]) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


# ---------------------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int | None = None  # cfssl JSON error code on stderr's last line; None: a plain-text error
    message: str | None = None  # the exact JSON message, or the exact plain line
    status: int = 1
    files: dict[str, bytes] = field(default_factory=dict)  # case-specific inputs, next to the materials
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    cfssl: str | None = None  # None: the real cfssl gives the same status and code/message
    xfail: str | None = None  # a bug in a file owned elsewhere (cfssl-compatible outcome asserted)

    @property
    def usage(self) -> bool:
        return self.status == 2


S = ("sign", "-ca", "ca.pem", "-ca-key", "ca-key.pem")
G = ("gencert", "-ca", "ca.pem", "-ca-key", "ca-key.pem")


def j(obj: object) -> bytes:
    return json.dumps(obj).encode()


def cfg(default: dict[str, object] | None = None, **extra: object) -> bytes:
    doc: dict[str, object] = {"signing": {"default": default if default is not None else {"expiry": "1h", "usages": ["signing"]}}}
    doc.update(extra)
    return j(doc)


def loaded(code: int, message: str) -> str:
    """cfssl's wording for a config that fails to load (cfssl prints it without the final newline)."""
    return "Failed to load config file: " + go_json_dumps({"code": code, "message": message})


DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

CASES: list[Case] = [
    # -- found in review: both used to end in "internal error" ------------------------------------------
    Case(
        "csr-json-extension-value-does-not-parse",
        ("gencert", "-initca", "bad.json"),
        code=9300,
        files={"bad.json": j({"CN": "x", "extensions": [{"id": [2, 5, 29, 17], "value": "AAAA"}]})},
        cfssl="newest cfssl copies the bytes into the CSR unchecked (2016 has no extensions)",
    ),
    Case(
        "backdate-before-1950",
        (*G, "-config", "c.json", "leaf.json"),
        code=5200,
        files={"c.json": cfg({"expiry": "1h", "backdate": "2562047h", "usages": ["signing"]}), "leaf.json": j({"CN": "y"})},
        cfssl="Go encodes the 1734 date; we refuse a window X.509 cannot encode",
    ),
    # -- malformed JSON: CSR JSON, config, subject file ------------------------------------------------
    Case("csr-json-truncated", (*G, "bad.json"), message="unexpected end of JSON input", files={"bad.json": b'{"CN":'}),
    Case(
        "csr-json-bad-character",
        (*G, "bad.json"),
        message="invalid character 'x' looking for beginning of value",
        files={"bad.json": b'{"CN": x}'},
    ),
    Case(
        "csr-json-trailing-comma",
        ("genkey", "bad.json"),
        message="invalid character '}' looking for beginning of object key string",
        files={"bad.json": b'{"CN":"x",}'},
    ),
    Case(
        "csr-json-byte-order-mark",
        ("genkey", "bad.json"),
        message="invalid character 'ï' looking for beginning of value",
        files={"bad.json": b"\xef\xbb\xbf{}"},
    ),
    Case(
        "csr-json-array",
        ("genkey", "bad.json"),
        message="json: cannot unmarshal array into Go value of type csr.CertificateRequest",
        files={"bad.json": b"[]"},
    ),
    Case(
        "csr-json-cn-number",
        ("genkey", "bad.json"),
        message="json: cannot unmarshal number into Go struct field CertificateRequest.CN of type string",
        files={"bad.json": b'{"CN":5}'},
    ),
    Case(
        "csr-json-hosts-string",
        (*G, "bad.json"),
        message="json: cannot unmarshal string into Go struct field CertificateRequest.hosts of type []string",
        files={"bad.json": b'{"CN":"x","hosts":"a.example"}'},
    ),
    Case(
        "selfsign-json-truncated",
        ("selfsign", "x.example", "bad.json"),
        message="unexpected end of JSON input",
        files={"bad.json": b'{"CN":'},
    ),
    Case(
        "config-truncated",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "failed to unmarshal configuration: unexpected end of JSON input"),
        files={"c.json": b'{"signing":'},
    ),
    Case(
        "config-not-an-object",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "failed to unmarshal configuration: json: cannot unmarshal array into Go value of type config.Config"),
        files={"c.json": b"[]"},
    ),
    Case(
        "config-profiles-array",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(
            5200,
            "failed to unmarshal configuration: json: cannot unmarshal array into Go struct field Signing.signing.profiles of type map[string]*config.SigningProfile",
        ),
        files={"c.json": b'{"signing":{"profiles":[]}}'},
    ),
    Case(
        "config-usages-string",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(
            5200,
            "failed to unmarshal configuration: json: cannot unmarshal string into Go struct field SigningProfile.signing.profiles.usages of type []string",
        ),
        files={"c.json": b'{"signing":{"profiles":{"p":{"expiry":"1h","usages":"signing"}}}}'},
    ),
    Case(
        "subject-truncated", (*S, "leaf.csr", "subject.json"), message="unexpected end of JSON input", files={"subject.json": b'{"CN":"x",'}
    ),
    Case(
        "subject-array",
        (*S, "leaf.csr", "subject.json"),
        message="json: cannot unmarshal array into Go value of type signer.Subject",
        files={"subject.json": b"[]"},
    ),
    Case(
        "subject-cn-number",
        (*S, "leaf.csr", "subject.json"),
        message="json: cannot unmarshal number into Go struct field Subject.CN of type string",
        files={"subject.json": b'{"CN":5}'},
    ),
    # -- deep nesting (issue 10): refused before Python's recursive decoder sees it, in Go's words -----------
    Case("csr-json-nested-arrays", (*G, "deep.json"), message="invalid character '[' exceeded max depth", files={"deep.json": DEEP_ARRAYS}),
    Case(
        "csr-json-nested-objects",
        ("genkey", "deep.json"),
        message="invalid character '{' exceeded max depth",
        files={"deep.json": DEEP_OBJECTS},
    ),
    Case("csr-json-nested-on-stdin", ("gencert", "-initca", "-"), message="invalid character '[' exceeded max depth", stdin=DEEP_ARRAYS),
    Case(
        "selfsign-json-nested",
        ("selfsign", "x.example", "deep.json"),
        message="invalid character '[' exceeded max depth",
        files={"deep.json": DEEP_ARRAYS},
    ),
    Case(
        "csr-json-nested-600",
        ("gencert", "-initca", "deep.json"),
        message="invalid character '[' exceeded max depth",
        files={"deep.json": b'{"CN":"x","names":[' + b"[" * 600 + b"]" * 600 + b"]}"},
        cfssl="Go's limit is 10000 levels: json: cannot unmarshal array into Go struct field CertificateRequest.names of type csr.Name",
    ),
    Case(
        "config-nested",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "failed to unmarshal configuration: invalid character '{' exceeded max depth"),
        files={"c.json": DEEP_OBJECTS},
    ),
    Case(
        "subject-nested",
        (*S, "leaf.csr", "subject.json"),
        message="invalid character '[' exceeded max depth",
        files={"subject.json": DEEP_ARRAYS},
    ),
    # -- wrong PEM types ------------------------------------------------------------------------------------
    Case("key-given-as-ca", ("sign", "-ca", "ca-key.pem", "-ca-key", "ca-key.pem", "leaf.csr"), 1003, "Failed to parse certificate"),
    Case("csr-given-as-ca", ("sign", "-ca", "leaf.csr", "-ca-key", "ca-key.pem", "leaf.csr"), 1003, "Failed to parse certificate"),
    Case(
        "two-certificates-as-ca",
        ("sign", "-ca", "two-certs.pem", "-ca-key", "ca-key.pem", "leaf.csr"),
        1003,
        "the PEM file should contain only one object",
    ),
    Case("der-ca", ("sign", "-ca", "ca.der", "-ca-key", "ca-key.pem", "leaf.csr"), 1002, "Failed to decode certificate"),
    # cfssl: 9300 "not a certificate or csr" (2016 wording); newest says "not a csr" like us
    Case("cert-given-as-csr", (*S, "ca.pem"), 9300, "not a csr"),
    Case("key-given-as-csr", (*S, "leaf-key.pem"), 9300, "not a csr"),
    Case(
        "csr-given-as-ca-key",
        ("sign", "-ca", "ca.pem", "-ca-key", "leaf.csr", "leaf.csr"),
        2003,
        "Failed to parse private key",
    ),
    # cfssl: 2003 "Failed to parse private key" (its DER parser knows no other key types)
    Case(
        "unsupported-curve-ca-key",
        ("sign", "-ca", "ca.pem", "-ca-key", "secp256k1-key.pem", "leaf.csr"),
        2200,
        "Private key algorithm is not RSA or ECC or Ed25519",
        cfssl="2003",
    ),
    # cfssl: signs with SHA1WithRSA when the pair matches (here: 1000, the key does not match the CA)
    Case(
        "weak-rsa-ca-key",
        ("sign", "-ca", "ca.pem", "-ca-key", "rsa1024-key.pem", "leaf.csr"),
        2200,
        "RSA signing key of 1024 bits is too weak",
        cfssl="1000 / SHA-1 signature",
    ),
    Case("cert-given-as-ca-key", ("sign", "-ca", "ca.pem", "-ca-key", "ca.pem", "leaf.csr"), 2003, "Failed to parse private key"),
    # -- truncated DER inside PEM ---------------------------------------------------------------------------
    Case("truncated-ca", ("sign", "-ca", "trunc-ca.pem", "-ca-key", "ca-key.pem", "leaf.csr"), 1003, "Failed to parse certificate"),
    Case("truncated-csr", (*S, "trunc.csr"), 9003),  # cfssl: the message is Go's asn1 error text
    Case("truncated-ca-key", ("sign", "-ca", "ca.pem", "-ca-key", "trunc-ca-key.pem", "leaf.csr"), 2003, "Failed to parse private key"),
    # -- empty files ---------------------------------------------------------------------------------------
    Case("empty-csr", (*S, "empty"), 9002, "CSR Decode failed"),
    Case("empty-ca", ("sign", "-ca", "empty", "-ca-key", "ca-key.pem", "leaf.csr"), 1002, "Failed to decode certificate"),
    Case("empty-ca-key", ("sign", "-ca", "ca.pem", "-ca-key", "empty", "leaf.csr"), 2002, "Failed to decode private key"),
    Case(
        "empty-config",
        (*S, "-config", "empty", "leaf.csr"),
        message=loaded(5200, "failed to unmarshal configuration: unexpected end of JSON input"),
    ),
    Case("empty-csr-json", (*G, "empty"), message="unexpected end of JSON input"),
    Case("empty-subject", (*S, "leaf.csr", "empty"), message="unexpected end of JSON input"),
    # -- weak or unknown keys ------------------------------------------------------------------------------
    Case("rsa-1024", (*G, "k.json"), 2400, "RSA key is too weak", files={"k.json": j({"CN": "x", "key": {"algo": "rsa", "size": 1024}})}),
    Case(
        "rsa-16384", (*G, "k.json"), 2400, "RSA key size too large", files={"k.json": j({"CN": "x", "key": {"algo": "rsa", "size": 16384}})}
    ),
    Case("ecdsa-255", (*G, "k.json"), 2400, "invalid curve", files={"k.json": j({"CN": "x", "key": {"algo": "ecdsa", "size": 255}})}),
    Case("dsa", (*G, "k.json"), 2400, "invalid algorithm", files={"k.json": j({"CN": "x", "key": {"algo": "dsa", "size": 2048}})}),
    # the partial key object keeps the default size 256
    Case("rsa-without-size", (*G, "k.json"), 2400, "RSA key is too weak", files={"k.json": j({"CN": "x", "key": {"algo": "rsa"}})}),
    Case(
        "genkey-rsa-1024",
        ("genkey", "k.json"),
        2400,
        "RSA key is too weak",
        files={"k.json": j({"CN": "x", "key": {"algo": "rsa", "size": 1024}})},
    ),
    Case(
        "initca-rsa-1024",
        ("gencert", "-initca", "k.json"),
        2400,
        "RSA key is too weak",
        files={"k.json": j({"CN": "x", "key": {"algo": "rsa", "size": 1024}})},
    ),
    # -- invalid durations ----------------------------------------------------------------------------------
    Case(
        "expiry-1d",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, 'time: unknown unit "d" in duration "1d"'),
        files={"c.json": cfg({"expiry": "1d", "usages": ["signing"]})},
    ),
    Case(
        "expiry-empty",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "empty expiry string"),
        files={"c.json": cfg({"expiry": "", "usages": ["signing"]})},
    ),
    Case(
        "expiry-5x",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, 'time: unknown unit "x" in duration "5x"'),
        files={"c.json": cfg({"expiry": "5x", "usages": ["signing"]})},
    ),
    Case(
        "expiry-missing-unit",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, 'time: missing unit in duration "1h30"'),
        files={"c.json": cfg({"expiry": "1h30", "usages": ["signing"]})},
    ),
    Case(
        "backdate-invalid",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, 'time: invalid duration "x"'),
        files={"c.json": cfg({"expiry": "1h", "backdate": "x", "usages": ["signing"]})},
    ),
    Case(
        "ca-expiry-1d",
        ("gencert", "-initca", "k.json"),
        5200,
        'time: unknown unit "d" in duration "1d"',
        files={"k.json": j({"CN": "x", "ca": {"expiry": "1d"}})},
        cfssl="the same text as a plain (untyped) error; we type it as a policy error",
    ),
    # -- usages -------------------------------------------------------------------------------------------
    Case(
        "profile-with-only-unknown-usages",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "invalid configuration"),
        files={"c.json": j({"signing": {"default": {"expiry": "1h"}, "profiles": {"p": {"expiry": "1h", "usages": ["bogus"]}}}})},
    ),
    Case(
        "default-profile-without-usages",
        (*S, "-config", "c.json", "leaf.csr"),
        5100,
        "Invalid policy: no key usage available",
        files={"c.json": j({"signing": {"default": {"expiry": "1h"}}})},
    ),
    # -- flags ----------------------------------------------------------------------------------------------
    # cfssl: -renewca wins silently and fails with "open : no such file or directory"
    Case(
        "initca-with-renewca",
        ("gencert", "-initca", "-renewca", "ca-csr.json"),
        message="-initca and -renewca cannot be used together",
        status=2,
        cfssl="-renewca wins",
    ),
    Case("undefined-flag", ("sign", "-ca-k", "ca-key.pem", "leaf.csr"), message="flag provided but not defined: -ca-k", status=2),
    Case(
        "bad-boolean",
        ("genkey", "-initca=maybe", "ca-csr.json"),
        message='invalid boolean value "maybe" for -initca: parse error',
        status=2,
    ),
    Case("bad-integer", ("genkey", "-loglevel", "x", "ca-csr.json"), message='invalid value "x" for flag -loglevel: parse error', status=2),
    Case("flag-without-value", ("genkey", "-loglevel"), message="flag needs an argument: -loglevel", status=2),
    Case("top-level-flag", ("-loglevel", "0", "genkey", "ca-csr.json"), message="flag provided but not defined: -loglevel", status=2),
    # -- missing files --------------------------------------------------------------------------------------
    Case(
        "missing-ca",
        ("sign", "-ca", "missing.pem", "-ca-key", "ca-key.pem", "leaf.csr"),
        message="open missing.pem: no such file or directory",
    ),
    Case(
        "missing-ca-key",
        ("sign", "-ca", "ca.pem", "-ca-key", "missing.pem", "leaf.csr"),
        1001,
        "open missing.pem: no such file or directory",
    ),
    Case("missing-csr", (*S, "missing.csr"), message="open missing.csr: no such file or directory"),
    # cfssl: the same code, message "could not read configuration file" (the OS error is not shown)
    Case(
        "missing-config",
        (*S, "-config", "missing.json", "leaf.csr"),
        message=loaded(5200, "failed to read configuration file: open missing.json: no such file or directory"),
        cfssl='5200 "could not read configuration file"',
    ),
    Case("missing-csr-json", (*G, "missing.json"), message="open missing.json: no such file or directory"),
    Case("missing-subject", (*S, "leaf.csr", "missing.json"), message="open missing.json: no such file or directory"),
    Case("directory-as-ca", ("sign", "-ca", ".", "-ca-key", "ca-key.pem", "leaf.csr"), message="read .: is a directory"),
    # cfssl 2016 reads "foo:bar" as a file name; newest cfssl rejects the prefix like us
    Case(
        "unknown-input-prefix",
        ("sign", "-ca", "foo:bar", "-ca-key", "ca-key.pem", "leaf.csr"),
        message="unknown prefix: foo",
        cfssl="open foo:bar: no such file",
    ),
    Case(
        "unset-environment-variable",
        ("sign", "-ca", "env:CFSSLPY_NO_SUCH_VAR", "-ca-key", "ca-key.pem", "leaf.csr"),
        message="environment variable CFSSLPY_NO_SUCH_VAR is not set",
        cfssl="no env: prefix in 2016",
    ),
    # -- hosts -----------------------------------------------------------------------------------------------
    # cfssl: panics ("Unable to wrap a wrapped error.", exit 2) while generating the CSR
    Case(
        "non-ascii-host-in-csr-json",
        (*G, "h.json"),
        9300,
        "host 'bücher.example' is not ASCII: write internationalised names in their xn-- (punycode) form",
        files={"h.json": j({"CN": "x", "hosts": ["bücher.example"]})},
        cfssl="panic, exit 2",
    ),
    # cfssl: 1000 'x509: "bücher.example" cannot be encoded as an IA5String' when building the certificate
    Case(
        "non-ascii-hostname-flag",
        (*S, "-hostname", "bücher.example", "leaf.csr"),
        1300,
        "host 'bücher.example' is not ASCII: write internationalised names in their xn-- (punycode) form",
        cfssl="1000",
    ),
    # cfssl: signs a certificate with the DNS name "bad_host!.example"
    Case("invalid-dns-name", (*S, "-hostname", "bad_host!.example", "leaf.csr"), 1300, cfssl="exit 0"),
    # -- policy --------------------------------------------------------------------------------------------
    Case("csr-asks-to-be-a-ca-under-a-leaf-profile", (*S, "subca.csr"), 5300, "Policy violation request"),
    Case(
        "name-whitelist-mismatch",
        (*S, "-config", "c.json", "leaf.csr"),
        5500,
        "Request does not match policy whitelist",
        files={"c.json": cfg({"expiry": "1h", "usages": ["signing"], "name_whitelist": "^good\\.example$"})},
    ),
    # cfssl: the message is Go's "x509: ECDSA verification failure"
    Case("csr-bad-signature", (*S, "badsig.csr"), 9300),
    Case("csr-not-pem", (*S, "nopem.csr"), 9002, "CSR Decode failed"),
    Case("csr-garbage-der", (*S, "garbage.csr"), 9003),
    Case(
        "encrypted-ca-key-without-password",
        ("sign", "-ca", "ca.pem", "-ca-key", "enc-ca-key.pem", "leaf.csr"),
        2100,
        "Private key is encrypted.",
    ),
    # cfssl: plain "x509: decryption password incorrect"
    Case(
        "encrypted-ca-key-wrong-password",
        ("sign", "-ca", "ca.pem", "-ca-key", "enc-ca-key.pem", "leaf.csr"),
        2003,
        "failed to decrypt private key (wrong password?)",
        env={"CFSSL_CA_PK_PASSWORD": "wrong"},
        cfssl="plain x509 error",
    ),
    # cfssl: 1000 "x509: provided PrivateKey doesn't match parent's PublicKey", found only when signing
    Case(
        "mismatched-ca-cert-and-key",
        ("sign", "-ca", "ca.pem", "-ca-key", "leaf-key.pem", "leaf.csr"),
        2300,
        "Private key does not match public key",
        cfssl="1000",
    ),
    # cfssl: signs with the leaf certificate as issuer
    Case("leaf-certificate-as-ca", ("sign", "-ca", "leafcert.pem", "-ca-key", "leafcert-key.pem", "leaf.csr"), 5300, cfssl="exit 0"),
    Case(
        "renewca-mismatched-key",
        ("gencert", "-renewca", "-ca", "ca.pem", "-ca-key", "leaf-key.pem"),
        2300,
        "Private key does not match public key",
    ),
    # cfssl: the same text as a plain error
    Case(
        "renewca-of-a-leaf",
        ("gencert", "-renewca", "-ca", "leafcert.pem", "-ca-key", "leafcert-key.pem"),
        5300,
        "input certificate is not a CA cert",
        cfssl="plain text",
    ),
    Case(
        "initca-empty-subject",
        ("gencert", "-initca", "s.json"),
        5300,
        "missing subject information",
        files={"s.json": j({"names": [{"C": ""}]})},
    ),
    Case(
        "genkey-initca-empty-subject",
        ("genkey", "-initca", "s.json"),
        5300,
        "missing subject information",
        files={"s.json": j({"names": [{"C": ""}]})},
    ),
    # -- config sections -------------------------------------------------------------------------------------
    Case(
        "config-without-signing",
        (*S, "-config", "c.json", "leaf.csr"),
        message='Failed to load config file: No "signing" field present',
        files={"c.json": b'{"hello":1}'},
    ),
    Case(
        "policy-qualifier-bad-type",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "invalid policy qualifier type"),
        files={
            "c.json": cfg(
                {"expiry": "1h", "usages": ["signing"], "Policies": [{"ID": "1.2.3", "Qualifiers": [{"Type": "bad", "Value": "x"}]}]}
            )
        },
    ),
    Case(
        "auth-key-missing-from-auth-keys",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "failed to find auth_key in auth_keys section"),
        files={"c.json": cfg({"expiry": "1h", "usages": ["signing"], "auth_key": "nokey"}, auth_keys={})},
    ),
    Case(
        "auth-key-unknown-type",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "unknown authentication type"),
        files={"c.json": cfg({"expiry": "1h", "usages": ["signing"], "auth_key": "k"}, auth_keys={"k": {"type": "weird", "key": "00"}})},
    ),
    Case(
        "remote-missing-from-remotes",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "failed to find remote in remotes section"),
        files={"c.json": cfg({"remote": "nope"}, remotes={})},
    ),
    Case(
        "remote-and-auth-remote",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "Invalid or unknown policy"),
        files={
            "c.json": cfg(
                {"remote": "a", "auth_remote": {"remote": "a", "auth_key": "k"}},
                remotes={"a": "http://127.0.0.1:1"},
                auth_keys={"k": {"type": "standard", "key": "00"}},
            )
        },
    ),
    Case(
        "name-whitelist-not-a-regex",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "failed to compile name whitelist section"),
        files={"c.json": cfg({"expiry": "1h", "usages": ["signing"], "name_whitelist": "("})},
    ),
    # cfssl: signs, writing the UTF-8 bytes into an IA5String (invalid DER)
    Case(
        "non-ascii-ocsp-url",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "ocsp_url: 'http://ü.example' is not ASCII: write internationalised host names in their xn-- (punycode) form"),
        files={"c.json": cfg({"expiry": "1h", "usages": ["signing"], "ocsp_url": "http://ü.example"})},
        cfssl="exit 0, invalid DER",
    ),
    Case(
        "null-profile",
        (*S, "-config", "c.json", "leaf.csr"),
        message=loaded(5200, "can't parse nil profile"),
        files={"c.json": b'{"signing":{"profiles":{"p":null}}}'},
    ),
    # -- arguments -----------------------------------------------------------------------------------------
    Case("stdin-empty", (*S, "-"), 9002, "CSR Decode failed"),
    # cfssl 2016 ignores extra arguments; newest cfssl rejects them with this message
    Case(
        "too-many-arguments",
        (*S, "leaf.csr", "subject.json", "extra"),
        message="too many arguments are provided, please check with usage",
        cfssl="ignored",
    ),
    Case(
        "gencert-too-many-arguments",
        (*G, "leaf.json", "extra"),
        message="only one argument is accepted, please check with usage",
        cfssl="ignored",
    ),
    Case(
        "sign-without-arguments",
        ("sign", "-ca", "ca.pem", "-ca-key", "ca-key.pem"),
        message="not enough arguments are supplied --- please refer to the usage",
    ),
    Case(
        "gencert-ca-section-without-initca",
        (*G, "ca.json"),
        message="ca section only permitted in initca",
        files={"ca.json": j({"CN": "x", "ca": {"pathlen": 1}})},
    ),
    Case(
        "genkey-ca-section-without-initca",
        ("genkey", "ca.json"),
        message="ca section only permitted in initca",
        files={"ca.json": j({"CN": "x", "ca": {"pathlen": 1}})},
    ),
    # cfssl: exit 0, only "[ERROR] need CA certificate (provide one with -ca)" logged
    Case("sign-without-ca", ("sign", "leaf.csr"), message="need CA certificate (provide one with -ca)", cfssl="exit 0"),
    Case("sign-without-ca-key", ("sign", "-ca", "ca.pem", "leaf.csr"), message="need CA key (provide one with -ca-key)", cfssl="exit 0"),
    Case("gencert-without-ca", ("gencert", "leaf.json"), message="need a CA certificate (provide one with -ca)", cfssl="exit 0"),
    Case("info-extra-argument", ("info", "extra"), message="argument is provided but not defined; please refer to the usage by flag -h."),
    Case("info-without-config", ("info",), message="Either -remote or -config must be given. Refer to cfssl info -h for usage."),
    Case("print-defaults-without-type", ("print-defaults",), message="not enough arguments are supplied --- please refer to the usage"),
    Case("selfsign-without-csr-json", ("selfsign", "x.example"), message="not enough arguments are supplied --- please refer to the usage"),
    Case(
        "gencsr-without-key",
        ("gencsr", "leaf.json"),
        message="private key file is required through '-key', please check with usage",
        cfssl="no gencsr in 2016",
    ),
    Case(
        "gencsr-cert-and-argument",
        ("gencsr", "-key", "ca-key.pem", "-cert", "ca.pem", "leaf.json"),
        message="no argument is accepted with '-cert', please check with usage",
        cfssl="no gencsr in 2016",
    ),
    Case(
        "gencsr-key-is-encrypted",
        ("gencsr", "-key", "enc-ca-key.pem", "leaf.json"),
        2100,
        "Private key is encrypted.",
        cfssl="no gencsr in 2016",
    ),
    Case("no-command", (), message="No command is given."),
    Case("unknown-command", ("bogus",), message="Command bogus is not defined."),
]

# The first line is the message for usage errors (the usage follows) and for the two "command" errors.
FIRST_LINE = {"no-command", "unknown-command"}


def test_the_table_is_big_enough_and_ids_are_unique() -> None:
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def materials(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return build_materials(tmp_path_factory.mktemp("materials"))


def stage(directory: Path, materials: dict[str, bytes], case: Case) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in {**materials, **case.files}.items():
        (directory / name).write_bytes(data)


def check(case: Case, status: int, stdout: str, stderr: str) -> None:
    """The assertions shared with the interop test (which runs the real cfssl through this)."""
    assert status == case.status, stderr
    assert stdout == ""
    assert "Traceback" not in stderr and "panic" not in stderr
    lines = stderr.strip().splitlines()
    assert lines, "an error must be reported on stderr"
    while len(lines) > 1 and lines[-1].startswith("hint: "):  # cfsslpy: hints (and the usage line) follow the error
        lines = lines[:-1]
    line = lines[0] if case.usage or case.id in FIRST_LINE else lines[-1]
    if case.code is None:
        assert line == case.message
        return
    error = json.loads(line)
    assert list(error) == ["code", "message"]
    assert error["code"] == case.code
    if case.message is not None:
        assert error["message"] == case.message


def _params() -> list[object]:
    out: list[object] = []
    for case in CASES:
        marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, run_cli: RunCli, materials: dict[str, bytes], tmp_path: Path) -> None:
    work = tmp_path / "work"
    stage(work, materials, case)
    before = listing(work)
    result = run_cli(*case.args, stdin=case.stdin, env=case.env, cwd=work)
    check(case, result.status, result.stdout, result.stderr)
    assert listing(work) == before
