"""JSON-schema validation of request bodies and query strings, with Nova's messages."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from novalet import exceptions


class ValidationError(exceptions.Invalid):
    msg_fmt = "%(reason)s"


_cache: dict[int, Draft202012Validator] = {}


def validate(body: Any, schema: dict[str, Any]) -> None:
    """Raise a 400 naming the first offending field and value."""
    validator = _cache.get(id(schema))
    if validator is None:
        validator = _cache[id(schema)] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    field = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        raise ValidationError(reason=error.message)
    if error.validator == "required" or not field:
        raise ValidationError(reason=f"Invalid input: {error.message}")
    raise ValidationError(reason=f"Invalid input for field/attribute {field}. "
                          f"Value: {_short(error.instance)}. {error.message}")


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 100 else text[:97] + "..."


# Reusable fragments
NAME = {"type": "string", "minLength": 1, "maxLength": 255,
        "pattern": r"^(?! )[^\x00-\x1f]*(?<! )$"}
UUID = {"type": "string", "format": "uuid"}
METADATA = {"type": "object", "maxProperties": 128,
            "patternProperties": {"^[^\x00-\x1f]{1,255}$": {"type": "string", "maxLength": 255}},
            "additionalProperties": False}
BOOLEAN = {"type": ["boolean", "string"],
           "enum": [True, False, "True", "False", "true", "false", "1", "0", "yes", "no",
                    "on", "off", "TRUE", "FALSE"]}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes", "on")


def query_int(raw: str | None, name: str, minimum: int = 0) -> int | None:
    """A non-negative integer query parameter, or a 400 saying what is wrong."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(reason=f"Invalid input for query parameters {name}. "
                              f"Value: {raw}. '{raw}' is not an integer") from None
    if value < minimum:
        raise ValidationError(reason=f"Invalid input for query parameters {name}. "
                              f"Value: {raw}. {value} is less than the minimum of {minimum}")
    return value
