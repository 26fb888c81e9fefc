"""Typed, versioned models of what crosses the bus.

A model is a dataclass deriving from BusModel with a VERSION 'major.minor'.
Rules, so that services of two neighbouring releases understand each other:

- A field added in a minor version has a default, and is named in ADDED with
  that version. A receiver fills it from the default when an older sender left
  it out; `to_dict(version)` leaves it out for an older receiver (a backport).
- A receiver ignores fields it does not know (a newer sender's additions).
- Removing or retyping a field is a new major version, except typing a field
  that carried plain data (a dict) with a model of exactly that data's keys: the
  wire form stays the same, so that is a minor bump of the container (an older
  receiver reads the part as the dict it knew; `from_dict` builds the part from
  an older sender's dict). A receiver of the release before a model existed may
  need it untagged: `to_dict(tagged=False)`.
- Besides JSON's kinds, a field may be a datetime (carried as ISO 8601, read back
  as naive UTC), bytes (base64) or a StrEnum / IntEnum (its value).
- A model with CHECKED = True (what an untrusted sender, a compute host, writes
  or answers with) has every field's value checked against its type by
  `from_dict`, its parts' too; a wrong kind is refused (IncompatibleMessage,
  400) before anything uses it.
- A field may hold other models (a part, a list of parts, or an optional
  part): `from_dict` builds them with their own `from_dict` (or, in a CHECKED
  container, `read(data, checked=True)`). A part travels
  untagged inside its container and is versioned with it: change a part and
  bump both the part's and every container's VERSION (the fingerprint test
  counts a part's fields in its containers' fingerprints, so it insists).
  `to_dict(version)` backports only the container's own ADDED fields: a field
  added to a part reaches older receivers, which ignore it, except the
  hand-written parsers of the release before typed network models
  (NetworkOnHost(**data) there): do not add part fields until that release is
  out of the upgrade path, or backport the part for it.

Every model's fields and types are fingerprinted in tests/unit/rpc/
test_models.py: a change without a VERSION bump fails there.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any, ClassVar, TypeVar

from novalet import exceptions
from novalet.common.timeutils import parse_isotime
from novalet.rpc.bus import parse_version

M = TypeVar("M", bound="BusModel")


class IncompatibleMessage(exceptions.Invalid):
    msg_fmt = "Incompatible %(model)s %(version)s: %(reason)s"


class BusModel:
    """Mixin of the bus models (each also a @dataclass)."""

    VERSION: ClassVar[str] = "1.0"
    # field -> the VERSION that added it (left out for receivers older than that).
    ADDED: ClassVar[dict[str, str]] = {}
    # Check every field's value against its type in from_dict (see the module doc).
    CHECKED: ClassVar[bool] = False

    def to_dict(self, version: str | None = None, *, tagged: bool = True) -> dict[str, Any]:
        """The model as JSON-able data, tagged with its version (unless not
        `tagged`: as a receiver from before the model existed knew it); for an
        older receiver (`version`, same major) without the fields added after it."""
        target = version or self.VERSION
        if parse_version(target)[0] != parse_version(self.VERSION)[0] or \
                parse_version(target) > parse_version(self.VERSION):
            raise IncompatibleMessage(model=type(self).__name__, version=target,
                                      reason=f"this side has {self.VERSION}")
        data = self.wire_fields()
        for name, added in self.ADDED.items():
            if parse_version(added) > parse_version(target):
                data.pop(name, None)
        if tagged:
            data["_version"] = target
        return data

    def wire_fields(self) -> dict[str, Any]:
        """Every field as JSON-able data, parts untagged (they go at their
        container's version)."""
        return {f.name: _encode(getattr(self, f.name))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """The model from data of any version of the same major: fields it lacks get
        their defaults, fields this side does not know are ignored. Untagged data
        is 1.0 (what senders from before versioned models sent)."""
        return cls.read(data, cls.CHECKED)

    @classmethod
    def read(cls: type[M], data: dict[str, Any], checked: bool) -> M:
        """from_dict, checking every value's kind when `checked` (a CHECKED
        container checks its parts too)."""
        if not isinstance(data, dict):
            raise IncompatibleMessage(model=cls.__name__, version="?",
                                      reason=f"not an object: {data!r}")
        version = str(data.get("_version", "1.0"))
        if parse_version(version)[0] != parse_version(cls.VERSION)[0]:
            raise IncompatibleMessage(model=cls.__name__, version=version,
                                      reason=f"this side speaks {cls.VERSION}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        missing = [f.name for f in fields if f.name not in data
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise IncompatibleMessage(model=cls.__name__, version=version,
                                      reason=f"missing {', '.join(missing)}")
        parts = part_fields(cls)
        hints = _hints(cls)
        values = {}
        for f in fields:
            if f.name not in data:
                continue
            try:
                values[f.name] = _build(parts[f.name], data[f.name], checked) \
                    if f.name in parts else _decode(hints[f.name], data[f.name], checked)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise IncompatibleMessage(
                    model=cls.__name__, version=version,
                    reason=f"bad {f.name} ({data[f.name]!r}): {exc}") from None
        return cls(**values)


# How a field holds parts: ("one", Part), ("list", Part) or ("optional", Part).
_Holding = tuple[str, type["BusModel"]]


_parts: dict[type, dict[str, _Holding]] = {}


def part_fields(cls: type) -> dict[str, _Holding]:
    """The fields of `cls` that hold other models, and how (found once per class)."""
    found = _parts.get(cls)
    if found is None:
        found = _parts[cls] = {}
        for name, hint in typing.get_type_hints(cls).items():
            holding = part_of(hint)
            if holding is not None:
                found[name] = holding
    return found


def part_of(hint: Any) -> _Holding | None:
    """How a field of type `hint` holds a model: Part, list[Part] or Part | None."""
    if isinstance(hint, type) and issubclass(hint, BusModel):
        return ("one", hint)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is list and len(args) == 1 and isinstance(args[0], type) and \
            issubclass(args[0], BusModel):
        return ("list", args[0])
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        if isinstance(inner, type) and issubclass(inner, BusModel):
            return ("optional", inner)
    return None


def _build(holding: _Holding, value: Any, checked: bool) -> Any:
    how, part = holding
    if value is None and how == "optional":
        return None
    if how == "list":
        if not isinstance(value, list):
            raise TypeError("not a list")
        return [_part(part, v, checked) for v in value]
    return _part(part, value, checked)


def _part(part: type[BusModel], value: Any, checked: bool) -> BusModel:
    # a part travels untagged, at its container's version: it is the part's own
    if isinstance(value, part):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"not a {part.__name__}")
    data = {"_version": part.VERSION, **value}
    # a checked container checks its parts even when they are not CHECKED themselves
    return part.read(data, True) if checked and not part.CHECKED else part.from_dict(data)


_hints_of: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    found = _hints_of.get(cls)
    if found is None:
        found = _hints_of[cls] = typing.get_type_hints(cls)
    return found


def _encode(value: Any) -> Any:
    """A field's value as JSON-able data."""
    if isinstance(value, BusModel):
        return value.wire_fields()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_encode(v) for v in value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(hint: Any, value: Any, checked: bool) -> Any:
    """A field's value from its data: datetimes, bytes and enums decoded; when
    `checked`, every value checked against `hint` (TypeError or ValueError)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:
            return _decode(kinds[0], value, checked)
        if checked and not any(_fits(k, value) for k in kinds):
            raise TypeError(f"not a {hint}")
        return value
    if hint is dt.datetime:
        return value if isinstance(value, dt.datetime) else parse_isotime(value)
    if hint is bytes:
        return value if isinstance(value, bytes) else \
            base64.b64decode(value.encode(), validate=True)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if checked and isinstance(value, bool):
            raise TypeError(f"not a {hint.__name__}")
        return hint(value)
    if origin is list and isinstance(value, list):
        return [_decode(args[0], v, checked) for v in value] if args else value
    if origin is dict and isinstance(value, dict):
        if checked and args and not all(isinstance(k, str) for k in value):
            raise TypeError("keys must be strings")
        return {k: _decode(args[1], v, checked) for k, v in value.items()} \
            if args else value
    if checked and not _fits(hint, value):
        raise TypeError(f"not a {getattr(hint, '__name__', hint)}")
    return value


def _fits(hint: Any, value: Any) -> bool:
    """Whether `value` is of the plain kind `hint` (JSON's kinds; int is no bool, a
    float may come as an int)."""
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and isinstance(value, origin)


def all_models() -> list[type[BusModel]]:
    """Every BusModel subclass imported so far, by name."""
    found: list[type[BusModel]] = []
    todo = list(BusModel.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")
