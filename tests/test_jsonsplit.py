"""Core of json-split (cfssljson): field mapping, envelope handling, rendering and all-or-nothing writes."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cfsslpy import jsonsplit
from cfsslpy.errors import PlainError
from cfsslpy.golang.base64 import go_base64_decode
from cfsslpy.inputs import Stdin
from cfsslpy.jsonsplit import Output, RequestFailed, read_source, render_stdout, split, write_outputs


def doc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def envelope(result: Any, success: bool = True, errors: list[Any] | None = None) -> bytes:
    return doc({"success": success, "result": result, "errors": errors or [], "messages": []})


def planned(outputs: list[Output]) -> list[tuple[str, bytes, int]]:
    return [(o.path, o.data, o.mode) for o in outputs]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- field -> file mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "path", "mode"),
    [
        ("cert", "b.pem", 0o644),
        ("certificate", "b.pem", 0o644),
        ("key", "b-key.pem", 0o600),
        ("private_key", "b-key.pem", 0o600),
        ("encrypted_key", "b-key.enc", 0o600),
        ("csr", "b.csr", 0o644),
        ("certificate_request", "b.csr", 0o644),
        ("bundle", "b-bundle.pem", 0o644),
    ],
)
def test_string_fields_map_to_files(key: str, path: str, mode: int) -> None:
    assert planned(split(doc({key: "VALUE\n"}), "b", bare=True)) == [(path, b"VALUE\n", mode)]
    assert planned(split(envelope({key: "VALUE\n"}), "b")) == [(path, b"VALUE\n", mode)]


def test_ocsp_response_is_base64_decoded() -> None:
    der = bytes(range(256))
    out = split(doc({"ocspResponse": base64.b64encode(der).decode()}), "b", bare=True)
    assert planned(out) == [("b-response.der", der, 0o644)]


def test_bundle_object_in_result_of_bare_envelope_newest_form() -> None:
    data = doc({"success": True, "result": {"certificate": "C", "bundle": {"bundle": "CHAIN", "root": "ROOT", "status": {}}}})
    # Newest cfssljson reaches result.bundle only in -bare mode; the certificate is not written there.
    assert planned(split(data, "b", bare=True)) == [("b-bundle.pem", b"CHAIN\nROOT", 0o644), ("b-root.pem", b"ROOT", 0o644)]


def test_bundle_object_directly_in_result_is_split_too() -> None:
    data = envelope({"certificate": "C", "bundle": {"bundle": "CHAIN", "root": "ROOT"}})
    assert planned(split(data, "b")) == [
        ("b.pem", b"C", 0o644),
        ("b-bundle.pem", b"CHAIN\nROOT", 0o644),
        ("b-root.pem", b"ROOT", 0o644),
    ]


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ({"root": "R"}, "inner bundle parsing failed!"),
        ({"bundle": 1, "root": "R"}, "inner bundle parsing failed!"),
        ({"bundle": "B"}, "root parsing failed!"),
    ],
)
def test_bundle_object_missing_inner_keys(inner: dict[str, Any], message: str) -> None:
    with pytest.raises(PlainError) as exc:
        split(doc({"result": {"bundle": inner}}), "b", bare=True)
    assert exc.value.message == message


def test_both_bundle_forms_conflict() -> None:
    with pytest.raises(PlainError, match="refusing"):
        split(doc({"bundle": "S", "result": {"bundle": {"bundle": "B", "root": "R"}}}), "b", bare=True)


def test_emission_order_and_first_present_key_wins() -> None:
    data = doc(
        {
            "ocspResponse": "AAEC",
            "certificate_request": "IGNORED",
            "csr": "R",
            "bundle": "B",
            "encrypted_key": "EK",
            "private_key": "IGNORED",
            "key": "K",
            "certificate": "IGNORED",
            "cert": "C",
        }
    )
    assert [o.path for o in split(data, "x", bare=True)] == ["x.pem", "x-key.pem", "x-key.enc", "x.csr", "x-bundle.pem", "x-response.der"]


def test_first_present_key_wins_even_when_empty() -> None:
    # cfssljson: `cert` present (even "") hides `certificate`.
    out = split(doc({"cert": "", "certificate": "C", "key": "K"}), "x", bare=True)
    assert [o.path for o in out] == ["x-key.pem"]


def test_empty_cert_key_csr_skipped_but_other_fields_written_empty() -> None:
    out = split(doc({"cert": "", "key": "", "csr": "", "encrypted_key": "", "bundle": "", "ocspResponse": ""}), "x", bare=True)
    assert planned(out) == [("x-key.enc", b"", 0o600), ("x-bundle.pem", b"", 0o644), ("x-response.der", b"", 0o644)]


def test_basename_with_directory() -> None:
    assert [o.path for o in split(doc({"cert": "C", "key": "K"}), "out/ca", bare=True)] == ["out/ca.pem", "out/ca-key.pem"]


def test_unknown_keys_ignored_and_lone_surrogate_becomes_replacement_char() -> None:
    out = split(b'{"crt":"x","sums":{},"cert":"a\\u00e9\\ud800"}', "x", bare=True)
    assert out[0].data == "aé\ufffd".encode()


# --- envelopes -------------------------------------------------------------------------------------------


def test_envelope_failure_lists_messages_without_codes() -> None:
    data = envelope(None, success=False, errors=[{"code": 5200, "message": "bad policy"}, None, {"int": 7, "message": "two"}])
    with pytest.raises(RequestFailed) as exc:
        split(data)
    assert exc.value.messages == ["bad policy", "", "two"]
    assert str(exc.value) == "Request failed:\n\tbad policy\n\t\n\ttwo"


@pytest.mark.parametrize("data", [b"{}", b"null", b'{"success":null,"result":{"cert":"C"}}', doc({"cert": "C", "key": "K"})])
def test_envelope_without_success_true_fails(data: bytes) -> None:
    with pytest.raises(RequestFailed) as exc:
        split(data)
    assert str(exc.value) == "Request failed:"


def test_envelope_keys_match_case_insensitively_like_go() -> None:
    assert [o.path for o in split(b'{"SUCCESS":true,"Result":{"cert":"C"}}')] == ["cert.pem"]
    assert [o.path for o in split('{"\u017fuccess":true,"result":{"cert":"C"}}'.encode())] == ["cert.pem"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "json: cannot unmarshal array into Go value of type main.Response"),
        (b'{"success":"yes"}', "json: cannot unmarshal string into Go struct field Response.success of type bool"),
        (b'{"success":1}', "json: cannot unmarshal number into Go struct field Response.success of type bool"),
        (
            b'{"success":true,"result":[1]}',
            "json: cannot unmarshal array into Go struct field Response.result of type map[string]interface {}",
        ),
        (
            b'{"success":false,"errors":{}}',
            "json: cannot unmarshal object into Go struct field Response.errors of type []main.ResponseMessage",
        ),
        (
            b'{"success":false,"errors":["x"]}',
            "json: cannot unmarshal string into Go struct field Response.errors of type main.ResponseMessage",
        ),
        (
            b'{"success":false,"errors":[{"int":"x"}]}',
            "json: cannot unmarshal string into Go struct field ResponseMessage.errors.int of type int",
        ),
        (
            b'{"success":false,"errors":[{"int":1.5}]}',
            "json: cannot unmarshal number 1.5 into Go struct field ResponseMessage.errors.int of type int",
        ),
        (
            b'{"success":false,"messages":[{"message":5}]}',
            "json: cannot unmarshal number into Go struct field ResponseMessage.messages.message of type string",
        ),
        (
            b'{"success":"x","success":true,"result":{"cert":"C"}}',
            "json: cannot unmarshal string into Go struct field Response.success of type bool",
        ),
    ],
)
def test_envelope_type_errors_use_go_wording(data: bytes, message: str) -> None:
    with pytest.raises(PlainError) as exc:
        split(data)
    assert exc.value.message == f"Failed to parse input: {message}"


def test_later_null_result_clears_earlier_one() -> None:
    with pytest.raises(PlainError, match="nothing to write.*empty result"):
        split(b'{"success":true,"result":{"cert":"C"},"result":null}')


def test_bare_on_full_envelope_without_bundle_is_an_error_with_hint() -> None:
    data = envelope({"certificate": "C", "private_key": "K"})
    with pytest.raises(PlainError) as exc:
        split(data, bare=True)
    assert exc.value.message.startswith("Failed to parse input: nothing to write")
    assert "run without -bare" in exc.value.message


@pytest.mark.parametrize("data", [b"{}", b"null", b'{"crt":"x"}', b'{"cert":"","key":""}'])
def test_nothing_to_write_is_an_error(data: bytes) -> None:
    with pytest.raises(PlainError, match="^Failed to parse input: nothing to write"):
        split(data, bare=True)


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"{", b'{"cert":"C"} x', b"NaN", b"\xef\xbb\xbf{}", b"[" * 100000])
def test_bad_json(data: bytes) -> None:
    with pytest.raises(PlainError) as exc:
        split(data, bare=True)
    assert exc.value.message.startswith("Failed to parse input: ")


def test_empty_input_message_matches_go() -> None:
    with pytest.raises(PlainError) as exc:
        split(b"", bare=True)
    assert exc.value.message == "Failed to parse input: unexpected end of JSON input"


def test_bare_top_level_must_be_an_object() -> None:
    with pytest.raises(PlainError) as exc:
        split(b"[1]", bare=True)
    assert exc.value.message == "Failed to parse input: json: cannot unmarshal array into Go value of type map[string]interface {}"


def test_non_utf8_input() -> None:
    with pytest.raises(PlainError) as exc:
        split(b'{"cert":"\xff"}', bare=True)
    assert exc.value.message == "Failed to parse input: input is not valid UTF-8 (byte 0xff at offset 9)"


_STRING_KEYS = ["cert", "certificate", "key", "private_key", "encrypted_key", "csr", "certificate_request", "bundle", "ocspResponse"]
_NON_STRINGS: list[tuple[Any, str]] = [(5, "a number"), (True, "a bool"), (None, "null"), ([], "an array"), ({"a": 1}, "an object")]


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    # a "bundle" object is the nested bundle form, tested above
    [(k, v, kind) for k in _STRING_KEYS for v, kind in _NON_STRINGS if not (k == "bundle" and isinstance(v, dict))],
)
def test_non_string_values_are_clear_errors(key: str, value: Any, kind: str) -> None:
    with pytest.raises(PlainError) as exc:
        split(doc({key: value}), bare=True)
    assert exc.value.message == f'Failed to parse input: the value of "{key}" is {kind}, not a string'


def test_invalid_ocsp_base64() -> None:
    with pytest.raises(PlainError) as exc:
        split(doc({"cert": "C", "ocspResponse": "AA EC"}), bare=True)
    assert exc.value.message == "Failed to parse ocspResponse: illegal base64 data at input byte 2"


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("", b""),
        ("QUJD", b"ABC"),
        ("QUI=", b"AB"),
        ("QQ==", b"A"),
        ("QU\nJD\r\n", b"ABC"),
        ("QQ=\n=", b"A"),
        ("QUJ=", b"AB"),  # non-zero trailing bits are accepted (not strict)
        ("AAE", 0),
        ("A", 0),
        ("AA EC", 2),
        ("AA=", 3),
        ("A===", 1),
        ("AA==A", 4),
        ("QQ=x", 2),
        ("AAAA=", 4),
        ("Zm9v-mFy", 4),
        ("é", 0),
    ],
)
def test_go_base64_decoder(text: str, result: bytes | int) -> None:
    if isinstance(result, bytes):
        assert go_base64_decode(text) == result
    else:
        with pytest.raises(ValueError) as exc:
            go_base64_decode(text)
        assert str(exc.value) == f"illegal base64 data at input byte {result}"


# --- reading ---------------------------------------------------------------------------------------------


def test_read_source_stdin_and_file(tmp_path: Path) -> None:
    import io

    assert read_source("-", Stdin(io.BytesIO(b"abc"))) == b"abc"
    (tmp_path / "in.json").write_bytes(b"xyz")
    assert read_source(str(tmp_path / "in.json")) == b"xyz"


def test_read_source_errors(tmp_path: Path) -> None:
    with pytest.raises(PlainError) as exc:
        read_source(str(tmp_path / "missing.json"))
    assert exc.value.message == f"Failed to read input: open {tmp_path}/missing.json: no such file or directory"
    with pytest.raises(PlainError, match="^Failed to read input: read .*: is a directory$"):
        read_source(str(tmp_path))


def test_read_source_refuses_huge_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(jsonsplit, "MAX_INPUT", 10)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 11)
    with pytest.raises(PlainError, match=f"^Failed to read input: read {big}: input is larger than 10 bytes$"):
        read_source(str(big))
    with pytest.raises(PlainError, match="^Failed to read input: read standard input: input is larger than 10 bytes$"):
        read_source("-", Stdin(io.BytesIO(b" " * 11)))


# --- rendering -------------------------------------------------------------------------------------------


def test_stdout_rendering() -> None:
    data = doc({"cert": "C\n", "key": "K", "encrypted_key": "EK", "csr": "R", "bundle": "B", "ocspResponse": "AAEC"})
    assert render_stdout(split(data, bare=True)) == "C\n\nK\nRUs=\nR\nB\nAAEC\n"


# --- writing ---------------------------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_written_files_have_the_modes_less_the_umask(in_tmp: Path, umask: int) -> None:
    data = doc(
        {
            "cert": "C",
            "key": "K",
            "encrypted_key": "E",
            "csr": "R",
            "result": {"bundle": {"bundle": "B", "root": "T"}},
            "ocspResponse": "AAEC",
        }
    )
    old = os.umask(umask)
    try:
        write_outputs(split(data, "x", bare=True))
    finally:
        os.umask(old)
    public = 0o644 & ~umask
    expected = {
        "x.pem": (b"C", public),
        "x-key.pem": (b"K", 0o600),
        "x-key.enc": (b"E", 0o600),
        "x.csr": (b"R", public),
        "x-bundle.pem": (b"B\nT", public),
        "x-root.pem": (b"T", public),
        "x-response.der": (b"\x00\x01\x02", public),
    }
    assert sorted(p.name for p in in_tmp.iterdir()) == sorted(expected)
    for name, (content, mode) in expected.items():
        assert (in_tmp / name).read_bytes() == content
        assert mode_of(in_tmp / name) == mode, name


def test_existing_files_are_replaced_with_the_documented_mode(in_tmp: Path) -> None:
    (in_tmp / "x-key.pem").write_bytes(b"old key")
    (in_tmp / "x-key.pem").chmod(0o644)
    write_outputs(split(doc({"key": "K"}), "x", bare=True))
    assert (in_tmp / "x-key.pem").read_bytes() == b"K"
    assert mode_of(in_tmp / "x-key.pem") == 0o600


def test_failure_on_second_file_writes_nothing(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cfsslpy.inputs import write_atomic as real

    calls: list[str] = []

    def flaky(path: str, data: bytes, mode: int = 0o644) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(jsonsplit, "write_atomic", flaky)
    with pytest.raises(PlainError) as exc:
        write_outputs(split(doc({"cert": "C", "key": "K", "csr": "R"}), "x", bare=True))
    assert exc.value.message == "Failed to write x-key.pem: no space left on device"
    assert len(calls) == 2
    assert list(in_tmp.iterdir()) == []


def test_rename_failure_rolls_back_and_restores_previous_files(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "x.pem").write_bytes(b"old cert")
    (in_tmp / "x.pem").chmod(0o640)
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        if str(dst).endswith("x-key.pem"):
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PlainError) as exc:
        write_outputs(split(doc({"cert": "C", "key": "K", "csr": "R"}), "x", bare=True))
    assert exc.value.message == "Failed to write x-key.pem: permission denied"
    assert [p.name for p in in_tmp.iterdir()] == ["x.pem"]
    assert (in_tmp / "x.pem").read_bytes() == b"old cert"
    assert mode_of(in_tmp / "x.pem") == 0o640


def test_invalid_value_anywhere_writes_nothing(in_tmp: Path) -> None:
    with pytest.raises(PlainError):
        write_outputs(split(doc({"cert": "C", "key": "K", "ocspResponse": "not base64!"}), "x", bare=True))
    assert list(in_tmp.iterdir()) == []


def test_missing_output_directory(in_tmp: Path) -> None:
    with pytest.raises(PlainError) as exc:
        write_outputs(split(doc({"cert": "C"}), "out/ca", bare=True))
    assert exc.value.message == "Failed to write out/ca.pem: directory out does not exist"
    (in_tmp / "file").write_text("")
    with pytest.raises(PlainError, match="directory file is not a directory"):
        write_outputs(split(doc({"cert": "C"}), "file/ca", bare=True))


def test_output_directory_path(in_tmp: Path) -> None:
    (in_tmp / "out").mkdir()
    write_outputs(split(doc({"cert": "C", "key": "K"}), "out/ca", bare=True))
    assert sorted(p.name for p in (in_tmp / "out").iterdir()) == ["ca-key.pem", "ca.pem"]


def test_target_is_a_directory(in_tmp: Path) -> None:
    (in_tmp / "x-key.pem").mkdir()
    with pytest.raises(PlainError, match="^Failed to write x-key.pem: is a directory$"):
        write_outputs(split(doc({"cert": "C", "key": "K"}), "x", bare=True))
    assert [p.name for p in in_tmp.iterdir()] == ["x-key.pem"]


def test_symlink_target_is_replaced_not_followed(in_tmp: Path) -> None:
    (in_tmp / "elsewhere").write_bytes(b"keep")
    (in_tmp / "x.pem").symlink_to("elsewhere")
    write_outputs(split(doc({"cert": "C"}), "x", bare=True))
    assert not (in_tmp / "x.pem").is_symlink()
    assert (in_tmp / "x.pem").read_bytes() == b"C"
    assert (in_tmp / "elsewhere").read_bytes() == b"keep"
