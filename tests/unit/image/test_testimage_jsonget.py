"""The guest agent's JSON reader (an awk program), run with this host's awk.

The guest runs it with busybox awk; the integration test covers that. Here
the host's POSIX awk checks the parsing rules on a Nova-shaped meta_data.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from novalet.image.testimage import trees

AWK = shutil.which("awk")
pytestmark = pytest.mark.skipif(AWK is None, reason="no awk on this host")

META_DATA = {
    "uuid": "0b9a3c6e-1111-4222-8333-444455556666",
    "meta": {"role": "web", "count": "3"},
    "public_keys": {"mykey": "ssh-rsa AAAAB3NzaC1yc2E mykey@host\n",
                    "other": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 o\u00e9@h\U0001F600"},
    "keys": [{"name": "mykey", "type": "ssh", "data": "ssh-rsa AAAAB3NzaC1yc2E mykey@host\n"}],
    "hostname": "test-vm.novalocal",
    "name": "test \"vm\"\\ one",
    "launch_index": 0,
    "availability_zone": "nova",
    "random_seed": "q/8+" * 40,
    "project_id": "3f4e5d6c",
    "devices": [],
    "dedicated_cpus": None,
    "flag": True,
}


def jsonget(want: str, document: str, tmp_path: Path) -> tuple[int, bytes]:
    source = tmp_path / "doc.json"
    source.write_text(document)
    program = tmp_path / "jsonget.awk"
    program.write_bytes(trees.data_file("jsonget.awk"))
    assert AWK is not None
    result = subprocess.run([AWK, "-v", f"want={want}", "-f", str(program), str(source)],
                            capture_output=True, env={"LC_ALL": "C"}, timeout=10, check=False)
    return result.returncode, result.stdout


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("want, expected", [
    ("uuid", "0b9a3c6e-1111-4222-8333-444455556666\n"),
    ("hostname", "test-vm.novalocal\n"),
    ("name", "test \"vm\"\\ one\n"),
    ("meta/role", "web\n"),
    ("meta/", "web\n3\n"),
    ("keys/0/name", "mykey\n"),
    ("launch_index", "0\n"),
    ("flag", "true\n"),
    ("dedicated_cpus", ""),
    ("devices/", ""),
    ("absent", ""),
    ("random_seed", "q/8+" * 40 + "\n"),
])
def test_values_are_found_by_path(want: str, expected: str, indent: int | None,
                                  tmp_path: Path) -> None:
    document = json.dumps(META_DATA, indent=indent)
    assert jsonget(want, document, tmp_path) == (0, expected.encode())


def test_public_keys_come_out_one_after_another_decoded(tmp_path: Path) -> None:
    status, output = jsonget("public_keys/", json.dumps(META_DATA), tmp_path)

    assert status == 0
    assert output.decode().split("\n") == [
        "ssh-rsa AAAAB3NzaC1yc2E mykey@host", "",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 o\u00e9@h\U0001F600", ""]


def test_escaped_slashes_and_unescaped_unicode_pass_through(tmp_path: Path) -> None:
    document = '{"a": "x\\/y", "b": "caf\u00e9", "c": "tab\\there"}'
    assert jsonget("a", document, tmp_path) == (0, b"x/y\n")
    assert jsonget("b", document, tmp_path) == (0, "caf\u00e9\n".encode())
    assert jsonget("c", document, tmp_path) == (0, b"tab\there\n")


@pytest.mark.parametrize("document", ['{"uuid": "x"', '{"uuid" "x"}', '{"uuid": "x"} junk',
                                      '', '{"a": [1,', '{"uuid": "unterminated}'])
def test_invalid_json_prints_nothing_and_fails(document: str, tmp_path: Path) -> None:
    assert jsonget("uuid", document, tmp_path) == (2, b"")
