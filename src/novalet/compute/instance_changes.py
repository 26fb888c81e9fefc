"""The instance fields a compute host sets through the conductor, as a typed model.

A host writes an instance's states and launch time (instance_update,
record_power_change), and its flavor when a resize or its revert finishes. The
conductor takes only these fields, each of its type, and refuses anything else
(400) before the database is touched. Which of them a given host may write, and
when, is authorisation: conductor/host_access.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from novalet import exceptions
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.rpc.models import BusModel, IncompatibleMessage


class InvalidInstanceChange(exceptions.Invalid):
    msg_fmt = "Instance change refused: %(reason)s"


@dataclass(frozen=True)
class InstanceChanges(BusModel):
    """Some instance fields and their new values; only the fields named in `given`
    are written, so a None given is a value (task_state None: no task any more).
    Build one with `of({field: value})`, which fills `given`.

    On the bus it is the given fields alone, tagged: conductor RPC 1.0 to 1.2
    carried the same as an untagged dict ("values"), which reads as 1.0. Unlike
    other models it refuses fields it does not know instead of ignoring them: the
    conductor, which receives it, is upgraded before the hosts, so an unknown
    field is a host's mistake or a host reaching for what is not its to write.
    """

    VERSION: ClassVar[str] = "1.0"
    CHECKED: ClassVar[bool] = True
    vm_state: VmState | None = None
    task_state: TaskState | None = None
    power_state: PowerState | None = None
    launched_at: dt.datetime | None = None
    terminated_at: dt.datetime | None = None
    flavor: FlavorPayload | None = None  # resize writes the new one, revert the old
    given: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _refuse_unknown(self.given)
        empty = sorted(n for n in self.given & _NOT_NULL if getattr(self, n) is None)
        if empty:
            raise InvalidInstanceChange(reason=f"{', '.join(empty)} may not be null")

    @classmethod
    def of(cls, values: InstanceChanges | dict[str, Any]) -> InstanceChanges:
        """Changes from field values (enums, datetimes and a FlavorPayload, or their
        wire forms), checked as the conductor checks them; a model as it is."""
        return values if isinstance(values, InstanceChanges) else cls.from_dict(values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceChanges:
        """From the wire: the given fields (tagged, or an untagged dict of 1.0-1.2
        senders); InvalidInstanceChange (400) for unknown fields or bad values."""
        if not isinstance(data, dict):
            raise InvalidInstanceChange(reason=f"values must be an object, not {data!r}")
        given = given_fields(data)
        _refuse_unknown(given)  # by name, before any value is looked at
        try:
            typed = super().from_dict(data)
        except IncompatibleMessage as exc:
            raise InvalidInstanceChange(reason=exc.kwargs.get("reason", exc.message)) \
                from None
        return dataclasses.replace(typed, given=given)

    def wire_fields(self) -> dict[str, Any]:
        return {k: v for k, v in super().wire_fields().items() if k in self.given}

    def row_values(self) -> dict[str, Any]:
        """The given fields as the instance row stores them (the flavor as its plain
        document, enums as their values)."""
        values: dict[str, Any] = {}
        for name in sorted(self.given):
            value = getattr(self, name)
            if isinstance(value, FlavorPayload):
                value = value.wire_fields()
            elif isinstance(value, (VmState, TaskState)):
                value = str(value.value)
            elif isinstance(value, PowerState):
                value = int(value)
            values[name] = value
        return values


CHANGEABLE = frozenset(f.name for f in dataclasses.fields(InstanceChanges)) - {"given"}
_NOT_NULL = frozenset({"vm_state", "power_state", "flavor"})


def _refuse_unknown(given: frozenset[str]) -> None:
    unknown = sorted(given - CHANGEABLE)
    if unknown:
        raise InvalidInstanceChange(
            reason=f"a host may not set {', '.join(map(str, unknown))} (it may set "
                   f"{', '.join(sorted(CHANGEABLE))})")


def given_fields(data: dict[str, Any]) -> frozenset[str]:
    """The fields the wire form of an InstanceChanges sets (its keys but the tag)."""
    return frozenset(str(k) for k in data if k != "_version")
