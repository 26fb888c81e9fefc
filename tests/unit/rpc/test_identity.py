"""Bus identities: who sent a message reaches the served method, and how a bus
user names a compute host."""

from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.rpc import bus as rpc_bus
from novalet.rpc.identity import (UNIDENTIFIED, Senders, host_of_user, parse_host_users,
                                  user_for_host)
from novalet.rpc.inprocess import InProcessBus


class Plain:
    """An endpoint that says nothing about compute hosts (the scheduler, say)."""

    RPC_VERSION = "1.0"

    async def who(self, ctx: RequestContext) -> Any:
        call = rpc_bus.current_call()
        assert call is not None
        return [call.sender, call.version, call.method]


class WhoAsks(Plain):
    RPC_VERSION = "1.4"

    def _host_may_call(self, call: rpc_bus.CallInfo) -> bool:
        return True


async def test_in_process_views_stamp_their_user() -> None:
    bus = InProcessBus(default_timeout=5)
    await bus.serve("t", WhoAsks())
    try:
        assert await bus.call(RequestContext(), "t", "who", version="1.2") == \
            [None, "1.2", "who"]
        view = bus.as_user("compute-h1")
        assert await view.call(RequestContext(), "t", "who") == ["compute-h1", "1.0", "who"]
        assert bus.sender is None  # the shared bus itself stays anonymous
    finally:
        await bus.close()


def test_host_user_convention_and_option() -> None:
    assert user_for_host("node-7") == "compute-node-7"
    assert host_of_user("compute-node-7", {}) == "node-7"
    assert host_of_user("compute-", {}) is None
    assert host_of_user("novalet", {}) is None
    users = parse_host_users(" r1n1:node-1 ,r1n2:node-2,")
    assert users == {"r1n1": "node-1", "r1n2": "node-2"}
    assert host_of_user("r1n1", users) == "node-1"
    with pytest.raises(ValueError, match="user:host"):
        parse_host_users("lonely")


def test_versions_negotiate_on_minor() -> None:
    assert rpc_bus.version_compatible("1.3", "1.0")
    assert rpc_bus.version_compatible("1.3", "1.3")
    assert not rpc_bus.version_compatible("1.3", "1.4")
    assert not rpc_bus.version_compatible("1.3", "2.0")


async def test_host_users_are_refused_by_endpoints_that_do_not_allow_them() -> None:
    """Finding: the scheduler served compute hosts' users with no check (it had no
    _authorize), so a host could call select_destinations with any uuids. The bus
    now refuses hosts unless the endpoint allows the call."""
    bus = InProcessBus(default_timeout=5)
    await bus.serve("plain", Plain())
    try:
        with pytest.raises(rpc_bus.NotAuthorizedForHost):
            await bus.as_user("compute-h1").call(RequestContext(), "plain", "who")
        assert await bus.as_user("novalet").call(RequestContext(), "plain", "who") == \
            ["novalet", "1.0", "who"]
        assert await bus.call(RequestContext(), "plain", "who") == [None, "1.0", "who"]
    finally:
        await bus.close()


@pytest.mark.parametrize("trusted", [False, True])
async def test_unidentified_senders_are_refused_unless_trusted(trusted: bool) -> None:
    """One rule for broker messages without a user-id, in the bus, for every
    endpoint (the network service let them through)."""
    senders = Senders(trust_unidentified=trusted)
    reply = await rpc_bus.dispatch(WhoAsks(), "t", rpc_bus.make_message(
        RequestContext(), "who", "1.0", {}), UNIDENTIFIED, senders)
    if trusted:
        assert reply["result"] == ["", "1.0", "who"]
    else:
        assert reply["error"]["class"] == "NotAuthorizedForHost"


async def test_the_call_carries_the_sender_host_resolved_once() -> None:
    senders = Senders({"rack7-node3": "h1"})
    seen: list[rpc_bus.CallInfo] = []

    class Seen(WhoAsks):
        async def who(self, ctx: RequestContext) -> Any:
            call = rpc_bus.current_call()
            assert call is not None
            seen.append(call)

    for sender in ("rack7-node3", "compute-h2", "novalet", None):
        await rpc_bus.dispatch(Seen(), "t", rpc_bus.make_message(
            RequestContext(), "who", "1.0", {}), sender, senders)
    assert [c.host for c in seen] == ["h1", "h2", None, None]


def test_malformed_host_users_fail_at_start_with_a_config_error() -> None:
    """Finding: compute parsed [conductor] host_users on every message, so a bad
    value became a ValueError per request; it is read once, when the bus is made."""
    conf = config.Config()
    conf.set("conductor", "host_users", "lonely")
    with pytest.raises(config.ConfigError, match=r"\[conductor\] host_users"):
        Senders.from_conf(conf)
    conf.set("conductor", "host_users", "r1n1:node-1")
    assert Senders.from_conf(conf).host_of("r1n1") == "node-1"
