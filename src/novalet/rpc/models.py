"""Typed, versioned models of what crosses the bus.

A model is a dataclass deriving from BusModel with a VERSION 'major.minor'.
Rules, so that services of two neighbouring releases understand each other:

- A field added in a minor version has a default, and is named in ADDED with
  that version. A receiver fills it from the default when an older sender left
  it out; `to_dict(version)` leaves it out for an older receiver (a backport).
- A receiver ignores fields it does not know (a newer sender's additions).
- Removing or retyping a field is a new major version.
- A field may hold other models (a part, a list of parts, or an optional
  part): `from_dict` builds them with their own `from_dict`. A part travels
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

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar

from novalet import exceptions
from novalet.rpc.bus import parse_version

M = TypeVar("M", bound="BusModel")


class IncompatibleMessage(exceptions.Invalid):
    msg_fmt = "Incompatible %(model)s %(version)s: %(reason)s"


class BusModel:
    """Mixin of the bus models (each also a @dataclass)."""

    VERSION: ClassVar[str] = "1.0"
    # field -> the VERSION that added it (left out for receivers older than that).
    ADDED: ClassVar[dict[str, str]] = {}

    def to_dict(self, version: str | None = None) -> dict[str, Any]:
        """The model as JSON-able data, tagged with its version; for an older
        receiver (`version`, same major) without the fields added after it."""
        target = version or self.VERSION
        if parse_version(target)[0] != parse_version(self.VERSION)[0] or \
                parse_version(target) > parse_version(self.VERSION):
            raise IncompatibleMessage(model=type(self).__name__, version=target,
                                      reason=f"this side has {self.VERSION}")
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        for name, added in self.ADDED.items():
            if parse_version(added) > parse_version(target):
                data.pop(name, None)
        data["_version"] = target
        return data  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """The model from data of any version of the same major: fields it lacks get
        their defaults, fields this side does not know are ignored. Untagged data
        is 1.0 (what senders from before versioned models sent)."""
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
        return cls(**{f.name: _build(parts[f.name], data[f.name]) if f.name in parts
                      else data[f.name] for f in fields if f.name in data})


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


def _build(holding: _Holding, value: Any) -> Any:
    how, part = holding
    if value is None and how == "optional":
        return None
    if how == "list":
        return [_part(part, v) for v in value]
    return _part(part, value)


def _part(part: type[BusModel], value: Any) -> BusModel:
    # a part travels untagged, at its container's version: it is the part's own
    if isinstance(value, part):
        return value
    return part.from_dict({"_version": part.VERSION, **value})


def all_models() -> list[type[BusModel]]:
    """Every BusModel subclass imported so far, by name."""
    found: list[type[BusModel]] = []
    todo = list(BusModel.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")
