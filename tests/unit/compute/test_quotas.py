"""QuotaEngine: the order limits resolve in, how many instances fit, request checks."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet import config
from novalet.compute.quotas import (RESOURCES, MetadataLimitExceeded,
                                    OnsetFileContentLimitExceeded, OnsetFileLimitExceeded,
                                    OnsetFilePathLimitExceeded, QuotaEngine, QuotaLimitInvalid,
                                    ServerGroupLimitExceeded, ServerGroupMembersExceeded,
                                    TooManyInstances, TooManyServersRequested)
from novalet.db import migrate
from novalet.db import quotas as db_quotas
from novalet.db.quotas import QuotaRecords


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[QuotaEngine]:
    from novalet.db.engine import Database
    db = Database(f"sqlite:///{tmp_path / 'q.sqlite'}")
    await migrate.sync(db)
    conf = config.Config()
    conf.set("quota", "instances", 7)
    yield QuotaEngine(db, conf)
    await db.close()


def test_defaults_come_from_config() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    defaults = engine.config_defaults()
    assert set(defaults) == set(RESOURCES) | {"networks", "ports", "routers"}
    assert defaults["instances"] == 10 and defaults["fixed_ips"] == -1
    assert defaults["injected_file_path_length"] == 255
    # the network API's own limits; routers at Neutron's 10 until [quota] routers exists
    assert (defaults["networks"], defaults["ports"], defaults["routers"]) == (100, 500, 10)


def test_user_beats_project_beats_class_beats_config() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    records = QuotaRecords(class_limits={"instances": 5, "cores": 6, "ram": 7},
                           project_limits={"instances": 4, "cores": 3},
                           user_limits={"instances": 2})
    limits = engine.resolve(records)
    assert (limits.project["instances"], limits.project["cores"], limits.project["ram"],
            limits.project["key_pairs"]) == (4, 3, 7, 100)
    assert (limits.user["instances"], limits.user["cores"]) == (2, 3)


def test_unknown_stored_resources_are_ignored() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    assert "bogus" not in engine.resolve(QuotaRecords(project_limits={"bogus": 1})).project


@pytest.mark.parametrize(("limits", "usage", "min_count", "max_count", "fits"), [
    ({"instances": 10}, {"instances": 0}, 1, 5, 5),
    ({"instances": 10}, {"instances": 8}, 1, 5, 2),
    ({"instances": -1, "cores": 4}, {"cores": 1}, 1, 5, 3),
    ({"instances": -1, "cores": -1, "ram": -1}, {}, 1, 500, 500),
    ({"ram": 1024}, {"ram": 0}, 2, 4, 2),
])
def test_admit_instances_fits_as_many_as_the_quota_allows(
        limits: dict[str, int], usage: dict[str, int], min_count: int, max_count: int,
        fits: int) -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    admit = engine.admit_instances(min_count, max_count, vcpus=1, memory_mb=512)
    assert admit(QuotaRecords(project_limits=limits, project_usage=usage)) == fits


def test_admit_instances_below_min_count_says_which_quota() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    admit = engine.admit_instances(3, 3, vcpus=2, memory_mb=512)
    with pytest.raises(TooManyInstances) as exc:
        admit(QuotaRecords(project_limits={"cores": 5}, project_usage={"cores": 1}))
    assert exc.value.message == ("Quota exceeded for cores: Requested 6, but already used 1 "
                                 "of 5 cores")
    assert exc.value.code == 403


def test_admit_instances_checks_the_users_own_limit() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    admit = engine.admit_instances(1, 1, vcpus=1, memory_mb=1)
    records = QuotaRecords(user_limits={"instances": 1}, project_usage={"instances": 3},
                           user_usage={"instances": 1})
    with pytest.raises(TooManyInstances, match="already used 1 of 1 instances"):
        admit(records)


async def test_update_refuses_bad_values(engine: QuotaEngine) -> None:
    with pytest.raises(QuotaLimitInvalid, match="must be -1 or greater"):
        await engine.update("p", None, {"instances": -2})
    with pytest.raises(QuotaLimitInvalid, match="Unknown quota resources"):
        await engine.update("p", None, {"bogus": 1})


async def test_limits_round_trip_through_the_database(engine: QuotaEngine) -> None:
    assert (await engine.limits("p"))["instances"] == 7
    await engine.set_class_limits("default", {"instances": 6, "cores": 5})
    assert (await engine.defaults())["instances"] == 6
    await engine.update("p", None, {"instances": 3})
    await engine.update("p", "u", {"instances": 2})
    assert (await engine.limits("p"))["instances"] == 3
    assert (await engine.limits("p", "u"))["instances"] == 2
    assert (await engine.limits("p", "u"))["cores"] == 5
    await engine.delete("p", "u")
    assert (await engine.limits("p", "u"))["instances"] == 3
    await engine.update("p", "u", {"instances": 1})
    await engine.delete("p")
    assert (await engine.limits("p", "u"))["instances"] == 6
    detail = await engine.detail("p")
    assert detail["instances"] == {"limit": 6, "in_use": 0, "reserved": 0}


async def test_lock_row_is_made_once_and_bumped(engine: QuotaEngine) -> None:
    for _ in range(3):
        async with engine.db.transaction() as s:
            await db_quotas.lock_project(s, "p")
    async with engine.db.transaction() as s:
        from sqlalchemy import select

        from novalet.db.models import QuotaLock
        rows = (await s.execute(select(QuotaLock))).scalars().all()
    assert [(r.project_id, r.generation) for r in rows] == [("p", 3)]


async def test_request_checks(engine: QuotaEngine) -> None:
    await engine.update("p", None, {"metadata_items": 1, "injected_files": 1,
                                    "injected_file_content_bytes": 3,
                                    "injected_file_path_length": 2, "server_groups": 1,
                                    "server_group_members": 2})
    await engine.check_metadata("p", 1)
    with pytest.raises(MetadataLimitExceeded, match="Maximum number of metadata items "
                                                    "exceeds 1"):
        await engine.check_metadata("p", 2)
    await engine.check_personality("p", [{"path": "/a", "contents": "eHh4"}])  # b"xxx"
    with pytest.raises(OnsetFileLimitExceeded):
        await engine.check_personality("p", [{"path": "/a"}, {"path": "/b"}])
    with pytest.raises(OnsetFileContentLimitExceeded, match="exceeds maximum 3"):
        await engine.check_personality("p", [{"path": "/a", "contents": "eHh4eA=="}])
    with pytest.raises(OnsetFilePathLimitExceeded, match="exceeds maximum 2"):
        await engine.check_personality("p", [{"path": "/ab"}])
    await engine.check_server_group("p", 0)
    with pytest.raises(ServerGroupLimitExceeded):
        await engine.check_server_group("p", 1)
    await engine.check_group_members("p", 1, 1)
    with pytest.raises(ServerGroupMembersExceeded):
        await engine.check_group_members("p", 1, 2)


def test_unlimited_quotas_count_nothing() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    unlimited = QuotaRecords(project_limits={"instances": -1, "cores": -1, "ram": -1,
                                             "key_pairs": -1})
    assert list(engine.admit_instances(1, 1, 2, 512).counted(unlimited)) == []
    assert list(engine.admit_keypair().counted(unlimited)) == []
    partly = QuotaRecords(project_limits={"instances": -1, "cores": -1},
                          user_limits={"cores": 4})
    assert sorted(engine.admit_instances(1, 1, 2, 512).counted(partly)) == ["cores", "ram"]


def test_min_count_past_the_per_request_cap_is_a_400_not_a_quota_error() -> None:
    engine = QuotaEngine(None, None)  # type: ignore[arg-type]
    admit = engine.admit_instances(1500, 1000, 1, 512)  # max_count capped by the API
    unlimited = QuotaRecords(project_limits={"instances": -1, "cores": -1, "ram": -1})
    with pytest.raises(TooManyServersRequested) as exc:
        admit(unlimited)
    assert exc.value.code == 400
    with pytest.raises(TooManyInstances):
        admit(QuotaRecords())
