"""What `novalet up` checks before its first side effect: that every port the cloud
will listen on (the API, the metadata service, the console proxies) is free;
`novalet api` checks its port the same way.

Without it a busy port was found only when the API server bound it, after the
bridge, dnsmasq and the firewall had been set up, as a bare `[Errno 98]`. A port
taken between the check and the bind still fails there: `cannot_listen` gives
that failure the same message (the port, what holds it, how to pick another).
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from novalet import config, exceptions
from novalet.console import proxies

LISTEN_STATE = "0A"
"""The state column of /proc/net/tcp for a listening socket."""


class PortsInUse(exceptions.Conflict):
    msg_fmt = "%(details)s"


class CannotListen(exceptions.Conflict):
    msg_fmt = "%(details)s"


@dataclass(frozen=True)
class Listener:
    """One socket the cloud will listen on, and how to move it elsewhere."""

    what: str
    host: str
    port: int
    how_to_change: str


def api_listener(conf: config.Config, command: str = "up") -> Listener:
    """The API's socket, as `novalet up` or `novalet api` (which has no --port) binds it."""
    how = ("`make up PORT={free}` or `novalet up --port {free}` ([api] port)"
           if command == "up" else "[api] port = {free} in its --config-file")
    return Listener("the API", str(conf.get("api", "listen")), int(conf.get("api", "port")),
                    how)


def listeners(conf: config.Config) -> list[Listener]:
    """Every fixed port `novalet up` with this configuration binds (port 0: the kernel
    picks one, nothing to check)."""
    found = [api_listener(conf)]
    if conf.get("metadata", "port") > 0:
        found.append(Listener(
            "the metadata service", str(conf.get("metadata", "listen")),
            int(conf.get("metadata", "port")),
            "`novalet up --metadata-port {free}` ([metadata] port; 0 runs no metadata "
            "service)"))
    for spec in proxies.enabled(conf):
        found.append(Listener(
            f"the {spec.title} console proxy",
            str(conf.get(spec.section, f"{spec.option}_host")),
            int(conf.get(spec.section, f"{spec.option}_port")),
            f"{spec.port_option} = {{free}} in a --config-file (`make up "
            "CONFIG=novalet.conf`; 0 picks a free port)"))
    return [listener for listener in found if listener.port != 0]


def is_free(host: str, port: int) -> bool:
    """Whether a server could bind host:port now (with SO_REUSEADDR, as the cloud's
    servers do, so a connection in TIME_WAIT does not count)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return True  # not ours to judge: binding will say what is wrong with the name
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            return True  # EADDRNOTAVAIL, EACCES ...: the server's own error says it better
    return True


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """Which process listens on TCP `port`: 'pid N (command line)', or None when the
    socket's owner can't be seen (another user's process, unless we are root)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN_STATE and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    command = " ".join(" ".join(a.decode(errors="replace").split())
                                       for a in argv if a)
                    if len(command) > 120:
                        command = command[:119] + "…"
                    return f"pid {entry.name} ({command})"
            except OSError:
                continue
    return None


def next_free(host: str, port: int, taken: set[int], tries: int = 50) -> int | None:
    """The first free port after `port` that is not in `taken` (the cloud's other
    ports), to suggest one."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if candidate not in taken and is_free(host, candidate):
            return candidate
    return None


def busy(listener: Listener, taken: set[int] | None = None) -> str:
    """What to say of a listener's port another process has: the port, its holder
    (when that can be seen) and how to pick another (not one of `taken`, the cloud's
    other ports)."""
    held = holder(listener.port)
    free = next_free(listener.host, listener.port, (taken or set()) | {listener.port})
    return (f"Port {listener.port} on {listener.host}, for {listener.what}, is in use "
            + (f"by {held}" if held else "(`ss -ltnp` as root shows by what)")
            + ": is another cloud running? Pick another port: "
            + listener.how_to_change.format(free=free or "N") + ".")


def check_ports(conf: config.Config, wanted: list[Listener] | None = None) -> None:
    """PortsInUse naming each busy port, what holds it (when that can be seen) and how
    to pick another; nothing is bound or changed. `wanted`: the listeners to check
    (default: all of `novalet up`'s)."""
    wanted = listeners(conf) if wanted is None else wanted
    taken = {listener.port for listener in wanted}
    problems = [busy(listener, taken) for listener in wanted
                if listener.port != 0 and not is_free(listener.host, listener.port)]
    if problems:
        raise PortsInUse(details="\n".join(problems))


def cannot_listen(listener: Listener, error: OSError) -> CannotListen:
    """The error for a server whose bind of `listener` failed with `error`: a port
    taken since the check gets the check's message (the port, its holder, how to
    pick another)."""
    if error.errno == errno.EADDRINUSE:
        return CannotListen(details=busy(listener))
    return CannotListen(details=f"Cannot listen on {listener.host}:{listener.port} for "
                                f"{listener.what}: {error.strerror or error}.")
