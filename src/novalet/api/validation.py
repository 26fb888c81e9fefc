"""JSON-schema validation of request bodies and query strings, with Nova's messages."""

from __future__ import annotations

import contextvars
import functools
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import jsonschema
from jsonschema import Draft202012Validator

from novalet import exceptions
from novalet.db.limits import BIGINT_MAX, MAX_DIGITS

if TYPE_CHECKING:
    from novalet.api.handler import ApiRequest


class ValidationError(exceptions.Invalid):
    msg_fmt = "%(reason)s"


_INTEGER_STRING = re.compile(r"^-?[0-9]+$")


def _bound(keyword: str) -> Callable[..., Any]:
    """`minimum`/`maximum` that also hold for integers written as strings ("5"),
    which Nova's schemas accept where a number is meant: JSON Schema's own apply
    to numbers only, so "0" would pass a minimum of 1."""
    check = Draft202012Validator.VALIDATORS[keyword]

    def bounded(validator: Any, bound: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, str) and _INTEGER_STRING.match(instance):
            if len(instance) > MAX_DIGITS:  # past any bound; int() refuses 4300 digits
                negative = instance.startswith("-")
                if keyword == "maximum" and not negative:
                    yield jsonschema.ValidationError(
                        f"{_short(instance)} is greater than the maximum of {bound}")
                elif keyword == "minimum" and negative:
                    yield jsonschema.ValidationError(
                        f"{_short(instance)} is less than the minimum of {bound}")
                else:  # beyond any database integer, whatever the other bound
                    yield jsonschema.ValidationError(f"{_short(instance)} is out of range")
                return
            instance = int(instance)
        yield from check(validator, bound, instance, schema)
    return bounded


_Validator = jsonschema.validators.extend(
    Draft202012Validator, {"minimum": _bound("minimum"), "maximum": _bound("maximum")})


def _printable(char: str) -> bool:
    """Nova's printable characters: letters, marks, numbers, punctuation, symbols
    and horizontal spaces (Zs); not controls, format characters, surrogates,
    private use or line and paragraph separators. Like Nova, only the Basic
    Multilingual Plane."""
    category = unicodedata.category(char)
    return (ord(char) < 0xFFFF and category[0] != "C"
            and (category[0] != "Z" or category == "Zs"))


def is_name(value: str, exclude: str = "") -> bool:
    """Nova's `name` format: printable characters (none of `exclude`), the first
    and the last not a space. The empty string passes: minLength refuses it."""
    if not value:
        return True
    if any(c in exclude or not _printable(c) for c in value):
        return False
    return unicodedata.category(value[0]) != "Zs" and unicodedata.category(value[-1]) != "Zs"


# The drafts' formats (uuid, ipv4, date-time...) and Nova's name formats.
FORMATS = jsonschema.FormatChecker()
FORMATS.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
FORMATS.checks("name")(lambda value: not isinstance(value, str) or is_name(value))
FORMATS.checks("az_name")(
    lambda value: not isinstance(value, str) or is_name(value, exclude=":"))
FORMATS.checks("name_with_leading_trailing_spaces")(
    lambda value: not isinstance(value, str) or (
        all(map(_printable, value)) and any(unicodedata.category(c) != "Zs" for c in value)))
# Nova's messages for them (it words the whole error this way).
_NAME_REASONS = {
    "name": "printable characters. Can not start or end with whitespace.",
    "az_name": "printable characters except :.Can not start or end with whitespace.",
    "name_with_leading_trailing_spaces":
        "printable characters with at least one non space character",
}

# Validators by schema identity; the schema is kept with its validator, so an id
# is never reused while cached. Schemas are module constants or memoized per
# microversion; the cap guards against one built per request.
_cache: dict[int, tuple[dict[str, Any], Any]] = {}
_CACHE_MAX = 2048


def _validator(schema: dict[str, Any]) -> Any:
    entry = _cache.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        entry = _cache[id(schema)] = (schema, _Validator(schema, format_checker=FORMATS))
    return entry[1]


# Set for requests to the legacy /v2 endpoint (api/compute/legacy_v2.py): there, as
# in Nova, a body's unknown properties are dropped instead of refused.
RELAXED: contextvars.ContextVar[bool] = contextvars.ContextVar("relaxed", default=False)


def validate(body: Any, schema: dict[str, Any], what: str = "field/attribute") -> None:
    """Raise a 400 naming the first offending field and value (`what` is
    "query parameters" for a query string, as Nova words it)."""
    validator = _validator(schema)
    if what == "field/attribute" and RELAXED.get():
        _drop_unknown_properties(validator, body)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "format" and error.validator_value in _NAME_REASONS:
        raise ValidationError(reason="An invalid 'name' value was provided. The name "
                              f"must be: {_NAME_REASONS[error.validator_value]}")
    if error.validator == "additionalProperties":
        if what != "field/attribute" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            if extra:
                raise ValidationError(reason=f"Invalid input for {what} {extra[0]}. "
                                      f"{error.message}")
        raise ValidationError(reason=error.message)
    if error.validator == "required" or not where:
        raise ValidationError(reason=f"Invalid input: {error.message}")
    detail, shown = error.message, repr(error.instance)
    if len(shown) > 100:  # "'aaa…' is too long" would repeat a huge value
        detail = detail.replace(shown, _short(shown))
    raise ValidationError(reason=f"Invalid input for {what} {where}. "
                          f"Value: {_short(error.instance)}. {detail}")


def _drop_unknown_properties(validator: Any, body: Any) -> None:
    """Nova's relaxed validation: remove the properties an object's schema doesn't
    name, unless it has patternProperties (whose misses stay errors)."""
    for error in list(validator.iter_errors(body)):
        schema, instance = error.schema, error.instance
        if error.validator != "additionalProperties" or not isinstance(instance, dict) \
                or schema.get("patternProperties"):
            continue
        for name in set(instance) - set(schema.get("properties", {})):
            del instance[name]


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 100 else text[:97] + "..."


# Reusable fragments
# Nova's parameter_types.name and .metadata.
NAME = {"type": "string", "format": "name", "minLength": 1, "maxLength": 255}
NAME_WITH_SPACES = {"type": "string", "format": "name_with_leading_trailing_spaces",
                    "minLength": 1, "maxLength": 255}
UUID = {"type": "string", "format": "uuid"}
METADATA_KEY = r"^[a-zA-Z0-9-_:. ]{1,255}$"
# No item count here: over the metadata_items quota is a 403 (Nova's), counted by
# the domain (compute/quotas.py); the request body limit bounds an unlimited quota.
METADATA = {"type": "object",
            "patternProperties": {METADATA_KEY: {"type": "string", "maxLength": 255}},
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
    if value > QUERY_INT_MAX:  # an offset past a database integer fails in the database
        raise ValidationError(reason=f"Invalid input for query parameters {name}. "
                              f"Value: {raw}. {value} is greater than the maximum of "
                              f"{QUERY_INT_MAX}")
    return value


QUERY_INT_MAX = BIGINT_MAX


# --- Declared schemas: what each handler accepts, read by the validator and the
# OpenAPI generator (api/compute/openapi.py). ---

AtLeast = Callable[[str], bool]
# One schema; a table of (first microversion, schema), oldest first; or a function
# of the request's `at_least` choosing one.
Spec = (dict[str, Any] | Sequence[tuple[str, dict[str, Any]]]
        | Callable[[AtLeast], dict[str, Any]])
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
_ATTRIBUTE = "__novalet_schemas__"


@dataclass(frozen=True)
class Declared:
    """A handler's inputs: its body (or, for an action resource, one body per action
    key) and its query string. No body and no query means the handler takes neither
    (query parameters are then ignored, as Nova ignores them)."""

    body: Spec | None = None
    query: Spec | None = None
    actions: Mapping[str, Spec] = field(default_factory=dict)
    body_optional: bool = False


def resolve(spec: Spec | None, at_least: AtLeast) -> dict[str, Any] | None:
    """The schema of `spec` that applies at a microversion."""
    if spec is None or isinstance(spec, dict):
        return spec
    if callable(spec):
        return spec(at_least)
    chosen = spec[0][1]
    for first, schema in spec:
        if at_least(first):
            chosen = schema
    return chosen


def accepts(*, body: Spec | None = None, query: Spec | None = None,
            actions: Mapping[str, Spec] | None = None,
            body_optional: bool = False) -> Callable[[H], H]:
    """Declare what a handler accepts. A declared query schema is enforced here,
    before the handler runs (so before policy, as in Nova); bodies are validated by
    the handler, which reads them."""
    declared = Declared(body, query, dict(actions or {}), body_optional)

    def wrap(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(req: ApiRequest, *args: Any) -> Any:
            if req.raw.method == "GET" and req.at_least(STRICT_QUERY):
                validate_strict_query(req, query)
            elif query is not None:
                validate_query(req, query)
            return await handler(req, *args)

        setattr(checked, _ATTRIBUTE, declared)
        return checked  # type: ignore[return-value]

    return wrap


def declared(handler: Callable[..., Any]) -> Declared | None:
    """What `handler` declared with @accepts, or None if it declared nothing."""
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, Declared) else None


def validate_query(req: ApiRequest, spec: Spec) -> None:
    """Check the query string (each parameter's last value, a string) at the
    request's microversion."""
    schema = resolve(spec, req.at_least)
    if schema is not None:
        validate(dict(req.query), schema, "query parameters")


# From this compute microversion every GET refuses query parameters it does not
# know (Nova 2.102): those of a handler that declares none, and names its query
# schema does not list.
STRICT_QUERY = "2.102"


def validate_strict_query(req: ApiRequest, spec: Spec | None) -> None:
    """validate_query, with unknown names a 400 whatever the schema says."""
    schema = resolve(spec, req.at_least) or {"type": "object", "properties": {}}
    validate(dict(req.query), {**schema, "additionalProperties": False},
             "query parameters")


def query_schema(properties: Mapping[str, dict[str, Any]], strict: bool = False
                 ) -> dict[str, Any]:
    """A query-string schema: each value is a string; unknown names are ignored
    unless `strict` (Nova's 2.75 rule for many lists)."""
    return {"type": "object", "properties": dict(properties),
            "additionalProperties": not strict}


# Query values arrive as text.
QUERY_INT = {"type": "string", "pattern": r"^[0-9]+$", "maximum": QUERY_INT_MAX}
QUERY_STRING = {"type": "string"}
