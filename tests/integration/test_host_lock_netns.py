"""The host network lock is per real network namespace, not per `netns` argument
(issue 14 follow-up): a cloud started under `ip netns exec X` (netns argument None)
shared /run/novalet/host-network.lock with the root namespace's cloud, which was
then refused with a false HostNetworkTaken, while a driver given netns X did not
see the cloud already running in X."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from novalet.network.linux import HostNetworkTaken, LinuxNetDriver
from tests.integration.test_linux_net import cleanup_namespaces, sh

pytestmark = pytest.mark.integration

HOLD = ("import sys; from pathlib import Path; "
        "from novalet.network.linux import LinuxNetDriver; "
        "d = LinuxNetDriver(Path(sys.argv[1]), owner='/srv/in-namespace', "
        "lock_dir=Path(sys.argv[2])); d.claim_host(); print('held', flush=True); "
        "sys.stdin.read()")


def test_the_host_lock_is_per_real_network_namespace(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.skip("ip is not installed (apt-get install iproute2)")
    ns = f"nvlock{os.getpid() % 100000}"
    locks = tmp_path / "run"
    holder: subprocess.Popen[str] | None = None
    try:
        sh("ip", "netns", "add", ns)
        holder = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", HOLD,
             str(tmp_path / "in-namespace"), str(locks)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        async def claim(driver: LinuxNetDriver) -> None:
            try:
                driver.claim_host()
            finally:
                await driver.close()

        # the root namespace is another namespace: free
        asyncio.run(claim(LinuxNetDriver(tmp_path / "root-cloud", lock_dir=locks)))
        # netns=ns is the namespace the holder runs in: taken, naming it
        with pytest.raises(HostNetworkTaken, match="/srv/in-namespace"):
            asyncio.run(claim(LinuxNetDriver(tmp_path / "ns-cloud", netns=ns,
                                             lock_dir=locks)))
    finally:
        if holder is not None:
            holder.communicate("")
        cleanup_namespaces([ns])
