"""A multi-process cloud on this one machine: every service its own process over
RabbitMQ and a server database, with several compute hosts told apart by their
`host` names and state directories. tests/multihost and
`bench/boot_fake.py --multihost N` use it.

Each host gets the configuration file a real host of that role would have
(docs/multi-host.md): the controller's names the database, compute hosts'
don't.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from novalet.console.proxies import PORT_OPTIONS

BIN = Path(sys.executable).parent
SERVICE_PASSWORD = "service-secret"
CONTROLLER_SERVICES = ("conductor", "scheduler", "api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ini(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                  for k, v in options.items()]
        lines.append("")
    return "\n".join(lines)


@dataclass
class Process:
    name: str
    conf: Path
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    offset: int = 0  # the log's size when the current run started
    _out: IO[bytes] | None = field(default=None, repr=False)

    @property
    def service(self) -> str:
        return self.name.split("@")[0]

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class LocalDeployment:
    """Configs under `root`, one process per service and host."""

    def __init__(self, root: Path, transport_url: str, database_url: str,
                 computes: list[str], *, options: dict[str, dict[str, Any]] | None = None,
                 host_options: dict[str, dict[str, dict[str, Any]]] | None = None,
                 host_prefix: dict[str, list[str]] | None = None) -> None:
        """options: extra config for every host; host_options: per compute host;
        host_prefix: a command a host's services run under (`ip netns exec NS`: a
        host with a network namespace of its own, as a real host has its kernel's)."""
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.computes = computes
        self.processes: dict[str, Process] = {}
        self.host_prefix = host_prefix or {}
        common: dict[str, dict[str, Any]] = {
            "DEFAULT": {"transport_url": transport_url, "report_interval": 1,
                        "service_down_time": 6, "rpc_response_timeout": 30,
                        "compute_driver": "fake"},
            "api": {"listen": "127.0.0.1", "port": self.port, "public_url": self.url},
            "service_user": {"password": SERVICE_PASSWORD},
            "conductor": {"recovery_interval": 2},
            "metadata": {"port": 0}}
        # Console proxies (own processes, if a test starts them) on free ports the
        # API's console URLs then name: never the fixed 6080-6083.
        for section, option in PORT_OPTIONS:
            common.setdefault(section, {})[option] = free_port()
        for section, values in (options or {}).items():
            common.setdefault(section, {}).update(values)
        self._common = common
        self._database_url = database_url
        self._write("controller", common, {"database": {"connection": database_url}})
        for host in computes:
            self._write(host, common, (host_options or {}).get(host, {}))

    def _write(self, host: str, common: dict[str, dict[str, Any]],
               extra: dict[str, dict[str, Any]]) -> None:
        sections = {name: dict(values) for name, values in common.items()}
        sections["DEFAULT"].update(host=host, state_path=str(self.root / host))
        for section, values in extra.items():
            sections.setdefault(section, {}).update(values)
        (self.root / host).mkdir(parents=True, exist_ok=True)
        (self.root / f"{host}.conf").write_text(ini(sections))

    def add_api_host(self, host: str, options: dict[str, dict[str, Any]] | None = None
                     ) -> str:
        """The configuration of one more API host `host` on a port of its own, with
        the controller's database, bus and state dir (its token keys and policy
        file): what a second API host behind a load balancer has. Its URL; start it
        with start("api", host)."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        extra: dict[str, dict[str, Any]] = {
            "DEFAULT": {"state_path": str(self.root / "controller")},
            "database": {"connection": self._database_url},
            "api": {"port": port, "public_url": url, "workers": 1}}
        for section, values in (options or {}).items():
            extra.setdefault(section, {}).update(values)
        self._write(host, self._common, extra)
        return url

    def conf_of(self, host: str) -> Path:
        return self.root / f"{host}.conf"

    # --- processes -------------------------------------------------------------

    def sync_db(self) -> None:
        subprocess.run([str(BIN / "novalet"), "manage", "db", "sync", "--config-file",
                        str(self.conf_of("controller"))], check=True, capture_output=True)

    def start(self, service: str, host: str = "controller", wait: bool = True) -> Process:
        name = f"{service}@{host}"
        proc = self.processes.get(name) or Process(name, self.conf_of(host),
                                                   self.root / f"{service}-{host}.log")
        self.processes[name] = proc
        proc.offset = proc.log.stat().st_size if proc.log.exists() else 0
        if proc._out:  # a restart: the last run's handle
            proc._out.close()
        proc._out = open(proc.log, "ab")
        proc.popen = subprocess.Popen(
            [*self.host_prefix.get(host, []), str(BIN / "novalet"), service,
             "--config-file", str(proc.conf)],
            stdout=proc._out, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: Process, timeout: float = 60) -> None:
        """Until this start of `proc` says it is running."""
        deadline = time.monotonic() + timeout
        marker = f"novalet {proc.service} is running".encode()
        while time.monotonic() < deadline:
            with open(proc.log, "rb") as log:
                log.seek(proc.offset)
                if marker in log.read():
                    return
            if not proc.running():
                raise RuntimeError(f"{proc.name} exited:\n{self.tail(proc)}")
            time.sleep(0.05)
        raise TimeoutError(f"{proc.name} did not start in {timeout}s:\n{self.tail(proc)}")

    def start_all(self) -> None:
        self.sync_db()
        for service in CONTROLLER_SERVICES:
            self.start(service)
        for host in self.computes:
            self.start("compute", host)

    def kill(self, service: str, host: str = "controller",
             sig: signal.Signals = signal.SIGKILL) -> None:
        proc = self.processes[f"{service}@{host}"]
        assert proc.popen is not None
        proc.popen.send_signal(sig)
        proc.popen.wait(30)

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes.values())):
            if proc.running():
                assert proc.popen is not None
                proc.popen.terminate()
        for proc in self.processes.values():
            if proc.popen is not None:
                try:
                    proc.popen.wait(30)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
            if proc._out:
                proc._out.close()

    def tail(self, proc: Process, lines: int = 30) -> str:
        text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_api(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/compute/v2.1/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"the API at {self.url} did not answer in {timeout}s")
