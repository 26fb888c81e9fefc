"""Ansible's openstack.cloud collection against a running `novalet up`: one playbook
makes a project's network, subnet, router, security group and rule, key pair, server
and floating IP; run again it changes nothing; with state=absent it removes them all."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.conftest import BIN, RunningCloud, fake_cloud

pytestmark = pytest.mark.integration

PLAYBOOK = Path(__file__).with_name("ansible") / "project.yml"
SDK_COMPAT = PLAYBOOK.parent / "sdk_compat"
CONF = """[network]
floating_ip_pools = public=172.31.77.0/28
"""
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                   r"failed=(\d+)")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    yield from fake_cloud(tmp_path_factory.mktemp("ansible"), CONF)


def public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


PUBLIC_KEY = public_key()


def playbook(cloud: RunningCloud, image: str, state: str) -> tuple[int, int]:
    """Run the playbook; its (ok, changed) counts. Fails on any failed task."""
    extra = {"state": state, "image": image, "flavor": "m1.tiny",
             "external_network": "public", "public_key": PUBLIC_KEY}
    env = dict(cloud.env, ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=str(BIN / "python"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_HOME=str(cloud.state_dir / "ansible"),
               PYTHONPATH=str(SDK_COMPAT))
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", json.dumps(extra), str(PLAYBOOK)],
        env=env, capture_output=True, text=True, timeout=600, cwd=os.fspath(cloud.state_dir))
    recap = RECAP.search(result.stdout)
    assert result.returncode == 0 and recap, (
        f"{result.stdout}\n{result.stderr}\n--- server log ---\n{cloud.tail()}")
    ok, changed, unreachable, failed = map(int, recap.groups())
    assert (unreachable, failed) == (0, 0), result.stdout
    return ok, changed


def names(cloud: RunningCloud, *command: str) -> set[str]:
    listed = cloud.openstack_json(*command, "list")
    assert isinstance(listed, list)
    return {item["Name"] for item in listed}


def test_playbook_makes_changes_nothing_then_removes(cloud: RunningCloud,
                                                     tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "16M"], check=True,
                   capture_output=True)
    image = cloud.openstack_json("image", "create", "--disk-format", "qcow2",
                                 "--file", str(disk), "ans-image")
    assert isinstance(image, dict)

    ok, changed = playbook(cloud, image["id"], "present")
    assert changed == 8, f"every resource is new: {ok} ok, {changed} changed"
    server = cloud.show_server("ans-vm", cloud="novalet-demo")
    assert server["status"] == "ACTIVE"
    addresses = json.dumps(server["addresses"])
    assert "10.77.0." in addresses and "172.31.77." in addresses, addresses
    assert names(cloud, "router") == {"ans-router"}

    assert playbook(cloud, image["id"], "present")[1] == 0, "the second run changes nothing"

    playbook(cloud, image["id"], "absent")
    assert names(cloud, "server") == set()
    assert names(cloud, "router") == set()
    assert "ans-net" not in names(cloud, "network")
    assert "ans-sg" not in names(cloud, "security", "group")
    assert names(cloud, "keypair") == set()
    assert cloud.openstack_json("floating", "ip", "list") == []
