"""How the metadata service finds the instance behind a request, and stores the
password a guest posts: the one interface between it and the rest of the cloud."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, runtime_checkable

from novalet.metadata.content import InstanceMetadata

LookupFunction = Callable[[str], Awaitable[InstanceMetadata | None]]
SavePasswordFunction = Callable[[str, str], Awaitable[bool]]


@runtime_checkable
class InstanceLookup(Protocol):
    """What the metadata service needs from the cloud."""

    async def by_address(self, address: str) -> InstanceMetadata | None:
        """The metadata of the instance whose fixed IP is `address` (as the guest's
        packets carry it), or None when no instance of this cloud has it. It must
        never answer with an instance that does not hold the address now."""

    async def set_password(self, instance_uuid: str, password: str) -> bool:
        """Store the (guest-encrypted) password of the instance unless one is already
        stored, atomically; True when it was stored, False when one was there."""


class FunctionLookup:
    """An InstanceLookup from a plain lookup function; without `save_password` the
    service refuses password posts (403)."""

    def __init__(self, find: LookupFunction,
                 save_password: SavePasswordFunction | None = None) -> None:
        self._find = find
        self._save_password = save_password

    @property
    def stores_passwords(self) -> bool:
        return self._save_password is not None

    async def by_address(self, address: str) -> InstanceMetadata | None:
        return await self._find(address)

    async def set_password(self, instance_uuid: str, password: str) -> bool:
        if self._save_password is None:
            raise NotImplementedError("this lookup does not store passwords")
        return await self._save_password(instance_uuid, password)


class StaticLookup:
    """Instances held in memory, found by every fixed IP of their vifs (and
    local_ipv4): the lookup of unit and functional tests and of the fake cloud."""

    def __init__(self, instances: Iterable[InstanceMetadata] = ()) -> None:
        self._by_uuid: dict[str, InstanceMetadata] = {}
        for md in instances:
            self.add(md)

    def add(self, md: InstanceMetadata) -> None:
        self._by_uuid[md.uuid] = md

    def remove(self, instance_uuid: str) -> None:
        self._by_uuid.pop(instance_uuid, None)

    def get(self, instance_uuid: str) -> InstanceMetadata:
        return self._by_uuid[instance_uuid]

    async def by_address(self, address: str) -> InstanceMetadata | None:
        for md in self._by_uuid.values():
            if address in addresses_of(md):
                return md
        return None

    async def set_password(self, instance_uuid: str, password: str) -> bool:
        md = self._by_uuid.get(instance_uuid)
        if md is None or md.password:
            return False
        self._by_uuid[instance_uuid] = dataclasses.replace(md, password=password)
        return True


def addresses_of(md: InstanceMetadata) -> set[str]:
    """The addresses a request from this instance may come from: its fixed IPs."""
    found = {vif.fixed_ip for vif in md.vifs if vif.fixed_ip}
    if md.local_ipv4:
        found.add(md.local_ipv4)
    return found
