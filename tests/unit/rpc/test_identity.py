"""Bus identities: who sent a message reaches the served method, and how a bus
user names a compute host."""

from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.rpc import bus as rpc_bus
from novalet.rpc.identity import host_of_user, parse_host_users, user_for_host
from novalet.rpc.inprocess import InProcessBus


class WhoAsks:
    RPC_VERSION = "1.4"

    async def who(self, ctx: RequestContext) -> Any:
        call = rpc_bus.current_call()
        assert call is not None
        return [call.sender, call.version, call.method]


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
