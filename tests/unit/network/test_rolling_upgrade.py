"""Issue 14, item 5, for the network RPC: its payloads were untyped dicts at version
1.0. Network RPC 1.1 carries Vif models; a compute host of the previous release
(1.0, hand-written Vif dicts) still plugs through this network service, this
compute host talks 1.0 to a network service of the previous release under
`[upgrade_levels] network = 1.0`. (A network service of the previous release
reading its host state from this conductor: tests/unit/conductor/
test_network_state_upgrade.py.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.network import rpcapi as network_rpcapi
from novalet.network.model import Vif
from novalet.network.rpcapi import HostNetworkAPI, host_topic
from novalet.rpc import versions
from novalet.rpc.bus import NoSuchMethod
from novalet.rpc.inprocess import InProcessBus
from tests.unit.network.test_vif_seam import make_vif, network_manager


def cap_network(version: str) -> versions.Caps:
    conf = config.Config()
    conf.set("upgrade_levels", "network", version)
    return versions.Caps.from_conf(conf)


def vif_as_1_0_sent_it(vif: Vif) -> dict[str, Any]:
    """A Vif exactly as a compute host of the previous release sent it: the
    hand-written dataclasses.asdict, no `_version`."""
    return {f.name: getattr(vif, f.name) for f in dataclasses.fields(vif)}


async def test_previous_release_compute_plugs_through_current_network_service() -> None:
    assert network_rpcapi.VERSION == "1.2"
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")
    await bus.serve(host_topic("host-1"), manager)
    vif = make_vif()
    old = vif_as_1_0_sent_it(vif)
    assert "_version" not in old
    for method in ("plug_vifs", "unplug_vifs"):
        await bus.call(RequestContext.admin(), host_topic("host-1"), method,
                       {"vifs": [old], "device": "tap"}, version="1.0")
    assert driver.calls == ["apply host-1", f"plug {vif.tap}", f"unplug {vif.tap}"]
    await bus.close()


class OldNetworkService:
    """A network service of the previous release: RPC 1.0, Vifs read by the
    hand-written from_dict (the fields it knows)."""

    RPC_VERSION = "1.0"

    def __init__(self) -> None:
        self.plugged: list[Vif] = []

    async def plug_vifs(self, ctx: RequestContext, vifs: list[dict[str, Any]],
                        device: str = "tap") -> None:
        names = {f.name for f in dataclasses.fields(Vif)}
        self.plugged += [Vif(**{k: v for k, v in d.items() if k in names}) for d in vifs]


async def test_capped_compute_talks_1_0_to_previous_release_network_service() -> None:
    bus = InProcessBus(default_timeout=5)
    old = OldNetworkService()
    await bus.serve(host_topic("host-1"), old)
    vif = make_vif()
    # uncapped, 1.1 is refused by the 1.0 service: the cap is what keeps it working
    with pytest.raises(NoSuchMethod):
        await HostNetworkAPI(bus, "host-1").plug([vif])
    await HostNetworkAPI(bus, "host-1", cap_network("1.0")).plug([vif])
    assert old.plugged == [vif]
    await bus.close()
