"""Console tokens: kept hashed, expiring, bound to their instance and its host."""

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from sqlalchemy import select

from novalet import config
from novalet.console import tokens, vnc_auth
from novalet.console.types import ConsoleTarget
from novalet.db import instances, migrate
from novalet.db.engine import Database
from novalet.db.models import ConsoleAuthToken, Instance

TARGET = ConsoleTarget("192.0.2.5", 5901)


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'c.sqlite'}")
    await migrate.sync(database)
    async with database.transaction() as s:
        for uuid in ("inst-a", "inst-b"):
            s.add(Instance(uuid=uuid, display_name=uuid, hostname=uuid, project_id="p",
                           user_id="u", flavor={}, vm_state="active", host="h1",
                           reservation_id="r-1"))
    yield database
    await database.close()


@pytest.fixture
def auth(db: Database, tmp_path: Path) -> tokens.ConsoleAuth:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    conf.set("consoleauth", "token_ttl", 60)
    return tokens.ConsoleAuth(conf, db)


async def _rows(db: Database) -> list[ConsoleAuthToken]:
    async with db.transaction() as s:
        return list((await s.execute(select(ConsoleAuthToken))).scalars())


async def test_token_opens_its_instance_and_is_stored_only_hashed(
        auth: tokens.ConsoleAuth, db: Database) -> None:
    token = await auth.authorize("inst-a", "h1", "novnc", TARGET)
    granted = await auth.check(token)
    assert granted == tokens.Authorization("inst-a", "novnc", "h1", TARGET)
    (row,) = await _rows(db)
    assert row.token_hash == tokens.token_hash(token) != token
    assert token not in (row.token_hash, row.secret, row.host)
    assert await auth.check(token + "x") is None
    assert await auth.check("") is None


async def test_expired_token_is_refused_and_purged(auth: tokens.ConsoleAuth,
                                                   db: Database) -> None:
    token = await auth.authorize("inst-a", "h1", "serial", TARGET)
    later = tokens.time.time() + 61
    with mock.patch.object(tokens.time, "time", return_value=later):
        assert await auth.check(token) is None
        assert await auth.show(token) is None
        await auth.authorize("inst-b", "h1", "serial", TARGET)  # purges the expired one
    assert [r.instance_uuid for r in await _rows(db)] == ["inst-b"]


async def test_token_dies_with_its_instance_and_when_it_moves(auth: tokens.ConsoleAuth,
                                                              db: Database) -> None:
    moved = await auth.authorize("inst-a", "h1", "novnc", TARGET)
    deleted = await auth.authorize("inst-b", "h1", "novnc", TARGET)
    await instances.set_fields(db, "inst-a", {"host": "h2"})
    assert await auth.check(moved) is None
    await instances.destroy(db, "inst-b")
    assert await auth.check(deleted) is None
    assert [r.instance_uuid for r in await _rows(db)] == ["inst-a"]  # b's row went


async def test_native_vnc_token_is_a_vnc_password_kept_sealed(auth: tokens.ConsoleAuth,
                                                              db: Database) -> None:
    password = await auth.authorize("inst-a", "h1", "xvpvnc", TARGET)
    other = await auth.authorize("inst-b", "h1", "xvpvnc", ConsoleTarget("h", 5902))
    assert len(password) == vnc_auth.PASSWORD_MAX and password.isalnum()
    rows = await _rows(db)
    assert all(r.secret and password not in r.secret for r in rows)
    assert await auth.check(password) is None  # only good as a VNC password
    challenge = vnc_auth.challenge()
    granted = await auth.check_vnc_auth(challenge, vnc_auth.response(password, challenge))
    assert granted is not None and granted.instance_uuid == "inst-a"
    granted = await auth.check_vnc_auth(challenge, vnc_auth.response(other, challenge))
    assert granted is not None and granted.instance_uuid == "inst-b"
    assert await auth.check_vnc_auth(challenge, vnc_auth.response("wrong123", challenge)) \
        is None


def test_access_urls_carry_the_token() -> None:
    conf = config.Config()
    conf.set("vnc", "novncproxy_port", 16080)
    assert tokens.access_url(conf, "novnc", "T0k") == \
        "http://127.0.0.1:16080/vnc_lite.html?path=%3Ftoken%3DT0k"
    assert tokens.access_url(conf, "xvpvnc", "pw") == "vnc://127.0.0.1:6081?VncPassword=pw"
    assert tokens.access_url(conf, "spice-html5", "T") == \
        "http://127.0.0.1:6082/spice_auto.html?token=T"
    assert tokens.access_url(conf, "serial", "T") == "ws://127.0.0.1:6083/?token=T"
    conf.set("serial_console", "base_url", "wss://console.example/serial?x=1")
    assert tokens.access_url(conf, "serial", "T") == "wss://console.example/serial?x=1&token=T"
    with pytest.raises(ValueError):
        tokens.access_url(conf, "webmks", "T")
