"""Hosts authorised by the conductor, over RabbitMQ: each compute host connects
as its own bus user (compute-<host>); the conductor serves it only its own
instances, and RabbitMQ itself refuses a message whose user-id is forged."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aiormq
import pytest

from novalet.common.context import RequestContext
from novalet.conductor.rpcapi import ConductorAPI
from novalet.rpc import bus as rpc_bus
from novalet.rpc.amqp import AmqpBus
from novalet.service.local_deployment import LocalDeployment
from tests.multihost.conftest import Cloud, backing_script, fresh_vhost
from tests.server_db import create_database, drop_database

pytestmark = pytest.mark.integration
HOSTS = ["idh1", "idh2"]


def as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
               ) -> Iterator[tuple[Cloud, dict[str, str]]]:
    """A cloud whose two compute hosts each use their own RabbitMQ user; the
    transport_url of each host's user."""
    root = tmp_path_factory.mktemp("identity")
    server = backing["NOVALET_TEST_PG_URL"]
    with fresh_vhost(backing) as transport:
        vhost = urlsplit(transport).path.lstrip("/")
        urls = {}
        for host in HOSTS:
            password = uuid.uuid4().hex
            backing_script("host-user", "add", host, password, vhost)
            urls[host] = as_user(transport, f"compute-{host}", password)
        database = asyncio.run(create_database(server))
        dep = LocalDeployment(root, transport, database, HOSTS, options={
            "quota": {"instances": -1, "cores": -1, "ram": -1}},
            host_options={h: {"DEFAULT": {"transport_url": urls[h]}} for h in HOSTS})
        try:
            dep.start_all()
            yield Cloud(dep, database), urls
        finally:
            dep.stop_all()
            asyncio.run(drop_database(server, database))
            for host in HOSTS:
                backing_script("host-user", "delete", host)


def boot_on(cloud: Cloud, host: str) -> str:
    [sid] = cloud.boot(f"on-{host}", availability_zone=f"nova:{host}")
    return sid


def test_hosts_with_own_bus_users_build_and_are_refused_others_instances(
        identities: tuple[Cloud, dict[str, str]]) -> None:
    cloud, urls = identities
    ids = {host: boot_on(cloud, host) for host in HOSTS}
    servers = cloud.wait_settled(list(ids.values()))
    assert {s["status"] for s in servers.values()} == {"ACTIVE"}, servers
    assert {s["OS-EXT-SRV-ATTR:host"] for s in servers.values()} == set(HOSTS)

    async def as_idh1() -> None:
        bus = AmqpBus(urls["idh1"], default_timeout=20, name="test-idh1")
        conductor = ConductorAPI(bus)
        ctx = RequestContext.admin()
        try:
            mine = await conductor.instances_on_host(ctx, "idh1")
            assert [i.uuid for i in mine] == [ids["idh1"]]
            with pytest.raises(rpc_bus.NotAuthorizedForHost):
                await conductor.instances_on_host(ctx, "idh2")
            with pytest.raises(rpc_bus.NotAuthorizedForHost):
                await conductor.instance_update(ctx, ids["idh2"], {"task_state": "deleting"})
            with pytest.raises(rpc_bus.NotAuthorizedForHost):
                await conductor.instance_destroy(ctx, ids["idh2"])
        finally:
            await bus.close()

    asyncio.run(as_idh1())
    assert cloud.servers()[ids["idh2"]]["status"] == "ACTIVE"
    log = (cloud.d.root / "conductor-controller.log").read_text(errors="replace")
    assert "Refused instances_on_host on host idh2 from bus user compute-idh1" in log


def test_rabbitmq_refuses_a_forged_user_id(identities: tuple[Cloud, dict[str, str]]
                                           ) -> None:
    _cloud, urls = identities

    async def forge() -> None:
        conn = await aio_pika.connect(urls["idh1"].replace("rabbit://", "amqp://", 1))
        try:
            channel = await conn.channel(publisher_confirms=True)
            body = rpc_bus.make_message(RequestContext.admin(), "instances_on_host", "1.1",
                                        {"host": "idh2"})
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed,
                               match="user_id property set to 'compute-idh2'"):
                await channel.default_exchange.publish(
                    aio_pika.Message(body, user_id="compute-idh2"), routing_key="conductor",
                    timeout=10)
        finally:
            await conn.close()

    asyncio.run(forge())


def test_a_host_user_cannot_read_another_hosts_queue(
        identities: tuple[Cloud, dict[str, str]]) -> None:
    _cloud, urls = identities

    async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        pass

    async def snoop() -> None:
        conn = await aio_pika.connect(urls["idh1"].replace("rabbit://", "amqp://", 1))
        try:
            for attempt in ("consume", "bind"):
                channel = await conn.channel()
                with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                    if attempt == "consume":  # idh2's requests, straight from its queue
                        queue = await channel.declare_queue("compute.idh2", passive=True)
                        await queue.consume(ignore)
                    else:  # or copied into idh1's own queue by a binding
                        queue = await channel.declare_queue("compute.idh1", passive=True)
                        await queue.bind("novalet", routing_key="compute.idh2")
        finally:
            await conn.close()

    asyncio.run(snoop())
