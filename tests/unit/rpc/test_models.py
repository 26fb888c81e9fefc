"""Typed bus models: a change of fields without a version bump fails here, and
senders and receivers a minor version apart understand each other."""

import dataclasses
import datetime as dt
import hashlib
import importlib
import pkgutil
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, ClassVar

import orjson
import pytest

import novalet
from novalet.rpc.bus import parse_version
from novalet.rpc.models import BusModel, IncompatibleMessage, part_fields, all_models

# model -> (VERSION, fingerprint of its fields and their types). Change a model,
# bump its VERSION (rpc/models.py says how), then record both here.
RECORDED = {
    "novalet.compute.flavor_payload.FlavorPayload": ("1.0", "07bea3ac"),
    "novalet.compute.instance_changes.InstanceChanges": ("1.0", "abc458cc"),
    "novalet.compute.diagnostics.CpuDiagnostics": ("1.0", "1c17f23e"),
    "novalet.compute.diagnostics.Diagnostics": ("1.0", "668f7803"),
    "novalet.compute.diagnostics.DiskDiagnostics": ("1.0", "409948e5"),
    "novalet.compute.diagnostics.MemoryDiagnostics": ("1.0", "41a4799c"),
    "novalet.compute.diagnostics.NicDiagnostics": ("1.0", "63ab31e8"),
    "novalet.compute.move_payloads.MoveOrder": ("1.1", "39f1da45"),
    "novalet.compute.move_payloads.MoveTarget": ("1.0", "4508f91e"),
    "novalet.compute.move_payloads.MoveRequest": ("1.0", "db227ae5"),
    "novalet.compute.move_payloads.MoveSpec": ("1.1", "fb4468f9"),
    "novalet.compute.move_payloads.ProgressReport": ("1.0", "2e2a54dc"),
    "novalet.compute.payloads.ComputeNodePayload": ("1.1", "ed8d4e07"),
    "novalet.compute.payloads.Destination": ("1.0", "aebef802"),
    "novalet.compute.payloads.ExternalEvent": ("1.0", "3a3e7750"),
    "novalet.compute.payloads.InstancePayload": ("1.3", "45d6d24c"),
    "novalet.compute.payloads.Inventory": ("1.0", "fb3e77db"),
    "novalet.compute.payloads.RequestSpec": ("1.2", "c8dd8883"),
    "novalet.compute.scheduling_group.SchedulingGroup": ("1.0", "424157b3"),
    "novalet.console.types.Authorization": ("1.0", "c18e6263"),
    "novalet.console.types.ConsoleTarget": ("1.0", "8f0b7009"),
    "novalet.metadata.content.InstanceMetadata": ("1.0", "132901ae"),
    "novalet.compute.recreate_requests.EvacuateRequest": ("1.0", "2680905e"),
    "novalet.compute.recreate_requests.UnshelveRequest": ("1.0", "b2c916d3"),
    "novalet.network.model.FloatingNat": ("1.0", "98015b80"),
    # 1.1 is this release's (security groups' egress); port_filters joined it in
    # the same release, before any 1.1 shipped, so no further bump
    "novalet.network.model.HostNetworkState": ("1.2", "74240c55"),
    "novalet.network.model.InstanceNet": ("1.1", "3ebe459d"),
    "novalet.network.model.NetworkOnHost": ("1.1", "56e15da6"),
    "novalet.network.model.PortFilter": ("1.0", "c513e2ca"),
    "novalet.network.model.SecurityRule": ("1.1", "48f45853"),
    "novalet.network.model.Vif": ("1.0", "bb23b7b5"),
}


def fingerprint(cls: type) -> str:
    """Of the fields and their types, and of the parts (models held in fields) with
    theirs, so that a change to a part changes its containers' fingerprints too."""
    fields = [(f.name, str(f.type)) for f in dataclasses.fields(cls)]
    parts = sorted({name(held[1]) + ":" + fingerprint(held[1])
                    for held in part_fields(cls).values()})
    data = repr(fields) + (repr(parts) if parts else "")
    return hashlib.sha256(data.encode()).hexdigest()[:8]


def name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# Every module of the package, so that a model defined anywhere is found.
for _module in pkgutil.walk_packages(novalet.__path__, "novalet."):
    if ".db.migrations" not in _module.name:
        importlib.import_module(_module.name)
MODELS = [m for m in all_models() if m.__module__.startswith("novalet.")]


def test_every_model_is_recorded() -> None:
    assert sorted(map(name, MODELS)) == sorted(RECORDED)


@pytest.mark.parametrize("cls", MODELS, ids=name)
def test_fields_match_recorded_version(cls: type[BusModel]) -> None:
    version, recorded = RECORDED[name(cls)]
    assert cls.VERSION == version, "VERSION changed: record the new fingerprint too"
    assert fingerprint(cls) == recorded, (
        f"{cls.__name__} fields changed: bump VERSION and record {fingerprint(cls)}")


@pytest.mark.parametrize("cls", MODELS, ids=name)
def test_fields_added_in_minor_versions_have_defaults(cls: type[BusModel]) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for added, version in cls.ADDED.items():
        f = fields[added]
        assert f.default is not dataclasses.MISSING or \
            f.default_factory is not dataclasses.MISSING, added
        assert parse_version(version) <= parse_version(cls.VERSION)


@dataclass
class Probe(BusModel):
    """A model at 1.2 whose `colour` came in 1.1 and `size` in 1.2."""

    VERSION: ClassVar[str] = "1.2"
    ident: str
    colour: str = "blue"
    size: int = 0
    tags: list[str] = field(default_factory=list)
    ADDED: ClassVar[dict[str, str]] = {"colour": "1.1", "size": "1.2"}


def test_older_sender_gets_the_defaults_of_newer_fields() -> None:
    assert Probe.from_dict({"ident": "a", "_version": "1.0"}) == Probe("a")
    assert Probe.from_dict({"ident": "a"}) == Probe("a")  # untagged: before versions


def test_newer_senders_extra_fields_are_ignored() -> None:
    assert Probe.from_dict({"ident": "a", "_version": "1.7", "shape": "round"}) == Probe("a")


def test_backport_leaves_out_what_the_older_receiver_lacks() -> None:
    probe = Probe("a", colour="red", size=3)
    assert probe.to_dict("1.0") == {"ident": "a", "tags": [], "_version": "1.0"}
    assert probe.to_dict("1.1") == {"ident": "a", "colour": "red", "tags": [],
                                    "_version": "1.1"}
    assert Probe.from_dict(orjson.loads(orjson.dumps(probe.to_dict()))) == probe
    with pytest.raises(IncompatibleMessage):
        probe.to_dict("1.3")  # newer than this side
    with pytest.raises(IncompatibleMessage):
        probe.to_dict("2.0")


def test_other_major_or_missing_required_field_refused() -> None:
    with pytest.raises(IncompatibleMessage, match="speaks 1.2"):
        Probe.from_dict({"ident": "a", "_version": "2.0"})
    with pytest.raises(IncompatibleMessage, match="missing ident") as err:
        Probe.from_dict({"colour": "red"})
    assert err.value.code == 400


@dataclass
class Holder(BusModel):
    """A model holding Probe parts: one, a list, and an optional one."""

    VERSION: ClassVar[str] = "1.0"
    main: Probe
    more: list[Probe] = field(default_factory=list)
    spare: Probe | None = None


def test_parts_are_built_from_their_data() -> None:
    holder = Holder(Probe("a", size=1), [Probe("b"), Probe("c", colour="red")])
    data = orjson.loads(orjson.dumps(holder.to_dict()))
    assert "_version" not in data["main"]  # parts travel at their container's version
    assert Holder.from_dict(data) == holder
    assert Holder.from_dict({"main": {"ident": "a"}, "spare": {"ident": "s"}}) == \
        Holder(Probe("a"), spare=Probe("s"))


def test_a_part_changes_its_containers_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    before = fingerprint(Holder)

    @dataclass
    class Probe2(BusModel):  # Probe with one field more
        VERSION: ClassVar[str] = "1.3"
        ident: str
        weight: int = 0

    monkeypatch.setitem(part_fields(Holder), "main", ("one", Probe2))
    assert fingerprint(Holder) != before


class Colour(StrEnum):
    RED = "red"


class Size(IntEnum):
    SMALL = 1


@dataclass
class Kinds(BusModel):
    """A checked model with a field of each kind the bus carries."""

    VERSION: ClassVar[str] = "1.0"
    CHECKED: ClassVar[bool] = True
    when: dt.datetime
    blob: bytes
    colour: Colour
    size: Size | None = None
    ratio: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)
    counts: list[int] = field(default_factory=list)
    anything: Any = None
    part: Probe | None = None


def test_datetimes_bytes_and_enums_travel_as_json() -> None:
    kinds = Kinds(dt.datetime(2026, 12, 7, 9, 30), b"\x00\xff", Colour.RED, Size.SMALL,
                  2, {"a": "b"}, [1, 2], {"x": [1]}, Probe("p"))
    data = orjson.loads(orjson.dumps(kinds.to_dict()))
    assert data["when"] == "2026-12-07T09:30:00"
    assert data["blob"] == "AP8="
    assert (data["colour"], data["size"]) == ("red", 1)
    again = Kinds.from_dict(data)
    assert again == kinds
    assert isinstance(again.colour, Colour) and isinstance(again.size, Size)
    # an aware time is read as naive UTC, as the database keeps it
    assert Kinds.from_dict({**data, "when": "2026-12-07T10:30:00+01:00"}).when == \
        dt.datetime(2026, 12, 7, 9, 30)


@pytest.mark.parametrize("change, field_name", [
    ({"when": "soon"}, "when"), ({"blob": "not base64!"}, "blob"),
    ({"colour": "green"}, "colour"), ({"size": True}, "size"), ({"size": 7}, "size"),
    ({"ratio": "1.5"}, "ratio"), ({"labels": {"a": 1}}, "labels"),
    ({"labels": ["a"]}, "labels"), ({"counts": [1, "2"]}, "counts"),
    ({"counts": [True]}, "counts"), ({"part": "p"}, "part"),
    ({"part": {"ident": 3}}, "ident"),
])
def test_a_checked_model_refuses_values_of_the_wrong_kind(
        change: dict[str, Any], field_name: str) -> None:
    good = {"when": "2026-12-07T09:30:00", "blob": "AA==", "colour": "red"}
    assert Kinds.from_dict(good).colour is Colour.RED
    with pytest.raises(IncompatibleMessage, match=f"bad {field_name}") as err:
        Kinds.from_dict({**good, **change})
    assert err.value.code == 400


def test_an_unchecked_model_passes_plain_values_through() -> None:
    assert Probe.from_dict({"ident": 3}).ident == 3  # type: ignore[comparison-overlap]


def test_untagged_is_what_a_release_before_the_model_knew() -> None:
    probe = Probe("a", colour="red", size=3)
    assert probe.to_dict("1.1", tagged=False) == {"ident": "a", "colour": "red",
                                                  "tags": []}
    assert Probe.from_dict(probe.to_dict("1.0", tagged=False)) == Probe("a")


@dataclass
class Times(BusModel):
    """An unchecked model with datetimes inside a list and a map."""

    VERSION: ClassVar[str] = "1.0"
    seen: list[dt.datetime] = field(default_factory=list)
    by_host: dict[str, dt.datetime] = field(default_factory=dict)


def test_nested_datetimes_are_decoded_in_unchecked_models_too() -> None:
    when = dt.datetime(2026, 12, 7, 9, 30)
    times = Times([when], {"h1": when})
    assert Times.from_dict(orjson.loads(orjson.dumps(times.to_dict()))) == times
