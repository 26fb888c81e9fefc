"""Typed, versioned models of what crosses the bus.

A model is a dataclass deriving from BusModel with a VERSION 'major.minor'.
Rules, so that services of two neighbouring releases understand each other:

- A field added in a minor version has a default, and is named in ADDED with
  that version. A receiver fills it from the default when an older sender left
  it out; `to_dict(version)` leaves it out for an older receiver (a backport).
- A receiver ignores fields it does not know (a newer sender's additions).
- Removing or retyping a field is a new major version.

Every model's fields and types are fingerprinted in tests/unit/rpc/
test_models.py: a change without a VERSION bump fails there.
"""

from __future__ import annotations

import dataclasses
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
        return cls(**{f.name: data[f.name] for f in fields if f.name in data})


def all_models() -> list[type[BusModel]]:
    """Every BusModel subclass imported so far, by name."""
    found: list[type[BusModel]] = []
    todo = list(BusModel.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")
