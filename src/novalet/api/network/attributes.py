"""Request bodies of the network API: each resource's attributes, which may be given
on create (POST) and on update (PUT), and how each value is checked and converted,
with Neutron's 400s (an unknown attribute, a read-only one, a bad value)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from novalet import exceptions

Check = Callable[[str, Any], Any]


class BadBody(exceptions.Invalid):
    neutron_type = "HTTPBadRequest"
    msg_fmt = "%(reason)s"


def _invalid(name: str, reason: str) -> BadBody:
    return BadBody(reason=f"Invalid input for {name}. Reason: {reason}.")


def string(limit: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _invalid(name, f"'{value}' is not a valid string")
        if len(value) > limit:
            raise _invalid(name, f"'{value[:40]}...' exceeds maximum length of {limit}")
        return value
    return check


def optional_string(limit: int) -> Check:
    inner = string(limit)

    def check(name: str, value: Any) -> str | None:
        return None if value is None else str(inner(name, value))
    return check


def boolean(name: str, value: Any) -> bool:
    """Neutron's convert_to_boolean: true/false, 1/0, or their strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise _invalid(name, f"'{value}' cannot be converted to boolean")


def integer(low: int, high: int, *, nullable: bool = False) -> Check:
    def check(name: str, value: Any) -> int | None:
        if value is None and nullable:
            return None
        try:
            number = int(value) if not isinstance(value, (bool, float)) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise _invalid(name, f"'{value}' is not an integer")
        if not low <= number <= high:
            raise _invalid(name, f"'{number}' is not in the range {low} to {high}")
        return number
    return check


def one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise _invalid(name, f"'{value}' is not in {list(choices)}")
        return str(value)
    return check


@dataclass(frozen=True)
class Attr:
    check: Check
    post: bool = True
    put: bool = True


def read_body(body: Any, resource: str, attributes: Mapping[str, Attr], method: str
              ) -> dict[str, Any]:
    """The checked attributes of `{resource: {...}}` for a POST or PUT."""
    if not isinstance(body, dict) or not isinstance(body.get(resource), dict):
        raise BadBody(reason=f"Unable to find '{resource}' in request body; send "
                      f'{{"{resource}": {{...}}}}')
    given: dict[str, Any] = body[resource]
    unknown = [k for k in given if k not in attributes]
    if unknown:
        raise BadBody(reason=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    result: dict[str, Any] = {}
    for name, value in given.items():
        attr = attributes[name]
        if method == "POST" and not attr.post:
            raise BadBody(reason=f"Attribute '{name}' not allowed in POST")
        if method == "PUT" and not attr.put:
            raise BadBody(reason=f"Cannot update read-only attribute {name}")
        result[name] = attr.check(name, value)
    return result
