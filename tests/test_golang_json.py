"""Go-isms users can observe: time.ParseDuration / Duration.String, encoding/json output and input rules.

Expected values are Go's (time and encoding/json of the Go 1.19 toolchain cfssl 2016 was built with); the
error messages were compared with the real cfssl through config files.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cfsslpy.golang.json import (
    HOUR,
    MAX_DEPTH,
    MINUTE,
    NANOSECOND,
    SECOND,
    JSONDecodeError,
    fold_keys,
    format_duration,
    go_json_dumps,
    go_syntax_error,
    loads,
    parse_date,
    parse_duration,
    parse_time,
    too_deep,
    type_error,
)
from cfsslpy.golang.jsonpos import error_position, locate, syntax_position

MS = 1_000_000
US = 1_000

# -- time.ParseDuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("0s", 0),
        ("1ns", 1),
        ("1.5h", 90 * MINUTE),
        ("-1m", -MINUTE),
        ("+1m", MINUTE),
        (".5s", 500 * MS),
        ("1.s", SECOND),
        ("1h30m", 90 * MINUTE),
        ("1h30m0.5s", 90 * MINUTE + 500 * MS),
        ("3m1h", HOUR + 3 * MINUTE),  # components may come in any order
        ("1us", US),
        ("1µs", US),  # U+00B5 micro sign
        ("1μs", US),  # U+03BC Greek mu
        ("1.5ms", 1500 * US),
        ("8760h", 8760 * HOUR),
        ("43800h", 43800 * HOUR),
        ("0.000000001s", 1),
        ("0.0000000001s", 0),  # below a nanosecond
        ("0.0000000000000000000001s", 0),  # digits past int64 are ignored, not an error
        ("9223372036854775807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("2562047h", 2562047 * HOUR),
        ("1.0000000001h", HOUR + 360),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("-", 'time: invalid duration "-"'),
        ("+", 'time: invalid duration "+"'),
        (".", 'time: invalid duration "."'),
        (".s", 'time: invalid duration ".s"'),
        ("--1s", 'time: invalid duration "--1s"'),
        ("s", 'time: invalid duration "s"'),
        ("1", 'time: missing unit in duration "1"'),
        ("00", 'time: missing unit in duration "00"'),
        ("1h30", 'time: missing unit in duration "1h30"'),
        ("1.5.5s", 'time: missing unit in duration "1.5.5s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("1s ", 'time: unknown unit "s " in duration "1s "'),
        ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
        ("1h-1m", 'time: unknown unit "h-" in duration "1h-1m"'),
        ("1H", 'time: unknown unit "H" in duration "1H"'),
        ("5µ", 'time: unknown unit "\\xc2\\xb5" in duration "5\\xc2\\xb5"'),  # non-ASCII quoted as bytes
        ('1"s', 'time: unknown unit "\\"s" in duration "1\\"s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("99999999999999999999s", 'time: invalid duration "99999999999999999999s"'),
        ("١s", 'time: invalid duration "\\xd9\\xa1s"'),  # only ASCII digits are digits
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


# -- Duration.String --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (US, "1µs"),
        (1500, "1.5µs"),
        (MS, "1ms"),
        (1_500_000, "1.5ms"),
        (SECOND, "1s"),
        (1_500_000_000, "1.5s"),
        (MINUTE, "1m0s"),
        (90 * SECOND, "1m30s"),
        (HOUR, "1h0m0s"),
        (90 * MINUTE, "1h30m0s"),
        (2 * HOUR + 500 * MS, "2h0m0.5s"),
        (43800 * HOUR, "43800h0m0s"),
        (-MINUTE, "-1m0s"),
        (-1, "-1ns"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        (NANOSECOND + SECOND, "1.000000001s"),
    ],
)
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


@pytest.mark.parametrize("ns", [0, 1, 1500, 90 * MINUTE, 43800 * HOUR, -MINUTE, 123_456_789_012])
def test_format_then_parse_round_trips(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


# -- JSON output ----------------------------------------------------------------------------------------------


def test_compact_with_html_escapes() -> None:
    assert go_json_dumps({"a": "<nil> & more", "b": [1, True, None]}) == '{"a":"\\u003cnil\\u003e \\u0026 more","b":[1,true,null]}'


def test_line_and_paragraph_separators_are_escaped_other_non_ascii_is_raw() -> None:
    assert go_json_dumps("\u2028\u2029é中") == '"\\u2028\\u2029é中"'


def test_control_characters_as_go_1_19_writes_them() -> None:
    assert go_json_dumps("\n\r\t\b\f\x01\x7f") == '"\\n\\r\\t\\u0008\\u000c\\u0001\x7f"'
    # an escaped backslash followed by "b" stays a backslash and a "b"
    assert go_json_dumps("\\b") == '"\\\\b"'


def test_key_order_is_the_callers() -> None:
    assert go_json_dumps({"certificate": "", "usages": [], "expiry": "1h"}) == '{"certificate":"","usages":[],"expiry":"1h"}'


# -- JSON input -------------------------------------------------------------------------------------------------


def test_loads_accepts_bytes_and_text() -> None:
    assert loads(b'{"a":1}') == loads('{"a":1}') == {"a": 1}


def test_duplicate_keys_keep_the_last_value() -> None:
    assert loads('{"a":1,"a":2}') == {"a": 2}


def test_invalid_utf8_in_strings_becomes_the_replacement_character() -> None:
    assert loads(b'{"a":"\xff"}') == {"a": "\ufffd"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"   ", "unexpected end of JSON input"),
        (b'{"a', "unexpected end of JSON input"),
        (b'{"CN": x}', "invalid character 'x' looking for beginning of value"),
        (b'{"CN":"x",}', "invalid character '}' looking for beginning of object key string"),
        (b'{"CN" "x"}', "invalid character '\"' after object key"),
        (b'{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b"{}x", "invalid character 'x' after top-level value"),
        (b'{"a":01}', "invalid character '1' after object key:value pair"),
        (b"\xef\xbb\xbf{}", "invalid character 'ï' looking for beginning of value"),
        (b"{'a':1}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
        (b'{"a":fals', "invalid character ' ' in literal false (expecting 'e')"),  # Go feeds a space at EOF
        (b"-", "invalid character ' ' in numeric literal"),
        (b'{"a":-x}', "invalid character 'x' in numeric literal"),
        (b'{"a":1.}', "invalid character '}' after decimal point in numeric literal"),
        (b'{"a":1e}', "invalid character '}' in exponent of numeric literal"),
        (b'{"a":"\\x"}', "invalid character 'x' in string escape code"),
        (b'{"a":"\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape"),
        (b'{"a":"\x01"}', "invalid character '\\x01' in string literal"),
        (b'{"a":"\t"}', "invalid character '\\t' in string literal"),
        (b'{"a":\x7f}', "invalid character '\\x7f' looking for beginning of value"),
        (b'{"a":\x80}', "invalid character '\\u0080' looking for beginning of value"),
        (b"NaN", "invalid character 'N' looking for beginning of value"),
        (b"-Infinity", "invalid character 'I' in numeric literal"),
    ],
)
def test_syntax_errors_use_go_wording(data: bytes, message: str) -> None:
    with pytest.raises(JSONDecodeError) as info:
        loads(data)
    assert str(info.value) == message
    assert go_syntax_error(data) == message


def test_go_syntax_error_is_none_for_valid_json() -> None:
    assert go_syntax_error(b' {"a": [1, -2.5e+3, true, false, null, "\\u00e9\\n"]} ') is None


# -- nesting depth and lone surrogates (issue 10) -----------------------------------------------------------


def nested(depth: int, kind: str = "array") -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
def test_max_depth_is_accepted(kind: str) -> None:
    value = loads(nested(MAX_DEPTH, kind))
    for _ in range(MAX_DEPTH - 1):
        value = value[0] if kind == "array" else value["a"]
    assert value == ([] if kind == "array" else {"a": 1})
    assert not too_deep(nested(MAX_DEPTH, kind))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 100_000])
@pytest.mark.parametrize(("kind", "bracket"), [("array", "["), ("object", "{")])
def test_deeper_nesting_is_a_decode_error_in_go_words(depth: int, kind: str, bracket: str) -> None:
    # Go's scanner (limit 10000) says exactly this for the same input beyond its own limit.
    data = nested(depth, kind)
    assert too_deep(data)
    with pytest.raises(JSONDecodeError) as info:
        loads(data)
    assert str(info.value) == f"invalid character '{bracket}' exceeded max depth"
    assert go_syntax_error(data) == str(info.value)


def test_depth_error_for_unclosed_and_mixed_nesting() -> None:
    assert str(pytest.raises(JSONDecodeError, loads, b'[{"k":' * 50_000).value) == "invalid character '[' exceeded max depth"
    assert str(pytest.raises(JSONDecodeError, loads, b'{"k":[' * 300).value) == "invalid character '{' exceeded max depth"  # level 513


def test_a_syntax_error_before_the_depth_limit_is_reported_first() -> None:
    data = b"[x" + b"[" * 100_000
    assert str(pytest.raises(JSONDecodeError, loads, data).value) == "invalid character 'x' looking for beginning of value"


def test_brackets_inside_strings_do_not_count() -> None:
    many = '"' + "[{" * 5000 + '\\"[' + '"'  # brackets and an escaped quote inside one string
    assert loads(f"[{many}]") == ["[{" * 5000 + '"[']
    assert not too_deep(f"[{many}]".encode())
    # an unterminated string swallows the rest, as in Go's scanner
    assert str(pytest.raises(JSONDecodeError, loads, b'["' + b"[" * 2000).value) == "unexpected end of JSON input"


def test_many_shallow_containers_are_not_too_deep() -> None:
    data = b"[" + b",".join([b'{"a":[1]}'] * 20_000) + b"]"
    assert not too_deep(data)
    assert len(loads(data)) == 20_000


def test_syntax_errors_deep_inside_valid_depth_are_worded_without_recursion() -> None:
    # the Go-wording scanner runs on every malformed document; it must not recurse per level
    data = b"[" * MAX_DEPTH + b"x"
    assert go_syntax_error(data) == "invalid character 'x' looking for beginning of value"


@pytest.mark.parametrize(
    ("escaped", "text"),
    [
        ('"\\ud800"', "\ufffd"),
        ('"\\udfff"', "\ufffd"),
        ('"x\\uD800y"', "x\ufffdy"),
        ('"\\ud800\\ud800"', "\ufffd\ufffd"),
        ('"\\udc00\\ud800"', "\ufffd\ufffd"),
        ('"\\ud800\\ud83d\\ude00"', "\ufffd\U0001f600"),  # Go: the first is lone, the next two a pair
        ('"\\ud83d\\ude00"', "\U0001f600"),
        ('"\\\\ud800"', "\\ud800"),  # an escaped backslash, then the letters ud800
        ('"\\\\\\ud800"', "\\\ufffd"),
    ],
)
def test_lone_surrogate_escapes_become_the_replacement_character(escaped: str, text: str) -> None:
    """Go's encoding/json decodes an unpaired surrogate escape to U+FFFD; a surrogate left in a Python
    string makes every later UTF-8 encode (certificate subjects, logs, responses) fail."""
    assert loads(escaped) == text
    loads(escaped).encode("utf-8")


def test_lone_surrogates_in_keys_and_nested_values() -> None:
    doc = loads('{"\\ud800": ["\\udc00", {"CN": "a\\ud800"}]}')
    assert doc == {"\ufffd": ["\ufffd", {"CN": "a\ufffd"}]}


@pytest.mark.parametrize(
    ("value", "struct", "field", "go_type", "message"),
    [
        (
            "x",
            "SigningProfile",
            "signing.default.usages",
            "[]string",
            "json: cannot unmarshal string into Go struct field SigningProfile.signing.default.usages of type []string",
        ),
        (
            5,
            "CertificateRequest",
            "CN",
            "string",
            "json: cannot unmarshal number into Go struct field CertificateRequest.CN of type string",
        ),
        ([], "", "", "csr.CertificateRequest", "json: cannot unmarshal array into Go value of type csr.CertificateRequest"),
        ({}, "Subject", "CN", "string", "json: cannot unmarshal object into Go struct field Subject.CN of type string"),
        (True, "KeyRequest", "size", "int", "json: cannot unmarshal bool into Go struct field KeyRequest.size of type int"),
        (
            1.5,
            "CAConstraint",
            "max_path_len",
            "int",
            "json: cannot unmarshal number 1.5 into Go struct field CAConstraint.max_path_len of type int",
        ),
    ],
)
def test_type_errors(value: object, struct: str, field: str, go_type: str, message: str) -> None:
    assert str(type_error(value, struct, field, go_type)) == message


def test_keys_match_exactly_then_case_insensitively() -> None:
    fields = ["CN", "names", "hosts"]
    assert fold_keys({"cn": "a", "NAMES": [], "Hosts": ["h"]}, fields) == {"CN": "a", "names": [], "hosts": ["h"]}
    # Go decodes keys in document order, so whichever spelling comes last wins
    assert fold_keys({"CN": "exact", "cn": "folded"}, fields) == {"CN": "folded"}
    assert fold_keys({"cn": "folded", "CN": "exact"}, fields) == {"CN": "exact"}
    assert fold_keys({"unknown": 1}, fields) == {}


def test_later_keys_overwrite_earlier_ones() -> None:
    assert fold_keys({"cn": "first", "Cn": "second"}, ["CN"]) == {"CN": "second"}


def test_case_insensitive_matching_prefers_the_first_declared_field() -> None:
    # Go matches a folded key against fields in declaration order: "EXPIRY" goes to "expiry", not "Expiry"
    assert fold_keys({"EXPIRY": "1h"}, ["expiry", "Expiry"]) == {"expiry": "1h"}
    assert fold_keys({"Expiry": 5}, ["expiry", "Expiry"]) == {"Expiry": 5}


# ---------------------------------------------------------------------------------------------------------
# time.Time (RFC 3339) and "2006-01-02": the same syntax on every Python version (fromisoformat's is not)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-01T00:00:00Z", dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)),
        ("2031-01-01T00:00:00+01:00", dt.datetime(2030, 12, 31, 23, tzinfo=dt.timezone.utc)),
        ("2030-01-01T00:00:00.5Z", dt.datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=dt.timezone.utc)),
        ("2030-01-01T00:00:00.123456789123-00:30", dt.datetime(2030, 1, 1, 0, 30, 0, 123456, tzinfo=dt.timezone.utc)),
    ],
)
def test_parse_time(text: str, expected: dt.datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2030-01-01", "2030-01-01T00:00Z", "2030-01-01 00:00:00Z", "2030-01-01T00:00:00", "20300101T000000Z", "2030-01-01T00:00:00,5Z",
     "2030-01-01T00:00:00+0100", "2030-02-30T00:00:00Z", "2030-01-01T00:00:00+01:60", "0001-01-01T00:00:00+01:00"],
)  # fmt: skip
def test_parse_time_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(JSONDecodeError, match="parsing time"):
        parse_time(text)


def test_parse_date() -> None:
    assert parse_date("2024-02-03") == dt.datetime(2024, 2, 3, tzinfo=dt.timezone.utc)
    for text in ("2024-2-3", "20240203", "2024-W05-6", "2024-02-30"):
        with pytest.raises(ValueError):
            parse_date(text)


# -- error offsets and positions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "offset", "position"),
    [
        (b'{"a": 1,}', 9, (1, 9)),  # Go: Offset 9, the "}" is the 9th byte
        (b'{"a":\n  x}', 9, (2, 3)),
        (b'{"a": [1, 2', 11, (1, 12)),  # unexpected end: just past the last byte
        (b"[1] 2", 5, (1, 5)),  # after the top-level value
        ('{"é": tru}'.encode(), 11, (1, 10)),  # columns count characters, not bytes
    ],
)
def test_a_syntax_error_carries_gos_offset_and_a_position(doc: bytes, offset: int, position: tuple[int, int]) -> None:
    with pytest.raises(JSONDecodeError) as exc:
        loads(doc)
    assert exc.value.offset == offset
    assert syntax_position(doc) == position
    assert error_position(doc, str(exc.value)) == position


def test_a_type_error_is_located_by_its_field_path() -> None:
    doc = b'{"a": {"b": [{"c": 1}, {"c": "x"}]},\n "c": true}'
    assert error_position(doc, "json: cannot unmarshal string into Go struct field T.a.b.c of type int") == (1, 30)
    assert error_position(doc, "json: cannot unmarshal bool into Go struct field T.c of type string") == (2, 7)
    assert error_position(doc, "json: cannot unmarshal array into Go value of type T") is None  # the root is an object
    assert error_position(b"[1]", "json: cannot unmarshal array into Go value of type T") == (1, 1)
    assert error_position(doc, "something else entirely") is None
    assert error_position(b'{"a": 1.5}', "json: cannot unmarshal number 1.5 into Go struct field T.a of type int") == (1, 7)


def test_locating_never_recurses() -> None:
    deep = b'{"a":' * 5000 + b'"x"' + b"}" * 5000
    assert locate(deep, ["a"], "string") == 5 * 5000
