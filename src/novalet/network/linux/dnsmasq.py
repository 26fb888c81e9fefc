"""One dnsmasq per DHCP network, bound to the network's bridge, serving static leases only.

Choices, and why:

- DHCP only (`--port=0`): no DNS server runs on the host. Guests get the
  network's `dns` servers as DHCP option 6 (none when the list is empty), so
  nothing on the host answers port 53 to guests and nothing competes with a
  resolver the host may already run.
- Static leases from a hosts file (`<mac>,<hostname>,<ip>` a line) rewritten
  on every change; an addition is picked up with SIGHUP.
- Leases live only in dnsmasq's memory (`--leasefile-ro`, no script) and the
  server is authoritative, so a restart loses nothing a client needs: it
  renews and is acknowledged. When a MAC leaves the hosts file (or its address
  changes), dnsmasq is restarted instead of reloaded: it would otherwise keep
  the old lease and refuse the address to the next guest that gets it
  ("not using configured address ... because it is leased to ...").
- dnsmasq drops privileges after starting and re-reads the hosts file as that
  user; when the state directory is not reachable by other users, it is told
  to stay root (`--user=root`) rather than serve nothing.

Running daemons are found from their pid file and /proc: a pid only counts
when its command line is dnsmasq's with this network's pid file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import time
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from pathlib import Path

from novalet.network.linux.commands import CommandRunner
from novalet.network.linux.errors import LinuxNetError
from novalet.network.model import NetworkOnHost

LOG = logging.getLogger(__name__)

DHCP_LEASE_SECONDS = 86400
STOP_TIMEOUT = 3.0
"""Seconds a dnsmasq gets to exit on SIGTERM before SIGKILL."""
PIDFILE_TIMEOUT = 2.0
"""Seconds to wait for a freshly started dnsmasq to write its pid file."""


class DnsmasqFailed(LinuxNetError):
    msg_fmt = "dnsmasq for bridge %(bridge)s: %(reason)s"


@dataclass(frozen=True)
class DnsmasqFiles:
    """Where the dnsmasq of one bridge keeps its files."""

    directory: Path
    bridge: str

    @property
    def pid(self) -> Path:
        return self.directory / f"{self.bridge}.pid"

    @property
    def hosts(self) -> Path:
        return self.directory / f"{self.bridge}.hosts"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.bridge}.log"

    def all(self) -> list[Path]:
        return [self.pid, self.hosts, self.log]


def dnsmasq_argv(network: NetworkOnHost, files: DnsmasqFiles, *,
                 lease_seconds: int = DHCP_LEASE_SECONDS, user: str | None = None) -> list[str]:
    """The full command line of the dnsmasq serving `network` on its bridge."""
    cidr = _network(network)
    argv = [
        "dnsmasq",
        "--conf-file=",
        "--no-hosts",
        "--no-resolv",
        "--strict-order",
        "--port=0",
        "--bind-interfaces",
        f"--interface={network.bridge}",
        "--except-interface=lo",
        f"--listen-address={network.gateway}",
        f"--pid-file={files.pid}",
        f"--log-facility={files.log}",
        f"--dhcp-hostsfile={files.hosts}",
        "--leasefile-ro",
        "--dhcp-authoritative",
        # silent towards MACs not in the hosts file: on a multi_host segment another
        # host's guests are heard here too, and an authoritative NAK would break them
        "--dhcp-ignore=tag:!known",
        "--dhcp-no-override",
        f"--dhcp-range={network.dhcp_start},static,{network.netmask},{lease_seconds}",
        f"--dhcp-lease-max={max(cidr.num_addresses, 1)}",
        f"--dhcp-option=3,{network.gateway}",
    ]
    if network.dns:
        argv.append("--dhcp-option=6," + ",".join(network.dns))
    if network.mtu:
        argv.append(f"--dhcp-option=26,{network.mtu}")
    if user:
        argv.append(f"--user={user}")
    return argv


def hosts_file(network: NetworkOnHost) -> str:
    """The static hosts of a network as dnsmasq's dhcp-hostsfile, sorted by address."""
    lines = []
    for mac, (ip, hostname) in sorted(network.hosts.items(), key=lambda item: _ip_key(item[1][0])):
        name = dhcp_hostname(hostname)
        lines.append(f"{mac.lower()},{name},{ip}" if name else f"{mac.lower()},{ip}")
    return "".join(line + "\n" for line in lines)


def dhcp_hostname(hostname: str) -> str:
    """A hostname dnsmasq accepts: lower-case letters, digits and inner dashes, 63 at most."""
    label = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-"
                    for c in hostname.lower().split(".")[0])
    return label.strip("-")[:63].rstrip("-")


def _hosts_pairs(text: str | None) -> set[tuple[str, str]]:
    pairs = set()
    for line in (text or "").splitlines():
        fields = line.strip().split(",")
        if len(fields) >= 2:
            pairs.add((fields[0], fields[-1]))
    return pairs


def _ip_key(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split(".")) if ip.count(".") == 3 else (999,)


def _network(network: NetworkOnHost) -> IPv4Network:
    net = ip_network(network.cidr, strict=False)
    if not isinstance(net, IPv4Network):
        raise DnsmasqFailed(bridge=network.bridge, reason=f"{network.cidr} is not IPv4")
    return net


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach files in `path` (o+x all the way)."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


class Dnsmasq:
    """Keeps one dnsmasq per DHCP network running with the right arguments and hosts."""

    def __init__(self, directory: Path, runner: CommandRunner, *,
                 lease_seconds: int = DHCP_LEASE_SECONDS) -> None:
        self.directory = directory
        self.runner = runner
        self.lease_seconds = lease_seconds

    def files(self, bridge: str) -> DnsmasqFiles:
        return DnsmasqFiles(self.directory, bridge)

    def argv(self, network: NetworkOnHost) -> list[str]:
        user = None if reachable_by_others(self.directory) else "root"
        return dnsmasq_argv(network, self.files(network.bridge),
                            lease_seconds=self.lease_seconds, user=user)

    async def ensure(self, network: NetworkOnHost) -> str:
        """Make the network's dnsmasq run with its current hosts; say what was done:
        started, restarted, reloaded or unchanged."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        files = self.files(network.bridge)
        argv = self.argv(network)
        new_hosts = hosts_file(network)
        try:
            old_hosts: str | None = files.hosts.read_text()
        except FileNotFoundError:
            old_hosts = None
        if new_hosts != old_hosts:
            _write_atomically(files.hosts, new_hosts)
        running = self._find(files)
        if running is None:
            await self._start(network.bridge, argv, files)
            return "started"
        pid, cmdline = running
        if cmdline[1:] != argv[1:]:
            LOG.info("Restarting dnsmasq for %s: its arguments changed", network.bridge)
            await self._stop(pid, network.bridge)
            await self._start(network.bridge, argv, files)
            return "restarted"
        if _hosts_pairs(old_hosts) - _hosts_pairs(new_hosts):
            LOG.info("Restarting dnsmasq for %s: hosts left, their leases must go",
                     network.bridge)
            await self._stop(pid, network.bridge)
            await self._start(network.bridge, argv, files)
            return "restarted"
        if new_hosts != old_hosts:
            self.runner.signal(pid, signal.SIGHUP)
            LOG.info("Reloaded the DHCP hosts of %s (dnsmasq pid %d)", network.bridge, pid)
            return "reloaded"
        return "unchanged"

    def bridges(self) -> list[str]:
        """The bridges that have dnsmasq state here (running or not)."""
        if not self.directory.is_dir():
            return []
        return sorted({p.name.rsplit(".", 1)[0] for p in self.directory.iterdir()
                       if p.suffix in (".pid", ".hosts")})

    def pid(self, bridge: str) -> int | None:
        """The pid of the bridge's running dnsmasq, if one runs."""
        running = self._find(self.files(bridge))
        return running[0] if running else None

    async def stop(self, bridge: str) -> None:
        """Stop the bridge's dnsmasq (if it runs) and remove its files."""
        files = self.files(bridge)
        running = self._find(files)
        if running is not None:
            await self._stop(running[0], bridge)
        for path in files.all():
            path.unlink(missing_ok=True)

    def _find(self, files: DnsmasqFiles) -> tuple[int, list[str]] | None:
        pid = _read_pid(files.pid)
        if pid is None:
            return None
        cmdline = self.runner.cmdline(pid)
        if (not cmdline or os.path.basename(cmdline[0]) != "dnsmasq"
                or f"--pid-file={files.pid}" not in cmdline):
            return None
        return pid, cmdline

    async def _start(self, bridge: str, argv: list[str], files: DnsmasqFiles) -> int:
        files.pid.unlink(missing_ok=True)
        # dnsmasq daemonizes; its first process exits once the daemon has bound its
        # sockets, and reports a failure to do so as its exit status
        await self.runner.run(argv, timeout=10.0)
        deadline = time.monotonic() + PIDFILE_TIMEOUT
        while (pid := _read_pid(files.pid)) is None:
            if time.monotonic() > deadline:
                raise DnsmasqFailed(bridge=bridge, reason=f"started but wrote no pid to {files.pid}")
            await asyncio.sleep(0.01)
        LOG.info("Started dnsmasq for %s (pid %d)", bridge, pid)
        return pid

    async def _stop(self, pid: int, bridge: str) -> None:
        self.runner.signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.runner.cmdline(pid) is not None:
            if time.monotonic() > deadline:
                LOG.warning("dnsmasq for %s (pid %d) ignored SIGTERM; killing it", bridge, pid)
                self.runner.signal(pid, signal.SIGKILL)
                break
            await asyncio.sleep(0.01)
        LOG.info("Stopped dnsmasq for %s (pid %d)", bridge, pid)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(path)
