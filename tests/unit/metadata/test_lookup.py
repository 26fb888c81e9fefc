"""The in-memory lookup and the adapter for plain lookup functions."""

from __future__ import annotations

import pytest

from novalet.metadata.content import InstanceMetadata
from novalet.metadata.lookup import FunctionLookup, InstanceLookup, StaticLookup, addresses_of
from tests.unit.metadata.samples import OTHER_UUID, UUID, make_md, make_vif


async def test_static_lookup_finds_by_every_fixed_ip() -> None:
    md = make_md(vifs=[make_vif(), make_vif(fixed_ip="172.16.0.9")])
    lookup = StaticLookup([md, make_md(uuid=OTHER_UUID, vifs=[make_vif(fixed_ip="10.0.0.6")])])
    assert (await lookup.by_address("172.16.0.9")) is md
    found = await lookup.by_address("10.0.0.6")
    assert found is not None and found.uuid == OTHER_UUID
    assert await lookup.by_address("10.0.0.7") is None
    lookup.remove(UUID)
    assert await lookup.by_address("10.0.0.5") is None


async def test_static_lookup_stores_a_password_once() -> None:
    lookup = StaticLookup([make_md()])
    assert await lookup.set_password(UUID, "first")
    assert not await lookup.set_password(UUID, "second")
    assert lookup.get(UUID).password == "first"
    assert not await lookup.set_password(OTHER_UUID, "nobody")


def test_addresses_of() -> None:
    assert addresses_of(make_md(local_ipv4="10.1.1.1")) == {"10.0.0.5", "10.1.1.1"}
    assert addresses_of(make_md(vifs=[])) == set()


async def test_function_lookup() -> None:
    async def find(address: str) -> InstanceMetadata | None:
        return make_md() if address == "10.0.0.5" else None

    saved: list[tuple[str, str]] = []

    async def save(instance_uuid: str, password: str) -> bool:
        saved.append((instance_uuid, password))
        return True

    bare = FunctionLookup(find)
    assert isinstance(bare, InstanceLookup) and not bare.stores_passwords
    assert (await bare.by_address("10.0.0.5")) is not None
    with pytest.raises(NotImplementedError):
        await bare.set_password(UUID, "x")
    storing = FunctionLookup(find, save)
    assert storing.stores_passwords and await storing.set_password(UUID, "x")
    assert saved == [(UUID, "x")]
