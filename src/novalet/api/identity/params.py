"""Query-string parameters as Keystone reads them."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from novalet.api.validation import ValidationError

_FALSE = ("0", "false", "no", "off")
_TRUE = ("", "1", "true", "yes", "on")


def flag(query: QueryParams, name: str) -> bool:
    """A parameter that is on when present (`?include_names`), unless set to a false value."""
    return name in query and query[name].lower() not in _FALSE


def optional_bool(query: QueryParams, name: str) -> bool | None:
    """None when absent; a 400 naming the parameter when it is not a boolean."""
    if name not in query:
        return None
    value = query[name].lower()
    if value not in _FALSE + _TRUE:
        raise ValidationError(reason=f"Invalid input for query parameter {name}. "
                              f"Value: {query[name]}. Expected a boolean.")
    return value not in _FALSE
