"""An exclusive lock a process holds for its lifetime, on a file naming its holder.

fcntl.flock, so the lock goes with the process (Ctrl-C, kill -9): nothing stale
is left to clean. The file holds `{"owner": …, "pid": …}` while locked, so the
one refused can say who holds it. Used for the host network lock
(network/linux/driver.py) and the state dir's service locks
(service/state_lock.py).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path

from novalet.exceptions import NovaletError


class LockHeld(NovaletError):
    msg_fmt = "%(path)s is held by %(owner)s (pid %(pid)s)"

    def __init__(self, path: Path, owner: str | None, pid: int | None) -> None:
        self.path, self.owner, self.pid = path, owner, pid
        super().__init__(path=path, owner=owner or "a process", pid=pid or "unknown")


class LockFailed(NovaletError):
    msg_fmt = "cannot lock %(path)s: %(reason)s"


class OwnedLock:
    """An exclusive, non-blocking lock on `path`, naming `owner` and this pid."""

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (nothing to do when this object holds it already): LockHeld
        naming the holder when another open file description holds it, LockFailed
        when the file cannot be opened or locked."""
        while self._fd is None:
            self._fd = self._try_acquire()

    def _try_acquire(self) -> int | None:
        """The locked file's descriptor; None when the file was removed (by its
        holder's release) between our open and our lock: try again."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LockFailed(path=self.path, reason=str(exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            content = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise LockFailed(path=self.path, reason=str(exc)) from exc
            try:
                holder = json.loads(content)
                owner, pid = str(holder["owner"]), int(holder["pid"])
            except (ValueError, KeyError, TypeError):
                owner, pid = None, None
            raise LockHeld(self.path, owner, pid) from None
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"owner": self.owner, "pid": os.getpid()}).encode(), 0)
        return fd

    def release(self) -> None:
        """Remove the file (so none is left behind), then unlock."""
        if self._fd is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
