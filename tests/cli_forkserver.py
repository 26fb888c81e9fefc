"""The real `openstack` CLI without paying its start-up on every command.

A command of the `openstack` script spends about 1.5 s (4 s on a busy 2-core host)
importing the client and its ~900 command plugins and indexing the installed
distributions before it sends a request. The integration tests run hundreds of
commands, so a server process here does that once and forks a child per command;
the child runs the script's own entry point (openstackclient.shell.main) with the
command's arguments, environment, working directory and standard streams, exactly
as `openstack ARGS` would, and exits with its status. Nothing of one command is left
for the next: every child starts from the same pristine parent, which has imported
modules but never run a command.

One thing differs, on purpose: the pause between the polls of a command's `--wait`
(osc-lib's 5 s, openstacksdk's 2 s for servers) is WAIT_POLL_SECONDS. The command
still polls the same API until the same status; a test no longer sleeps up to 5 s
after its server is ready (the fake driver builds one in well under a second).

`run(args, env, timeout)` is the client side (one server per test process, started
on first use); `python -m tests.cli_forkserver SOCKET` is the server."""

from __future__ import annotations

import atexit
import importlib
import importlib.metadata
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

PLUGIN_GROUP_PREFIX = "openstack."
"""Entry-point groups of the CLI's commands and client plugins (openstack.cli,
openstack.compute.v2, ...): the modules the server imports ahead of the commands."""
_MAX_REQUEST = 1 << 20
WAIT_POLL_SECONDS = 0.5
"""Seconds between the status polls of `--wait` (see the module docstring)."""


# --- the server --------------------------------------------------------------------

def preload() -> None:
    """Import what every command imports, and fill cliff's module -> distribution
    index (a pure function of the installed packages), so a child starts warm."""
    import openstackclient.shell  # noqa: F401
    from cliff import command

    modules = {ep.module for dist in importlib.metadata.distributions()
               for ep in dist.entry_points if ep.group.startswith(PLUGIN_GROUP_PREFIX)}
    for name in sorted(modules):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the command itself reports a broken plugin
            continue
    command._get_distributions_by_modules()
    shorten_wait_polls(WAIT_POLL_SECONDS)


def shorten_wait_polls(seconds: float) -> None:
    """Make `seconds` the default pause of the polling helpers behind `--wait` (the
    commands pass none of their own)."""
    from openstack.compute.v2 import _proxy as compute
    from osc_lib import utils

    for func, name in ((utils.wait_for_status, "sleep_time"),
                       (utils.wait_for_delete, "sleep_time"),
                       (compute.Proxy.wait_for_server, "interval"),
                       (compute.Proxy.wait_for_status, "interval"),
                       (compute.Proxy.wait_for_delete, "interval")):
        _set_default(func, name, seconds)


def _set_default(func: Callable[..., object], name: str, value: object) -> None:
    if name in (func.__kwdefaults__ or {}):
        func.__kwdefaults__[name] = value  # type: ignore[index]
        return
    positional = [p.name for p in inspect.signature(func).parameters.values()
                  if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty]
    defaults = list(func.__defaults__ or ())
    defaults[positional.index(name)] = value
    func.__defaults__ = tuple(defaults)


def run_command(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become `openstack ARGS` and exit with its status."""
    stdin, stdout, stderr = fds
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(str(request["cwd"]))
    args = request["args"]
    assert isinstance(args, list)
    sys.argv = [sys.argv[0], *args]
    code = 1
    try:
        from openstackclient.shell import main
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(path: str) -> None:
    """Accept one command at a time: fork it, send back its pid, then its exit status
    (a line each)."""
    # As in the script: cliff names the program after argv[0] when it is imported.
    sys.argv = [str(Path(sys.executable).parent / "openstack")]
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    listener.settimeout(5)
    parent = os.getppid()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test process died without stopping it
                Path(path).unlink(missing_ok=True)
                Path(path).parent.rmdir()
                return
            continue
        conn.settimeout(None)
        with conn:
            message, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
            if len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                run_command(json.loads(message), fds)
            for fd in fds:
                os.close(fd)
            try:
                conn.sendall(b"%d\n" % pid)
            except OSError:  # the client went: so does its command
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            try:
                conn.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
            except OSError:
                pass


# --- the client --------------------------------------------------------------------

class _Server:
    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="novalet-osc-")
        self.path = str(Path(self.directory) / "socket")
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_forkserver", self.path], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, cwd=root)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line != "ready\n":
            self.stop()
            raise RuntimeError(f"the openstack CLI fork server did not start: {line!r}")
        atexit.register(self.stop)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


_server: _Server | None = None


def _started() -> _Server:
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = _Server()
    return _server


def run(args: list[str], env: dict[str, str], timeout: float = 120,
        cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """`openstack ARGS` with `env` as its whole environment, like subprocess.run with
    capture_output=True, text=True; subprocess.TimeoutExpired after `timeout` s."""
    server = _started()
    request = json.dumps({"args": args, "env": env, "cwd": cwd or os.getcwd()}).encode()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            open(os.devnull, "rb") as devnull, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(server.path)
        socket.send_fds(conn, [request], [devnull.fileno(), out.fileno(), err.fileno()])
        conn.settimeout(timeout)
        replies = conn.makefile("rb")
        pid = int(replies.readline() or 0)
        try:
            reply = replies.readline()
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)  # the server reaps it
            raise subprocess.TimeoutExpired(["openstack", *args], timeout) from None
        if not pid or not reply:
            raise RuntimeError(f"the openstack CLI fork server went away during {args}")
        code = int(reply)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            ["openstack", *args], code, out.read().decode(), err.read().decode())


if __name__ == "__main__":
    serve(sys.argv[1])
