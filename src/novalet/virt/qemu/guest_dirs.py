"""A new instance directory: made private, marked `spawning` until its guest is
complete, and removed again when making it fails.

Spawn and both kinds of incoming move start a guest this way. While `spawning`
is there the directory is no guest of this host's: list_instances skips it and a
restarted compute service removes it (QemuDriver.init_host).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.layout import InstancePaths

LOG = logging.getLogger(__name__)


@asynccontextmanager
async def new_guest_dir(paths: InstancePaths, remove: Callable[[InstancePaths], Awaitable[None]],
                        doing: str) -> AsyncIterator[None]:
    """The directory of paths, made for the block's work; on any exception in the
    block, `remove` undoes everything (processes started included) and the
    exception goes on. `doing` names the work in the log ("Spawning")."""
    if paths.dir.exists():
        raise VirtDriverError(reason=f"instance {paths.uuid} already exists on this host")
    paths.dir.parent.mkdir(parents=True, exist_ok=True)
    # Only the compute service's user may read a guest's disks and console.
    paths.dir.mkdir(mode=0o700)
    paths.spawning.touch()
    try:
        yield
    except BaseException as exc:
        LOG.warning("%s %s failed (%s); removing what it made", doing, paths.uuid, exc)
        await remove(paths)
        raise
