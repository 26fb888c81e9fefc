"""The console proxies a configuration enables, built, started and stopped together.

[vnc] enabled runs the noVNC websocket proxy and the native VNC proxy, [spice]
enabled the SPICE HTML5 proxy, [serial_console] enabled the serial proxy. Each
validates tokens only through the conductor, over the bus it is given. A port
of 0 becomes the kernel's choice, written back into the configuration so the
console URLs the API makes in this process name it.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from typing import Protocol

from novalet import config
from novalet.conductor.rpcapi import ConductorAPI
from novalet.console import websocket_proxy as ws
from novalet.console.tokens import access_url, base_url_option
from novalet.console.vnc_proxy import VncProxy
from novalet.rpc.bus import Bus


class ProxyStartError(OSError):
    """A proxy could not start; the message says what to change."""


@dataclass(frozen=True)
class ProxySpec:
    """One proxy: its service name (`novalet <name>`), options and what it serves."""

    name: str
    title: str
    section: str
    option: str  # prefix of the _host / _port options
    console_type: str
    kind: ws.ProxyKind | None  # None: the native VNC proxy

    @property
    def port_option(self) -> str:
        return f"[{self.section}] {self.option}_port"


SPECS: dict[str, ProxySpec] = {spec.name: spec for spec in (
    ProxySpec("novncproxy", "noVNC", "vnc", "novncproxy", "novnc", ws.NOVNC),
    ProxySpec("xvpvncproxy", "native VNC", "vnc", "xvpvncproxy", "xvpvnc", None),
    ProxySpec("spicehtml5proxy", "SPICE HTML5", "spice", "html5proxy", "spice-html5", ws.SPICE),
    ProxySpec("serialproxy", "serial", "serial_console", "serialproxy", "serial", ws.SERIAL),
)}
"""Every proxy, by the name of its service."""


PORT_OPTIONS: list[tuple[str, str]] = [(spec.section, f"{spec.option}_port")
                                       for spec in SPECS.values()]
"""(section, option) of every proxy's port."""


def free_ports_ini() -> str:
    """Configuration putting every proxy on a port the kernel picks, for clouds that
    share a machine (tests, benchmarks) and so can't all have 6080-6083."""
    sections: dict[str, list[str]] = {}
    for section, option in PORT_OPTIONS:
        sections.setdefault(section, []).append(f"{option} = 0")
    return "".join(f"[{section}]\n" + "\n".join(lines) + "\n"
                   for section, lines in sections.items())


def enabled(conf: config.Config) -> list[ProxySpec]:
    """The proxies the configuration's [vnc], [spice] and [serial_console] enable."""
    return [spec for spec in SPECS.values() if conf.get(spec.section, "enabled")]


class Running(Protocol):
    @property
    def port(self) -> int: ...
    async def stop(self) -> None: ...


class ConsoleProxies:
    """Some proxies (all enabled ones by default) over one bus."""

    def __init__(self, conf: config.Config, bus: Bus, names: list[str] | None = None) -> None:
        self.conf = conf
        self.conductor = ConductorAPI(bus, conf)
        self.specs = enabled(conf) if names is None else [SPECS[name] for name in names]
        self.running: dict[str, Running] = {}

    async def start(self) -> None:
        try:
            for spec in self.specs:
                self.running[spec.name] = await self._start(spec)
                self.conf.set(spec.section, f"{spec.option}_port", self.running[spec.name].port)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, spec: ProxySpec) -> Running:
        host = self.conf.get(spec.section, f"{spec.option}_host")
        port = self.conf.get(spec.section, f"{spec.option}_port")
        try:
            if spec.kind is None:
                native = VncProxy(host, port, self.conductor.console_check_vnc_auth)
                await native.start()
                return native
            timeout = float(self.conf.get("DEFAULT", "rpc_response_timeout")) + 5
            check = ws.conductor_check(asyncio.get_running_loop(),
                                       self.conductor.console_check_token, timeout)
            proxy = ws.WebsocketProxy(spec.kind, host, port, check, self._base_url(spec))
            proxy.start()
            return proxy
        except ws.WebRootMissing as exc:
            raise ProxyStartError(f"cannot start the {spec.title} proxy: {exc}") from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ProxyStartError(
                    f"cannot start the {spec.title} proxy: {host}:{port} is in use; set "
                    f"{spec.port_option} to a free port (0 picks one)") from exc
            raise ProxyStartError(f"cannot start the {spec.title} proxy on {host}:{port}: "
                                  f"{exc}") from exc

    def _base_url(self, spec: ProxySpec) -> str:
        return str(self.conf.get(spec.section, base_url_option(spec.section, spec.option)) or "")

    def check_public_ports(self) -> None:
        """A proxy in a process of its own can't hand its kernel-chosen port to the
        API, whose console URLs would then name port 0: refuse that."""
        for spec in self.specs:
            if self.conf.get(spec.section, f"{spec.option}_port") == 0 and \
                    not self._base_url(spec):
                base = f"[{spec.section}] {base_url_option(spec.section, spec.option)}"
                raise ProxyStartError(
                    f"the {spec.title} proxy on its own needs a fixed {spec.port_option} "
                    f"(or {base}): the API's console URLs could not name a port picked "
                    "at start")

    async def stop(self) -> None:
        running, self.running = self.running, {}
        await asyncio.gather(*(proxy.stop() for proxy in running.values()))

    def urls(self) -> list[tuple[str, str]]:
        """(title, where clients go) of each running proxy, for banners."""
        found = []
        for spec in self.specs:
            if spec.name in self.running:
                url = access_url(self.conf, spec.console_type, "TOKEN")
                found.append((spec.title, url.split("?")[0]))
        return found
