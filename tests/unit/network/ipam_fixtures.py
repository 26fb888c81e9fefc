"""Fixtures of the IPAM tests: a migrated database, a NetworkAPI over it, instances."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.db import instances, migrate
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.network.api import NetworkAPI


def make_conf(**network: Any) -> config.Config:
    conf = config.Config()
    for name, value in network.items():
        conf.set("network", name, value)
    return conf


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'net.sqlite'}")
    await migrate.sync(database)
    try:
        yield database
    finally:
        await database.close()


class Refreshes:
    """Records the hosts NetworkAPI asks to refresh."""

    def __init__(self) -> None:
        self.calls: list[set[str]] = []

    async def __call__(self, hosts: set[str]) -> None:
        self.calls.append(set(hosts))

    @property
    def hosts(self) -> set[str]:
        return set().union(*self.calls) if self.calls else set()


@pytest.fixture
def refreshes() -> Refreshes:
    return Refreshes()


NetFactory = Callable[..., Awaitable[NetworkAPI]]


@pytest.fixture
def make_net(db: Database, refreshes: Refreshes) -> NetFactory:
    async def make(**network: Any) -> NetworkAPI:
        api = NetworkAPI(db, make_conf(**network), refresh_hosts=refreshes)
        await api.ensure_defaults()
        return api
    return make


@pytest.fixture
async def net(make_net: NetFactory) -> NetworkAPI:
    return await make_net()


InstanceFactory = Callable[..., Awaitable[Instance]]


@pytest.fixture
def make_instance(db: Database) -> InstanceFactory:
    counter = iter(range(1, 100000))

    async def make(project_id: str = "p1", host: str | None = "host-1",
                   name: str | None = None) -> Instance:
        number = next(counter)
        instance = Instance(uuid=str(uuid.uuid4()), display_name=name or f"vm{number}",
                            hostname=name or f"vm{number}", project_id=project_id,
                            user_id="u1", flavor={}, vm_state="active", host=host,
                            reservation_id="r-1")
        await instances.create(db, [instance])
        return instance
    return make


def ctx(project_id: str = "p1", admin: bool = False) -> RequestContext:
    return RequestContext(user_id="u1", project_id=project_id,
                          roles=["admin"] if admin else ["member"])
