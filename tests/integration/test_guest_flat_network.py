"""nova-network's Flat manager with a real guest: no DHCP server on the bridge, the
address reaches the guest through the config drive's network_data.json."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunningCloud, qemu_cloud
from tests.integration.test_guest_networking import boot, fixed_ip, wait_console

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
# A Flat network has no DHCP server: the address comes from the config drive.
force_config_drive = true
[network]
network_manager = flat
fixed_range = 10.234.0.0/24
flat_network_bridge = nvbrflat
"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("flat-cloud"), guest_image, CONF,
                    ["nvbrflat"]) as running:
        yield running


def test_flat_guest_takes_its_address_from_the_config_drive(cloud: RunningCloud,
                                                            tmp_path: Path) -> None:
    server = boot(cloud, "flat1", "#!/bin/sh\ntrue\n", tmp_path)
    text = wait_console(cloud, "flat1", f"NOVALET-GUEST-READY uuid={server['id']}")
    address = fixed_ip(cloud, "flat1")
    assert f"eth0 has address {address}" in text, text[-2000:]
    dnsmasq = subprocess.run(["pgrep", "-f", "dnsmasq.*--interface=nvbrflat"],
                             capture_output=True, text=True).stdout
    assert dnsmasq == "", "a Flat network must not run a DHCP server"
    ping = subprocess.run(["ping", "-c", "1", "-W", "2", address], capture_output=True)
    assert ping.returncode != 0, "the default group should keep the host out"
