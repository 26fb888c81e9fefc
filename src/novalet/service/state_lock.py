"""Which `novalet` process serves a state dir: one lock file per service in it.

`novalet compute` holds STATE/compute.lock and `novalet network` STATE/network.lock
for their lifetime; `novalet up` runs both in one process and holds both (a
compute and a network service of one host share a state dir, so the lock is per
service, not per state dir). `novalet down` takes them too (without waiting)
before it stops a guest: while any is held it refuses, naming the holder and its
pid. The locks are flocks (common/owned_lock.py), so a killed process holds none
and its children (QEMU, dnsmasq, API workers) never inherit one.
"""

from __future__ import annotations

from pathlib import Path

from novalet import exceptions
from novalet.common.owned_lock import LockHeld, OwnedLock

SERVICES = ("compute", "network")
"""The services that run guests or host networking from a state dir."""

HELD_BY = {"up": SERVICES, "compute": ("compute",), "network": ("network",),
           "down": SERVICES}
"""The service locks each `novalet` command holds while it runs."""


class StateDirInUse(exceptions.Conflict):
    msg_fmt = ("the state dir %(state_dir)s is in use by %(holder)s (pid %(pid)s, "
               "lock %(path)s): stop it first (Ctrl-C, or kill %(pid)s), or give this "
               "one another state dir (--state-dir, or state_path)")


def lock_path(state_dir: Path, service: str) -> Path:
    return state_dir / f"{service}.lock"


class StateDirLocks:
    """The service locks `command` holds on `state_dir` (see HELD_BY)."""

    def __init__(self, state_dir: Path, command: str) -> None:
        self.state_dir = state_dir
        self.locks = [OwnedLock(lock_path(state_dir, service), f"novalet {command}")
                      for service in HELD_BY[command]]

    def acquire(self) -> None:
        """Take every lock without waiting; StateDirInUse (holding none) when another
        process holds one."""
        try:
            for lock in self.locks:
                lock.acquire()
        except LockHeld as held:
            self.release()
            raise StateDirInUse(state_dir=self.state_dir, holder=held.owner or "a process",
                                pid=held.pid or "unknown", path=held.path) from None
        except exceptions.NovaletError:
            self.release()
            raise

    def release(self) -> None:
        for lock in self.locks:
            lock.release()

    def __enter__(self) -> StateDirLocks:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
