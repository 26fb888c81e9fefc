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

from novalet import config
from novalet.common.context import RequestContext
from novalet.conductor.rpcapi import ConductorAPI
from novalet.rpc import bus as rpc_bus
from novalet.compute.payloads import RequestSpec
from novalet.rpc.amqp import AmqpBus
from novalet.rpc.identity import Senders
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
        conductor = ConductorAPI(bus, config.Config())
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


def test_a_host_user_cannot_call_the_scheduler(identities: tuple[Cloud, dict[str, str]]
                                               ) -> None:
    """Finding: amq.default routes to the scheduler's queue too, and the scheduler
    served hosts' users with no check: a host could claim or replace allocations."""
    _cloud, urls = identities

    async def as_idh1() -> None:
        bus = AmqpBus(urls["idh1"], default_timeout=20, name="test-idh1-scheduler")
        spec = RequestSpec(instance_uuids=[str(uuid.uuid4())], project_id="p", user_id="u",
                           vcpus=1, memory_mb=64, disk_gb=1)
        try:
            with pytest.raises(rpc_bus.NotAuthorizedForHost):
                await bus.call(RequestContext.admin(), "scheduler", "select_destinations",
                               {"spec": spec.to_dict()})
        finally:
            await bus.close()

    asyncio.run(as_idh1())


def test_a_host_user_named_in_host_users_connects_with_a_hosts_rights(
        identities: tuple[Cloud, dict[str, str]]) -> None:
    """Finding: the AMQP bus took only compute-<host> for a host's user, so a user
    named through [conductor] host_users declared the `novalet` exchange, which a
    host's rights do not allow, and its connection failed."""
    _cloud, urls = identities
    vhost = urlsplit(urls["idh1"]).path.lstrip("/")
    password = uuid.uuid4().hex
    backing_script("host-user", "add", "idh1", password, vhost, "rack1-node1")
    url = as_user(urls["idh1"], "rack1-node1", password)

    async def as_rack_user() -> None:
        bus = AmqpBus(url, default_timeout=20, name="test-rack1-node1",
                      senders=Senders({"rack1-node1": "idh1"}))
        try:
            await bus.call(RequestContext.admin(), "conductor", "instances_on_host",
                           {"host": "idh1"}, version="1.0")
        finally:
            await bus.close()

    try:
        asyncio.run(as_rack_user())
    finally:
        backing_script("host-user", "delete", "idh1", "rack1-node1")
