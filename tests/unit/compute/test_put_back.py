"""compute/put_back.py: an action's task_state is put back only while it is still its."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet.compute.put_back import IDLE, put_back
from novalet.db import instances, migrate
from novalet.db.engine import Database
from tests.unit.conductor.conftest import make_instance


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'p.sqlite'}")
    await migrate.sync(database)
    async with database.transaction() as s:
        s.add(make_instance("inst-1", "h1", "p1"))
    yield database
    await database.close()


async def test_puts_back_only_the_expected_task_state(db: Database) -> None:
    await instances.set_fields(db, "inst-1", {"task_state": "shelving"})
    assert not await put_back(db, "inst-1", IDLE, ["image_snapshot"])  # another action's
    assert (await instances.get(db, "inst-1")).task_state == "shelving"
    assert await put_back(db, "inst-1", IDLE, ["image_snapshot", "shelving"])
    assert (await instances.get(db, "inst-1")).task_state is None


async def test_an_instance_that_is_gone_is_not_put_back(db: Database) -> None:
    assert not await put_back(db, "no-such-instance", IDLE, [None])
