"""A host's network service DNATs its guests' 169.254.169.254 to the metadata
service its own configuration names, not to the one of the conductor that built
the state (a multi_host compute host with a metadata service of its own, beside a
controller running none, used to get `dnat to 127.0.0.1:0`)."""

from __future__ import annotations

from novalet import config
from novalet.network.host_settings import set_metadata_target
from novalet.network.manager import NetworkManager
from novalet.network.model import HostNetworkState
from novalet.rpc.inprocess import InProcessBus


class Recording:
    def __init__(self) -> None:
        self.applied: list[HostNetworkState] = []

    def claim_host(self) -> None:
        pass

    async def apply(self, state: HostNetworkState) -> None:
        self.applied.append(state)


class ControllerState:
    """What a conductor whose [metadata] port is 0 (no metadata service) builds."""

    async def host_state(self, host: str) -> HostNetworkState:
        return HostNetworkState(host=host, metadata_host="127.0.0.1", metadata_port=0)


async def test_the_network_service_applies_its_own_metadata_target() -> None:
    conf = config.Config()
    conf.set("DEFAULT", "host", "compute-1")
    conf.set("metadata", "listen", "10.1.0.5")
    conf.set("metadata", "port", 18775)
    driver = Recording()
    manager = NetworkManager(conf, InProcessBus(default_timeout=5), driver)  # type: ignore[arg-type]
    manager.state_rpc = ControllerState()  # type: ignore[assignment]
    await manager.apply_now()
    (state,) = driver.applied
    assert (state.metadata_host, state.metadata_port) == ("10.1.0.5", 18775)


def test_a_wildcard_listen_address_keeps_the_states_host() -> None:
    conf = config.Config()
    conf.set("metadata", "listen", "0.0.0.0")
    state = set_metadata_target(HostNetworkState(host="h", metadata_host="10.0.0.1"), conf)
    assert (state.metadata_host, state.metadata_port) == ("10.0.0.1", 8775)
