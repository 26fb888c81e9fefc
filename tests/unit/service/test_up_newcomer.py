"""What a newcomer hit with `novalet up` (issue 14, item 10): the banner names an
`openstack` the PATH may not find, and a busy port surfaced as a bare [Errno 98]
after the bridge and DHCP were already set up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from novalet import config
from novalet.console.proxies import PORT_OPTIONS, free_ports_ini
from novalet.service import preflight
from novalet.service.up import banner, client_path_lines


def _conf(state_dir: Path, api_port: int) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state_dir))
    conf.set("api", "port", api_port)
    conf.set("metadata", "port", 0)
    for section, option in PORT_OPTIONS:
        conf.set(section, option, 0)
    return conf


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port this process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_banner_says_how_to_reach_the_openstack_client(tmp_path: Path) -> None:
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "openstack").write_text("#!/bin/sh\n")
    (venv_bin / "openstack").chmod(0o755)
    assert client_path_lines(venv_bin, path="/usr/bin:/bin") == [
        f"    export PATH={venv_bin}:$PATH   # the openstack client is in {venv_bin}"]
    assert client_path_lines(venv_bin, path=str(venv_bin)) == []  # already on the PATH
    (venv_bin / "openstack").unlink()
    assert "pip install python-openstackclient" in client_path_lines(
        venv_bin, path="/usr/bin:/bin")[0]


def test_banner_puts_the_path_line_before_the_openstack_commands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    conf = _conf(tmp_path, 8774)
    aio: Any = SimpleNamespace(conf=conf, services=SimpleNamespace(conf=conf),
                               console_proxies=SimpleNamespace(urls=lambda: []))
    lines = banner(aio, 1.0).splitlines()
    path_line = next(i for i, line in enumerate(lines) if "export PATH=" in line)
    first_openstack = next(i for i, line in enumerate(lines)
                           if line.strip().startswith("openstack "))
    assert path_line < first_openstack
    assert f"export PATH={Path(sys.executable).parent}:$PATH" in lines[path_line]
    assert any("make down" in line for line in lines)


def test_busy_port_is_named_with_its_holder_and_how_to_pick_another(
        tmp_path: Path, busy_port: int) -> None:
    with pytest.raises(preflight.PortsInUse) as error:
        preflight.check_ports(_conf(tmp_path, busy_port))
    message = error.value.message
    assert f"Port {busy_port} on 127.0.0.1, for the API, is in use" in message
    assert f"by pid {os.getpid()} " in message
    assert "make up PORT=" in message and "novalet up --port " in message


def test_busy_proxy_and_metadata_ports_name_their_options(tmp_path: Path,
                                                          busy_port: int) -> None:
    conf = _conf(tmp_path, _free_port())
    conf.set("vnc", "novncproxy_port", busy_port)
    with pytest.raises(preflight.PortsInUse) as error:
        preflight.check_ports(conf)
    assert "[vnc] novncproxy_port" in error.value.message
    conf.set("vnc", "novncproxy_port", 0)
    conf.set("metadata", "port", busy_port)
    with pytest.raises(preflight.PortsInUse) as error:
        preflight.check_ports(conf)
    assert "--metadata-port" in error.value.message


def test_free_ports_pass(tmp_path: Path) -> None:
    preflight.check_ports(_conf(tmp_path, _free_port()))


def test_listeners_cover_api_metadata_and_every_enabled_proxy(tmp_path: Path) -> None:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    ports = {listener.port for listener in preflight.listeners(conf)}
    assert {8774, 8775, 6080, 6081, 6082, 6083} <= ports


def test_make_up_on_a_busy_port_fails_before_any_side_effect(tmp_path: Path,
                                                             busy_port: int) -> None:
    """`novalet up` (fake driver) on a busy port: exit status 1, a message naming the
    port, and no state dir made (so no database, bridge, dnsmasq or guest either)."""
    conf_file = tmp_path / "novalet.conf"
    conf_file.write_text("[metadata]\nport = 0\n" + free_ports_ini())
    state = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-m", "novalet.cli.main", "up", "--driver", "fake",
         "--state-dir", str(state), "--port", str(busy_port), "--config-file",
         str(conf_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"Port {busy_port} on 127.0.0.1, for the API, is in use" in result.stderr
    assert "Errno" not in result.stderr
    assert not state.exists()


def test_check_ports_only_checks(tmp_path: Path, busy_port: int,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`novalet up --check-ports` (what `make up` runs before building the guest image)."""
    from novalet.cli.main import main
    conf_file = tmp_path / "novalet.conf"
    conf_file.write_text("[metadata]\nport = 0\n" + free_ports_ini())
    state = tmp_path / "state"
    argv = ["up", "--check-ports", "--state-dir", str(state), "--config-file", str(conf_file)]
    assert main([*argv, "--port", str(busy_port)]) == 1
    assert f"Port {busy_port} on 127.0.0.1, for the API, is in use" in capsys.readouterr().err
    assert main([*argv, "--port", str(_free_port())]) == 0
    assert not state.exists()


def test_the_port_suggested_is_none_of_the_clouds_own(tmp_path: Path) -> None:
    """8774 busy: the suggestion must not be 8775, the metadata service's port."""
    with socket.socket() as api, socket.socket() as next_one:
        api.bind(("127.0.0.1", 0))
        api.listen()
        port = int(api.getsockname()[1])
        conf = _conf(tmp_path, port)
        conf.set("metadata", "port", port + 1)
        try:
            next_one.bind(("127.0.0.1", port + 2))  # and the one after is busy too
            next_one.listen()
        except OSError:
            pytest.skip("the port after next is taken already")
        with pytest.raises(preflight.PortsInUse) as error:
            preflight.check_ports(conf)
        suggested = error.value.message.split("make up PORT=")[1].split("`")[0]
        assert int(suggested) > port + 2
