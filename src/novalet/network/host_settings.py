"""The parts of a host's network state that are that host's own configuration.

The conductor builds every host's HostNetworkState (network/state.py) with its
own configuration; where a host's guests reach the metadata service
(169.254.169.254:80 DNATed to `[metadata] listen`:`port`) is the configuration of
that host, as nova-network read metadata_host on the host it ran on. So the
network service puts its own in before applying a state: on a multi_host cloud
each compute host may run a metadata service of its own (while the controller,
which builds the states, may run none).
"""

from __future__ import annotations

from novalet import config
from novalet.network.model import HostNetworkState

_WILDCARDS = ("", "0.0.0.0", "::")


def set_metadata_target(state: HostNetworkState, conf: config.Config) -> HostNetworkState:
    """`state` with `conf`'s metadata service as its guests' (a wildcard listen
    address keeps the state's host: a loopback one, unless the state said else)."""
    listen = str(conf.get("metadata", "listen"))
    if listen not in _WILDCARDS:
        state.metadata_host = listen
    state.metadata_port = int(conf.get("metadata", "port"))
    return state
