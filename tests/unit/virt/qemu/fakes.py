"""In-memory stand-ins for the QEMU driver's three doors: commands, processes and QMP.

FakeRunner plays qemu-img (disk files are small JSON stubs), FakeProcesses
plays daemonized QEMUs (a pid table), and FakeQmp answers QMP commands for
those QEMUs. Together they let the driver's logic run without any program.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novalet.virt.driver import ImageFetcher, ImageMeta
from novalet.virt.qemu import formats
from novalet.virt.qemu.commands import CommandFailed, CommandResult, CommandRunner
from novalet.virt.qemu.monitor import Monitor, MonitorCommandFailed, MonitorUnreachable
from novalet.virt.qemu.process import QemuProcesses, read_pidfile

STUB = b"FAKEDISK "


def qcow2_header(size: int, *, version: int = 3, backing: bool = False,
                 data_file: bool = False) -> bytes:
    """The first bytes of a qcow2 image of virtual size `size` (enough for inspection)."""
    head = bytearray(1024)
    head[0:4] = b"QFI\xfb"
    struct.pack_into(">I", head, 4, version)
    if backing:
        struct.pack_into(">QI", head, 8, 0x200, 10)
        head[0x200:0x20A] = b"/etc/shado"
    struct.pack_into(">I", head, 20, 16)
    struct.pack_into(">Q", head, 24, size)
    if data_file:
        struct.pack_into(">Q", head, 72, formats.QCOW2_INCOMPAT_DATA_FILE)
    return bytes(head)


def write_stub(path: Path, fmt: str, size: int, backing: str | None = None,
               backing_format: str | None = None) -> None:
    path.write_bytes(STUB + json.dumps({"format": fmt, "size": size, "backing": backing,
                                        "backing_format": backing_format}).encode())


def read_stub(path: Path) -> dict[str, Any] | None:
    data = path.read_bytes()
    if not data.startswith(STUB):
        return None
    result: dict[str, Any] = json.loads(data[len(STUB):])
    return result


class FakeRunner(CommandRunner):
    """Records every command; emulates qemu-img on stub files; mkfs does nothing."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail: dict[str, str] = {}  # subcommand or program -> stderr of a failure
        self.results: dict[str, CommandResult] = {}  # program -> canned result

    def commands(self, program: str, sub: str | None = None) -> list[list[str]]:
        return [c for c in self.calls
                if os.path.basename(c[0]) == program and (sub is None or c[1] == sub)]

    async def run(self, argv: Sequence[str], *, timeout: float = 300.0,
                  check: bool = True, cwd: str | None = None) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        program = os.path.basename(argv[0])
        key = argv[1] if program == "qemu-img" else program
        if key in self.fail:
            raise CommandFailed(program=program, returncode=1, stderr=self.fail[key])
        if program in self.results:
            return self.results[program]
        stdout = ""
        if program == "qemu-img":
            stdout = self._qemu_img(argv[1], argv[2:])
        return CommandResult(tuple(argv), 0, stdout, "", 0.0)

    def _qemu_img(self, sub: str, args: list[str]) -> str:
        opts, positional = _split(args)
        if sub == "create":
            path = Path(positional[0])
            size = int(positional[1]) if len(positional) > 1 else None
            backing = opts.get("-b")
            if backing is not None and size is None:
                size = self.virtual_size(Path(backing), opts["-F"])
            write_stub(path, opts["-f"], size or 0, backing, opts.get("-F"))
        elif sub == "resize":
            path = Path(positional[0])
            stub = read_stub(path)
            assert stub is not None and stub["format"] == opts["-f"]
            write_stub(path, stub["format"], int(positional[1]), stub["backing"],
                       stub["backing_format"])
        elif sub == "convert":
            source, dest = Path(positional[0]), Path(positional[1])
            write_stub(dest, opts["-O"], self.virtual_size(source, opts["-f"]))
        elif sub == "info":
            path = Path(positional[0])
            stub = read_stub(path)
            if stub is not None:
                assert stub["format"] == opts["-f"], f"{path} is {stub['format']}, not {opts['-f']}"
                return json.dumps({"format": stub["format"], "virtual-size": stub["size"],
                                   "actual-size": 4096,
                                   **({"backing-filename": stub["backing"],
                                       "backing-filename-format": stub["backing_format"]}
                                      if stub["backing"] else {})})
            return json.dumps({"format": opts["-f"],
                               "virtual-size": self.virtual_size(path, opts["-f"]),
                               "actual-size": path.stat().st_size})
        return ""

    def virtual_size(self, path: Path, fmt: str) -> int:
        stub = read_stub(path)
        if stub is not None:
            return int(stub["size"])
        head = path.read_bytes()[:64]
        if fmt == "qcow2":
            return int(struct.unpack(">Q", head[24:32])[0])
        if fmt == "vmdk":
            return int(struct.unpack("<Q", head[12:20])[0]) * 512
        return path.stat().st_size


def _split(args: list[str]) -> tuple[dict[str, str], list[str]]:
    flags_with_values = {"-f", "-F", "-b", "-O", "-o"}
    opts: dict[str, str] = {}
    positional: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in flags_with_values:
            opts[arg] = next(it)
        elif arg.startswith("-"):
            opts[arg] = ""
        else:
            positional.append(arg)
    return opts, positional


@dataclass
class FakeVm:
    pid: int
    argv: list[str]
    qmp: str
    pidfile: str
    status: str = "running"
    alive: bool = True
    acpi: bool = True  # powers off when the ACPI power button is pressed
    commands: list[str] = field(default_factory=list)
    fds: dict[str, int] = field(default_factory=dict)
    loaded_state: bytes | None = None
    hot_plugged: list[str] = field(default_factory=list)  # device ids added by device_add
    unplugged: set[str] = field(default_factory=set)  # ids the guest released (device_del)
    incoming: str | None = None  # where migrate-incoming listens (a live migration)
    arguments: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # per command

    def option(self, flag: str) -> list[str]:
        return [self.argv[i + 1] for i, a in enumerate(self.argv[:-1]) if a == flag]

    def peripherals(self) -> list[str]:
        """What qom-list /machine/peripheral names: devices given an id."""
        given = [p.removeprefix("id=") for d in self.option("-device")
                 for p in d.split(",") if p.startswith("id=")]
        return [d for d in given + self.hot_plugged if d not in self.unplugged]


def _qmp_path(argv: list[str], directory: Path) -> str:
    """Where QEMU, started in directory, binds its QMP socket."""
    for arg in argv:
        if arg.startswith("socket,id=qmp,path="):
            value = arg[len("socket,id=qmp,path="):].replace(",,", "\0")
            return str(directory / value.split(",")[0].replace("\0", ","))
    raise AssertionError(f"no QMP socket in {argv}")


class FakeProcesses(QemuProcesses):
    """A pid table of pretend daemonized QEMUs."""

    def __init__(self) -> None:
        self.vms: dict[int, FakeVm] = {}
        self.next_pid = 4000
        self.launch_error: str | None = None
        self.busy_ports: set[int] = set()  # a launch whose console uses one of these fails
        self.acpi = True  # what new VMs do with the power button

    @property
    def running(self) -> list[FakeVm]:
        return [vm for vm in self.vms.values() if vm.alive]

    def vm_for(self, qmp: Path) -> FakeVm | None:
        return next((vm for vm in self.running if vm.qmp == str(qmp)), None)

    async def launch(self, argv: Sequence[str], pidfile: Path) -> int:
        if self.launch_error:
            raise CommandFailed(program="qemu-system-x86_64", returncode=1,
                                stderr=self.launch_error)
        argv = list(argv)
        for port in self.busy_ports:
            if any(f"port={port}," in a for a in argv):
                raise CommandFailed(program="qemu-system-x86_64", returncode=1,
                                    stderr=f"port {port}: Address already in use")
        self.next_pid += 1
        vm = FakeVm(self.next_pid, argv, _qmp_path(argv, pidfile.parent), str(pidfile),
                    acpi=self.acpi,
                    status="inmigrate" if "-incoming" in argv else "running")
        self.vms[vm.pid] = vm
        pidfile.write_text(f"{vm.pid}\n")
        return vm.pid

    def find(self, pidfile: Path, marker: str) -> int | None:
        pid = read_pidfile(pidfile)
        if pid is None or not self.is_alive(pid, marker):
            return None
        return pid

    def is_alive(self, pid: int, marker: str) -> bool:
        vm = self.vms.get(pid)
        return vm is not None and vm.alive and marker == vm.pidfile

    def kill(self, pid: int, sig: int = 9) -> None:
        if pid in self.vms:
            self.vms[pid].alive = False

    async def wait_gone(self, pid: int, marker: str, timeout: float) -> bool:
        import asyncio
        if self.is_alive(pid, marker):
            await asyncio.sleep(min(timeout, 0.01))
        return not self.is_alive(pid, marker)


class FakeQmp:
    """Connects QMP sessions to FakeProcesses' VMs."""

    def __init__(self, processes: FakeProcesses) -> None:
        self.processes = processes
        self.refuse: set[str] = set()  # commands answered with an error
        self.backup_error: str | None = None
        self.taken_ports: set[int] = set()  # bound by another program: QEMU can't listen

    @asynccontextmanager
    async def __call__(self, socket: Path) -> AsyncIterator[Monitor]:
        vm = self.processes.vm_for(socket)
        if vm is None:
            raise MonitorUnreachable(socket=socket, reason="connection refused")
        yield _Session(self, vm)


class _Session:
    def __init__(self, qmp: FakeQmp, vm: FakeVm) -> None:
        self.qmp = qmp
        self.vm = vm
        self.jobs: dict[str, dict[str, Any]] = {}

    async def pass_fd(self, name: str, fd: int) -> None:
        self.vm.commands.append("getfd")
        self.vm.fds[name] = os.dup(fd)

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        vm = self.vm
        if not vm.alive:
            raise MonitorUnreachable(socket=vm.qmp, reason="gone")
        vm.commands.append(command)
        vm.arguments.append((command, dict(arguments or {})))
        if command in self.qmp.refuse:
            raise MonitorCommandFailed(command=command, reason="refused by the test")
        args = arguments or {}
        if _listen_port(command, args) in self.qmp.taken_ports:
            raise MonitorCommandFailed(command=command, reason=(
                "Failed to bind socket: Address already in use"))
        if command == "query-status":
            return {"status": vm.status, "running": vm.status == "running"}
        if command == "stop":
            vm.status = "paused"
        elif command == "cont":
            vm.status = "running"
        elif command == "system_powerdown":
            if vm.acpi and vm.status == "running":
                vm.alive = False
        elif command == "quit":
            vm.alive = False
        elif command == "migrate":
            fd = vm.fds.pop(args["uri"].removeprefix("fd:"))
            os.write(fd, f"STATE OF {vm.pid}".encode())
            os.close(fd)
            vm.status = "postmigrate"
        elif command == "query-migrate":
            return {"status": "completed"}
        elif command == "migrate-incoming" and not args["uri"].startswith("fd:"):
            vm.incoming = args["uri"]  # a live migration's: the test says when it lands
        elif command == "query-block":  # the node of drive d is node-d
            return [{"device": d, "inserted": {"node-name": f"node-{d}"}}
                    for d in (dict(p.split("=", 1) for p in o.split(",") if "=" in p)["id"]
                              for o in vm.option("-drive"))]
        elif command == "migrate-incoming":
            fd = vm.fds.pop(args["uri"].removeprefix("fd:"))
            vm.loaded_state = os.read(fd, 1 << 20)
            os.close(fd)
            vm.status = "paused"
        elif command == "query-vnc":
            return {"enabled": True, "host": "127.0.0.1", "service": str(5900 + vm.pid % 100)}
        elif command == "query-spice":
            spice = vm.option("-spice")
            port = spice[0].split(",")[0].removeprefix("port=") if spice else None
            return {"enabled": bool(spice), **({"port": int(port)} if port else {})}
        elif command == "query-chardev":
            serial = next(a for a in vm.option("-chardev") if ",id=serial0," in a)
            opts = dict(p.split("=", 1) for p in serial.split(",")[1:])
            filename = (f"disconnected:tcp:{opts['host']}:{opts['port']},server=on"
                        if serial.startswith("socket,") else f"file:{opts['path']}")
            return [{"label": "qmp", "filename": "unix:qmp.sock,server=on"},
                    {"label": "serial0", "filename": filename}]
        elif command == "drive-backup":
            source = next(a for a in vm.option("-drive") if f"id={args['device']}," in a)
            size = 0
            for part in source.split(","):
                if part.startswith("file="):
                    stub = read_stub(Path(part[5:]))
                    size = stub["size"] if stub else 0
            if self.qmp.backup_error is None:
                write_stub(Path(args["target"]), args["format"], size)
            self.jobs[args["job-id"]] = {"id": args["job-id"], "status": "concluded",
                                         **({"error": self.qmp.backup_error}
                                            if self.qmp.backup_error else {})}
        elif command == "query-cpus-fast":  # vCPU i runs on host thread pid * 10 + i
            smp = int(vm.option("-smp")[0].split(",")[0])
            return [{"cpu-index": i, "thread-id": vm.pid * 10 + i, "target": "x86_64"}
                    for i in range(smp)]
        elif command == "query-blockstats":  # drive n has read n KiB in n requests
            ids = [dict(p.split("=", 1) for p in d.split(",") if "=" in p)["id"]
                   for d in vm.option("-drive")]
            return [{"device": drive, "stats": {
                "rd_bytes": 1024 * n, "rd_operations": n, "wr_bytes": 512 * n,
                "wr_operations": n, "failed_rd_operations": 0, "failed_wr_operations": n % 2,
                "failed_flush_operations": 0}} for n, drive in enumerate(ids, 1)]
        elif command == "qom-list":
            return [{"name": d, "type": "child<device>"} for d in vm.peripherals()]
        elif command == "device_add":
            vm.hot_plugged.append(args["id"])
            vm.unplugged.discard(args["id"])
        elif command == "device_del" and vm.acpi:  # a guest with ACPI releases it
            vm.unplugged.add(args["id"])
        elif command == "query-jobs":
            return list(self.jobs.values())
        elif command == "job-dismiss":
            self.jobs.pop(args["id"])
        return {}


class DirFetcher(ImageFetcher):
    """Serves image data from files named by image id; counts downloads."""

    def __init__(self, files: dict[str, Path] | None = None) -> None:
        self.files = dict(files or {})
        self.fetched: list[str] = []
        self.uploaded: list[tuple[str, str, str]] = []

    async def fetch(self, image: ImageMeta, dest: str) -> None:
        self.fetched.append(image.id)
        if image.id not in self.files:
            raise LookupError(f"no data for image {image.id}")
        shutil.copyfile(self.files[image.id], dest)

    async def upload(self, image_id: str, source: str, disk_format: str) -> None:
        self.uploaded.append((image_id, source, disk_format))


def _listen_port(command: str, args: dict[str, Any]) -> int | None:
    """The TCP port a command makes QEMU listen on (NBD server, incoming migration)."""
    if command == "nbd-server-start":
        return int(args["addr"]["data"]["port"])
    if command == "migrate-incoming" and args["uri"].startswith("tcp:"):
        return int(args["uri"].rsplit(":", 1)[1])
    return None
