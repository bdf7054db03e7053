"""cfsslpy.golang.decode: Go's encoding/json Unmarshal into declared structs, and the documents that use it."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from cfsslpy.api.endpoints.revocation import AddRequest, OCSPRequest, RevokeRequest
from cfsslpy.api.endpoints.sign import parse_sign_request
from cfsslpy.auth import AuthenticatedRequest
from cfsslpy.certdb import DBConfig
from cfsslpy.config import Config
from cfsslpy.csr import CertificateRequest, NameConstraints
from cfsslpy.errors import CfsslError
from cfsslpy.golang.decode import (
    BOOL,
    BYTES,
    INT,
    INT64,
    RAW,
    STRING,
    STRINGS,
    TIME,
    BigInt,
    GoStruct,
    Int,
    Map,
    Ptr,
    Slice,
    Text,
    Where,
    decode,
    go_struct,
    struct_of,
)
from cfsslpy.golang.json import JSONDecodeError, fold_keys
from cfsslpy.keys import KeyRequest
from cfsslpy.signer import SignRequest, SubjectOverride

U = "json: cannot unmarshal "


def message(target: Any, obj: Any, **options: Any) -> str:
    with pytest.raises(JSONDecodeError) as exc:
        decode(target, obj, **options)
    return str(exc.value)


# ---------------------------------------------------------------------------------------------------------
# Go types, one by one (at the document root: "Go value of type T")


@pytest.mark.parametrize(
    ("go_type", "good", "decoded"),
    [
        (STRING, "a", "a"),
        (BOOL, True, True),
        (INT, -5, -5),
        (INT64, (1 << 63) - 1, (1 << 63) - 1),
        (Int(whole_floats=True), 2048.0, 2048),
        (STRINGS, ["a", "b"], ["a", "b"]),
        (STRINGS, ["a", None], ["a", ""]),  # a null element is the zero value
        (Slice(STRING, skip_nulls=True), ["a", None], ["a"]),
        (Map(STRING), {"k": "v", "n": None}, {"k": "v", "n": ""}),
        (Map(INT, "map[string]int"), {"K": 1}, {"K": 1}),  # map keys are not folded
        (Ptr(STRING), "p", "p"),
        (RAW, [1, {"a": None}], [1, {"a": None}]),
        (BigInt(), 12345678901234567890, 12345678901234567890),
        (BigInt(strings=True), "42", 42),
        (BYTES, "aGk=", b"hi"),
        (TIME, "2030-01-02T03:04:05Z", dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
        (TIME, "0001-01-01T00:00:00Z", None),  # Go's zero time is "not set"
        (Text("hex", lambda text, where: bytes.fromhex(text)), "0a", b"\n"),
    ],
)
def test_each_go_type_accepts_its_json(go_type: Any, good: Any, decoded: Any) -> None:
    assert decode(go_type, good) == decoded


@pytest.mark.parametrize(
    ("go_type", "bad", "text"),
    [
        (STRING, 1, "number into Go value of type string"),
        (STRING, True, "bool into Go value of type string"),
        (STRING, ["a"], "array into Go value of type string"),
        (STRING, {}, "object into Go value of type string"),
        (BOOL, "true", "string into Go value of type bool"),
        (BOOL, 1, "number into Go value of type bool"),
        (INT, "1", "string into Go value of type int"),
        (INT, True, "bool into Go value of type int"),
        (INT, 1.5, "number 1.5 into Go value of type int"),
        (INT, 2.0, "number into Go value of type int"),  # Go refuses "2.0" for an int
        (INT64, 1 << 63, "number into Go value of type int64"),
        (Int("time.Duration", whole_floats=True), "1h", "string into Go value of type time.Duration"),
        (STRINGS, "a", "string into Go value of type []string"),
        (STRINGS, ["a", 1], "number into Go value of type string"),  # an element names the element type
        (Slice(INT, "[]custom"), {}, "object into Go value of type []custom"),
        (Map(STRING), [], "array into Go value of type map[string]string"),
        (Map(STRING), {"k": 1}, "number into Go value of type string"),
        (Ptr(Map(STRING)), 1, "number into Go value of type map[string]string"),  # Go names the pointed-to type
        (BigInt(), "42", "string into Go value of type *big.Int"),
        (BigInt(strings=True), "x", "string into Go value of type *big.Int"),
        (BigInt(), True, "bool into Go value of type *big.Int"),
        (BYTES, 5, "number into Go value of type []uint8"),
        (TIME, 5, "number into Go value of type time.Time"),
        (Slice(TIME), [None], "null into Go value of type time.Time"),  # a string-parsed type refuses null
    ],
)
def test_each_go_type_refuses_other_json_with_gos_text(go_type: Any, bad: Any, text: str) -> None:
    assert message(go_type, bad) == U + text


def test_base64_and_time_errors_are_their_parsers() -> None:
    assert message(BYTES, "a") == "illegal base64 data at input byte 0"
    assert message(TIME, "yesterday") == "parsing time 'yesterday' as RFC 3339"


# ---------------------------------------------------------------------------------------------------------
# Structs


@go_struct("pkg.Inner", {"name": STRING, "Count": (INT, "count")})
@dataclass
class Inner:
    name: str = "default"
    count: int = 0


@go_struct(
    "pkg.Outer",
    {"title": STRING, "inner": struct_of(Inner), "items": Slice(struct_of(Inner), "[]pkg.Inner"), "opt": Ptr(STRING), "flag": BOOL},
)
@dataclass
class Outer:
    title: str = ""
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    opt: str | None = "preset"
    flag: bool = False
    checked: bool = False

    def go_unmarshaled(self) -> None:
        self.checked = True


def test_keys_match_exactly_then_case_insensitively_and_unknown_keys_are_ignored() -> None:
    outer = decode(Outer, {"TITLE": "t", "Inner": {"NAME": "n", "count": 2}, "unknown": [1, 2]})
    assert (outer.title, outer.inner) == ("t", Inner("n", 2))
    assert decode(Outer, {"title": "exact", "Title": "folded"}).title == "folded"  # the later key wins
    assert decode(Outer, {"Title": "folded", "title": "exact"}).title == "exact"


def test_null_and_absent_leave_the_default_but_a_pointer_becomes_nil() -> None:
    outer = decode(Outer, {"title": None, "inner": None, "flag": None})
    assert (outer.title, outer.inner, outer.opt, outer.flag) == ("", Inner(), "preset", False)
    assert decode(Outer, {"opt": None}).opt is None
    assert decode(Outer, {"inner": {"name": None}}).inner.name == "default"


def test_a_null_document_is_the_zero_value_unless_refused() -> None:
    assert decode(Outer, None) == Outer()
    assert message(Outer, None, null=False) == U + "null into Go value of type pkg.Outer"


def test_struct_errors_name_the_struct_and_field() -> None:
    assert message(Outer, []) == U + "array into Go value of type pkg.Outer"
    assert message(Outer, {"title": 1}) == U + "number into Go struct field Outer.title of type string"
    assert message(Outer, {"inner": "x"}) == U + "string into Go struct field Outer.inner of type pkg.Inner"
    assert message(Outer, {"items": [1]}) == U + "number into Go struct field Outer.items of type pkg.Inner"
    # nested: Go names the innermost struct; by default the field alone (older Go, most cfssl texts) ...
    assert message(Outer, {"inner": {"count": "2"}}) == U + "string into Go struct field Inner.Count of type int"
    # ... with full_paths the JSON path from the root (Go >= 1.20; slice indexes are not in it)
    full = message(Outer, {"items": [{}, {"name": 5}]}, full_paths=True)
    assert full == U + "number into Go struct field Inner.items.name of type string"


def test_the_first_error_in_document_order_wins() -> None:
    assert message(Outer, {"flag": "x", "title": 1}).endswith("Outer.flag of type bool")
    assert message(Outer, {"title": 1, "flag": "x"}).endswith("Outer.title of type string")


def test_at_places_a_document_inside_another() -> None:
    where = Where("Parent", "child")
    assert message(Inner, 5, at=where) == U + "number into Go struct field Parent.child of type pkg.Inner"
    assert message(Inner, {"name": 5}, at=where) == U + "number into Go struct field Inner.name of type string"
    assert message(Inner, {"name": 5}, at=Where("Parent", "child", full_paths=True)).endswith("Inner.child.name of type string")


def test_the_model_checks_what_was_decoded() -> None:
    assert decode(Outer, {}).checked
    assert not Outer().checked


def test_a_struct_without_a_model_is_a_dict_of_every_field() -> None:
    spec = GoStruct("pkg.Plain", {"a": STRING, "b": STRINGS, "c": Ptr(struct_of(Inner)), "Dd": (BOOL, "d")})
    assert decode(spec, {"A": "x"}) == {"a": "x", "b": None, "c": None, "d": False}
    assert decode(spec, {"c": {}})["c"] == Inner()
    assert decode(spec, None) == {"a": "", "b": None, "c": None, "d": False}


# ---------------------------------------------------------------------------------------------------------
# The documents: a wrong type gives the message it always gave


def test_csr_document() -> None:
    with pytest.raises(JSONDecodeError, match="^json: cannot unmarshal number into Go struct field CertificateRequest.CN of type string$"):
        CertificateRequest.from_json({"CN": 1})
    with pytest.raises(JSONDecodeError, match="^json: cannot unmarshal null into Go value of type csr.CertificateRequest$"):
        CertificateRequest.from_json(None)
    assert message(CertificateRequest, {"names": [{"OID": {"1.2.3": 4}}]}) == U + "number into Go struct field Name.OID of type string"
    assert message(CertificateRequest, {"names": ["x"]}) == U + "string into Go struct field CertificateRequest.names of type csr.Name"
    assert message(CertificateRequest, {"hosts": "a"}) == U + "string into Go struct field CertificateRequest.hosts of type []string"
    assert message(CertificateRequest, {"key": {"size": "256"}}) == U + "string into Go struct field KeyRequest.size of type int"
    assert message(CertificateRequest, {"ca": {"pathlen": "1"}}) == U + "string into Go struct field CAConfig.pathlen of type int"
    assert message(CertificateRequest, {"extensions": [{"id": [1]}]}) == (
        U + "array into Go struct field Extension.Id of type asn1.ObjectIdentifier"
    )
    assert (
        message(CertificateRequest, {"extensions": [{"value": ""}]})
        == U + "null into Go struct field Extension.Id of type asn1.ObjectIdentifier"
    )
    request = CertificateRequest.from_json({"cn": "x", "KEY": {"algo": "rsa"}, "Hosts": None, "ca": {"PathLen": 2.0}})
    assert (request.CN, request.key, request.hosts, request.ca and request.ca.pathlen) == ("x", KeyRequest("rsa", 256), None, 2)


def test_key_request_and_name_constraints() -> None:
    assert message(KeyRequest, "rsa", at=Where("CertificateRequest", "key")) == (
        U + "string into Go struct field CertificateRequest.key of type csr.KeyRequest"
    )
    with pytest.raises(JSONDecodeError, match="NameConstraints.critical of type bool$"):
        NameConstraints.from_json({"critical": "yes"})
    with pytest.raises(JSONDecodeError, match="NameConstraints.dns of type string$"):
        NameConstraints.from_json({"permitted": {"DNS": [1]}})
    with pytest.raises(JSONDecodeError, match="^name_constraints.excluded: unknown kind 'rdn'"):
        NameConstraints.from_json({"excluded": {"rdn": ["x"]}})
    assert NameConstraints.from_json({"Permitted": {"DNS": ["example.com"]}}).permitted == {"dns": ["example.com"]}


def test_config_document() -> None:
    with pytest.raises(CfsslError) as exc:
        Config.from_json({"signing": {"default": {"Policies": [{"ID": "1.2.3", "Qualifiers": [{"Type": 5}]}]}}})
    assert exc.value.message == (
        "failed to unmarshal configuration: json: cannot unmarshal number into Go struct field "
        "CertificatePolicyQualifier.signing.default.Policies.Qualifiers.Type of type string"
    )
    with pytest.raises(CfsslError) as exc:
        Config.from_json({"signing": {"default": {"name_constraints": {"critical": 1}}}})
    assert exc.value.message == (
        "invalid name_constraints: json: cannot unmarshal number into Go struct field NameConstraints.critical of type bool"
    )


def test_sign_request_and_subject() -> None:
    with pytest.raises(JSONDecodeError) as exc:
        SignRequest.from_json({"hosts": ["a", 1]})
    assert str(exc.value) == U + "number into Go struct field SignRequest.hosts of type string"
    with pytest.raises(JSONDecodeError) as exc:
        SignRequest.from_json({"subject": {"names": [{"C": 1}]}})
    assert str(exc.value) == U + "number into Go struct field Name.C of type string"
    with pytest.raises(JSONDecodeError) as exc:
        SubjectOverride.from_json([])
    assert str(exc.value) == U + "array into Go struct field SignRequest.subject of type signer.Subject"
    with pytest.raises(JSONDecodeError) as exc:
        SubjectOverride.from_json({"CN": 1})
    assert str(exc.value) == U + "number into Go struct field Subject.CN of type string"
    request, bundle = parse_sign_request({"Certificate_Request": "PEM", "hosts": ["h"], "bundle": True, "crl_override": "ignored"})
    assert (request.request, request.hosts, request.crl_override, bundle) == (b"PEM", ["h"], "", True)
    with pytest.raises(JSONDecodeError):
        parse_sign_request({"serial": "5"})  # the API's jsonSignRequest takes a JSON number only
    assert SignRequest.from_json({"serial": "5"}).serial == 5


def test_auth_request() -> None:
    with pytest.raises(JSONDecodeError) as exc:
        AuthenticatedRequest.from_json({"timestamp": "1"})
    assert str(exc.value) == U + "string into Go struct field AuthenticatedRequest.timestamp of type int64"
    assert AuthenticatedRequest.from_json({"TOKEN": "aGk=", "timestamp": None}) == AuthenticatedRequest(token=b"hi")


def test_revocation_bodies() -> None:
    assert message(RevokeRequest, {"serial": 1}) == U + "number into Go struct field jsonRevokeRequest.serial of type string"
    assert message(OCSPRequest, {"reason": 1.5}) == U + "number 1.5 into Go struct field jsonSignRequest.reason of type int"
    assert decode(OCSPRequest, {"status": None}).status == "good"
    assert message(AddRequest, {"expiry": 5}) == U + "number into Go struct field AddRequest.expiry of type time.Time"
    assert message(AddRequest, {"sans": [1]}) == U + "number into Go struct field AddRequest.sans of type string"
    body = decode(AddRequest, {"Serial_Number": "1", "expiry": "2030-01-01T00:00:00Z", "metadata": {"k": [1]}})
    assert (body.serial_number, body.expiry, body.metadata) == ("1", dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), {"k": [1]})


def test_db_config() -> None:
    for text in (b'{"driver":1,"data_source":"x"}', b"[]", b"null"):
        with pytest.raises(CfsslError) as exc:
            DBConfig.from_json(text)
        assert (exc.value.code, exc.value.message) == (5200, "invalid db configuration")
    assert DBConfig.from_json(b'{"Driver":"pgx","DATA_SOURCE":"x"}') == DBConfig("postgres", "x")


def test_base64_fast_path_agrees_with_gos_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every string of up to 8 characters over an alphabet with padding, CR and a non-alphabet byte decodes
    (or fails, with the same offset) identically through the C fast path and through Go's loop alone."""
    import itertools
    import re

    from cfsslpy.golang import base64 as module

    def outcome(text: str) -> bytes | str:
        try:
            return module.go_base64_decode(text)
        except JSONDecodeError as exc:
            return str(exc)

    texts = ["".join(p) for n in range(9) for p in itertools.product("AZ/=\r", repeat=n) if n < 7 or p[0] == "Z"]
    texts += [base64.b64encode(bytes(range(n))).decode() for n in range(40)] + ["QQ==\n", "QQ=é", "QUJD"]
    fast = [outcome(t) for t in texts]
    monkeypatch.setattr(module, "_PLAIN_BASE64", re.compile(r"(?!)"))  # every text takes the loop
    assert [outcome(t) for t in texts] == fast
    assert fast[texts.index("QUJD")] == b"ABC" and "illegal base64 data at input byte" in str(fast[texts.index("A===")])


def test_a_structs_decoding_matches_keys_as_fold_keys_does() -> None:
    """A struct decoded from every mix of exact, case-folded, unknown and repeated keys holds exactly the values
    fold_keys keeps (Go: an exact match wins, else the first declared field of that spelling, later keys win)."""
    import itertools

    fields = ["label", "Label", "profile", "hosts", "K", "straße"]
    struct = GoStruct("t.T", dict.fromkeys(fields, RAW))
    keys = ["label", "LABEL", "Label", "lAbEl", "profile", "PROFILE", "hosts", "k", "K", "x", "STRASSE", "straße", "Straße"]
    for n in range(1, 4):
        for combo in itertools.permutations(keys, n):
            obj = {key: i for i, key in enumerate(combo)}
            expected = {field: None for field in fields} | fold_keys(obj, fields)
            assert decode(struct, obj) == expected, combo
