"""api/validation.py: schema specs by microversion, @accepts, Nova's messages."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from novalet.api.compute import microversions
from novalet.api.validation import (Declared, ValidationError, accepts, declared,
                                    query_int, resolve, validate)

OLD = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True}
NEW = {**OLD, "additionalProperties": False}


def at(version: str) -> Any:
    return microversions.APIVersion.parse(version).at_least


def test_resolve_a_table_picks_the_newest_reached() -> None:
    table = [("2.1", OLD), ("2.75", NEW)]
    assert resolve(table, at("2.1")) is OLD
    assert resolve(table, at("2.74")) is OLD
    assert resolve(table, at("2.75")) is NEW
    assert resolve(table, at("2.100")) is NEW


def test_resolve_a_function_and_a_plain_schema() -> None:
    assert resolve(lambda at_least: NEW if at_least("2.75") else OLD, at("2.75")) is NEW
    assert resolve(OLD, at("2.100")) is OLD
    assert resolve(None, at("2.1")) is None


def test_accepts_records_the_declaration() -> None:
    async def handler(req: Any) -> None:
        return None

    assert declared(handler) is None
    decorated = accepts(body=OLD)(handler)
    assert declared(decorated) == Declared(body=OLD)
    queried = accepts(query=[("2.1", OLD)])(handler)
    assert queried is not handler and declared(queried) == Declared(query=[("2.1", OLD)])


class Req:
    def __init__(self, version: str, query: dict[str, str], method: str = "GET") -> None:
        self.at_least = at(version)
        self.query = query
        self.raw = SimpleNamespace(method=method)


async def test_a_declared_query_is_checked_before_the_handler() -> None:
    calls: list[str] = []

    @accepts(query=[("2.1", OLD), ("2.75", NEW)])
    async def handler(req: Any) -> str:
        calls.append("ran")
        return "ok"

    assert await handler(Req("2.74", {"b": "1"})) == "ok"
    with pytest.raises(ValidationError) as raised:
        await handler(Req("2.75", {"b": "1"}))
    assert raised.value.message == ("Invalid input for query parameters b. Additional "
                                    "properties are not allowed ('b' was unexpected)")
    assert calls == ["ran"]


async def test_from_2_102_a_get_refuses_query_parameters_it_does_not_know() -> None:
    @accepts()
    async def undeclared(req: Any) -> str:
        return "ok"

    @accepts(query=[("2.1", OLD)])  # a lenient schema
    async def lenient(req: Any) -> str:
        return "ok"

    assert await undeclared(Req("2.101", {"x": "1"})) == "ok"
    assert await lenient(Req("2.101", {"b": "1"})) == "ok"
    assert await undeclared(Req("2.102", {"x": "1"}, method="POST")) == "ok"
    assert await undeclared(Req("2.102", {})) == "ok"
    assert await lenient(Req("2.102", {"a": "known"})) == "ok"
    for handler, query in ((undeclared, {"x": "1"}), (lenient, {"b": "1"})):
        with pytest.raises(ValidationError) as raised:
            await handler(Req("2.102", query))
        assert "Additional properties are not allowed" in raised.value.message


@pytest.mark.parametrize(("body", "message"), [
    ({"a": 5}, "Invalid input for field/attribute a. Value: 5. 5 is not of type 'string'"),
    ({"b": 1}, "Additional properties are not allowed ('b' was unexpected)"),
    ([], "Invalid input: [] is not of type 'object'"),
])
def test_body_messages_are_novas(body: Any, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate(body, NEW)
    assert raised.value.message == message


@pytest.mark.parametrize(("raw", "fragment"), [
    ("x", "'x' is not an integer"), ("-1", "less than the minimum of 0"),
    (str(2**63), "greater than the maximum of"),
])
def test_query_int_bounds(raw: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as raised:
        query_int(raw, "limit")
    assert fragment in raised.value.message
    assert query_int(str(2**63 - 1), "limit") == 2**63 - 1
