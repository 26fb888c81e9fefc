"""The websocket proxies' start-up errors and their helpers, without a cloud."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from novalet import config
from novalet.console import proxies
from novalet.console import websocket_proxy as ws
from novalet.rpc.inprocess import InProcessBus


def test_netloc_fills_in_the_schemes_default_port() -> None:
    assert ws.netloc("Example.org", "http") == ("example.org", 80)
    assert ws.netloc("example.org", "https") == ("example.org", 443)
    assert ws.netloc("127.0.0.1:6080", "http") == ("127.0.0.1", 6080)
    assert ws.netloc("[::1]:6080", "http") == ("::1", 6080)


def test_logs_name_a_token_by_a_hash_prefix() -> None:
    label = ws.token_label("secret-token")
    assert len(label) == 8 and "secret" not in label


def test_a_missing_web_root_names_the_debian_package(tmp_path: Path) -> None:
    kind = ws.ProxyKind("novnc", str(tmp_path / "absent"), "novnc")
    with pytest.raises(ws.WebRootMissing, match="apt-get install novnc"):
        ws.ConsoleProxyServer(kind, ("127.0.0.1", 0), lambda ctx, token: None)


def conf_for(tmp_path: Path) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    for section, option in proxies.PORT_OPTIONS:
        conf.set(section, option, 0)
    return conf


async def test_port_zero_is_written_back_for_the_console_urls(tmp_path: Path) -> None:
    conf = conf_for(tmp_path)
    conf.set("spice", "enabled", False)
    running = proxies.ConsoleProxies(conf, InProcessBus())
    await running.start()
    try:
        assert sorted(running.running) == ["novncproxy", "serialproxy", "xvpvncproxy"]
        port = conf.get("vnc", "novncproxy_port")
        assert port == running.running["novncproxy"].port > 0
        assert ("noVNC", f"http://127.0.0.1:{port}/vnc_lite.html") in running.urls()
    finally:
        await running.stop()


async def test_a_port_in_use_names_the_option_to_change(tmp_path: Path) -> None:
    conf = conf_for(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        conf.set("serial_console", "serialproxy_port", taken.getsockname()[1])
        running = proxies.ConsoleProxies(conf, InProcessBus())
        with pytest.raises(proxies.ProxyStartError,
                           match=r"set \[serial_console\] serialproxy_port"):
            await running.start()
    assert running.running == {}  # what did start was stopped again


@pytest.mark.parametrize("name", ["novncproxy", "spicehtml5proxy", "serialproxy", "xvpvncproxy"])
def test_each_proxy_is_a_service_with_help(name: str, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    from novalet.cli.main import build_parser
    from novalet.service.roles import ROLES
    assert name in ROLES
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([name, "--help"])
    assert done.value.code == 0
    assert "needs only the bus" in " ".join(capsys.readouterr().out.split())
