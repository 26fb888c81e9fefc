"""A conductor serving an in-process bus over SQLite, with instances on hosts
h1 (inst-1, of project p1) and h2 (inst-2, of project p2)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from novalet import config
from novalet.conductor.manager import ConductorManager
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.network.api import NetworkAPI
from novalet.rpc.inprocess import InProcessBus


@dataclass
class Served:
    conductor: ConductorManager
    bus: InProcessBus
    db: Database


# An instance's copy of its flavor (compute/api.flavor_document).
FLAVOR = {"flavorid": "1", "name": "m1.tiny", "memory_mb": 64, "vcpus": 1, "root_gb": 1,
          "ephemeral_gb": 0, "swap": 0, "rxtx_factor": 1.0, "extra_specs": {}}


def make_instance(uuid: str, host: str, project: str) -> Instance:
    return Instance(uuid=uuid, display_name=uuid, hostname=uuid, project_id=project,
                    user_id="u", flavor=dict(FLAVOR),
                    vm_state="active", power_state=1, host=host, node=host,
                    image_ref="img", reservation_id="r-1")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    db = Database(f"sqlite:///{tmp_path / 'c.sqlite'}")
    await migrate.sync(db)
    async with db.transaction() as s:
        s.add(make_instance("inst-1", "h1", "p1"))
        s.add(make_instance("inst-2", "h2", "p2"))
    conf = config.Config()
    bus = InProcessBus(default_timeout=10)
    conductor = ConductorManager(conf, db, bus, NetworkAPI(db, conf))
    await bus.serve("conductor", conductor)
    yield Served(conductor, bus, db)
    await bus.close()
    await db.close()
