"""The edge's pure checks: JSON depth and ranges, Nova's name format, body limits."""

from __future__ import annotations

import sys
import time

import orjson
import pytest

from novalet.api import json_body
from novalet.api.edge import body_limit
from novalet.api.validation import ValidationError, is_name, validate


@pytest.mark.parametrize(("text", "depth"), [
    (b"1", 0), (b"[]", 1), (b"{}", 1), (b'{"a": [1, {"b": []}]}', 4),
    (b'["[[[[", "]]]]]"]', 1),  # brackets in strings are text
    (b'["\\"[[[", 2]', 1),  # an escaped quote does not end the string
    (b'["\\\\", [[]]]', 3),  # an escaped backslash does
    (b"[" * 5000 + b"]" * 5000, 5000),
])
def test_depth_counts_nesting_outside_strings(text: bytes, depth: int) -> None:
    assert json_body.depth(text) == depth


def test_depth_of_deep_text_needs_no_recursion() -> None:
    text = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert 100_000 > sys.getrecursionlimit()
    assert json_body.depth(text) == 100_000
    with pytest.raises(json_body.TooDeep):
        json_body.check_raw(text)


@pytest.mark.serial  # timed
def test_depth_check_of_a_largest_body_is_fast() -> None:
    text = b"[" * 57344 + b"]" * 57344  # a whole 112 KiB body of brackets
    started = time.monotonic()
    with pytest.raises(json_body.TooDeep):
        json_body.check_raw(text)
    assert time.monotonic() - started < 0.1


def test_depth_at_the_limit_passes() -> None:
    json_body.check_raw(b"[" * json_body.MAX_DEPTH + b"]" * json_body.MAX_DEPTH)
    with pytest.raises(json_body.TooDeep):
        json_body.check_raw(b"[" * 65 + b"]" * 65)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_integers_past_signed_64_bits_are_refused(value: int) -> None:
    text = orjson.dumps({"a": {"ram": [value]}}) if value < 2**64 else b""
    with pytest.raises(json_body.OutOfRange, match=f"a/ram/0. Value: {value}"):
        json_body.check_parsed(text, orjson.loads(text))


def test_integers_in_range_and_digit_strings_pass() -> None:
    for body in ({"a": 2**63 - 1}, {"a": -(2**63)}, {"a": "9" * 40}, {"a": True}):
        text = orjson.dumps(body)
        json_body.check_parsed(text, orjson.loads(text))


def test_nul_in_strings_and_keys_is_refused() -> None:
    for body in ({"name": "a\x00"}, {"a\x00": 1}, [["x", "\x00"]]):
        text = orjson.dumps(body)
        with pytest.raises(json_body.NulInBody):
            json_body.check_parsed(text, orjson.loads(text))
    text = b'{"name": "a\\\\u0000"}'  # a backslash, then the text u0000: fine
    json_body.check_parsed(text, orjson.loads(text))


@pytest.mark.parametrize("name", ["a", "a b", "nom à l'été", "a\u00a0b", "日本語", "a-_.:@!",
                                  "x" * 255])
def test_nova_names(name: str) -> None:
    assert is_name(name)


@pytest.mark.parametrize("name", ["a\x00", "a\x07", "a\tb", "a\nb", "a\x7f", "a\x9b",
                                  "a\u200bb", "a\u2028b", "a\ue000b", " a", "a ",
                                  "\u3000a", "a\u00a0", "\U0001f600"])
def test_not_nova_names(name: str) -> None:
    assert not is_name(name)


def test_name_format_has_novas_message() -> None:
    schema = {"type": "object", "properties": {"name": {
        "type": "string", "format": "name", "minLength": 1}}}
    with pytest.raises(ValidationError) as caught:
        validate({"name": "a\x07"}, schema)
    assert caught.value.message == ("An invalid 'name' value was provided. The name must "
                                    "be: printable characters. Can not start or end with "
                                    "whitespace.")
    with pytest.raises(ValidationError, match="non-empty"):
        validate({"name": ""}, schema)


def test_image_data_upload_is_the_only_unlimited_body() -> None:
    assert body_limit("PUT", "/image/v2/images/abc/file", 10) is None
    assert body_limit("GET", "/image/v2/images/abc/file", 10) == 10
    assert body_limit("POST", "/image/v2/images", 10) == 10
    assert body_limit("PUT", "/compute/v2.1/servers/abc/file", 10) == 10


def test_aggregate_rename_may_keep_spaces_but_not_controls() -> None:
    from novalet.api.compute.schemas import aggregates
    validate({"aggregate": {"name": " spaced "}}, aggregates.UPDATE)
    for bad in ("   ", "a\x01"):
        with pytest.raises(ValidationError, match="at least one non space character"):
            validate({"aggregate": {"name": bad}}, aggregates.UPDATE)
    with pytest.raises(ValidationError, match="Can not start or end with whitespace"):
        validate({"aggregate": {"name": " spaced "}}, aggregates.CREATE)
