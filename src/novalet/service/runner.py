"""Runs one service (service/roles.py) as a process until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from novalet import config, exceptions
from novalet.common.urls import without_password
from novalet.service import roles, state_lock

LOG = logging.getLogger(__name__)


def freeze_startup_objects() -> None:
    """Take what start-up made (the app, managers, caches, fake hosts) out of the
    cyclic garbage collector's scans: it lives as long as the process, and full
    collections walking it added ~100 ms to some GET /servers/detail of 1000."""
    gc.collect()
    gc.freeze()


async def _serve(conf: config.Config, name: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if conf.get("DEFAULT", "transport_url").startswith("memory://"):
        # An in-process bus reaches no other process: this service would wait forever.
        print(f"novalet {name}: cannot start: it needs the bus the other services use; "
              "set [DEFAULT] transport_url = rabbit://USER:PASSWORD@HOST:5672/VHOST "
              "(memory:// is for `novalet up` alone)", file=sys.stderr, flush=True)
        return 2
    # compute and network hold their state dir's lock for their life (`novalet down`
    # refuses while they do)
    locks = (state_lock.StateDirLocks(conf.state_path.resolve(), name)
             if name in state_lock.SERVICES else None)
    if locks is not None:
        try:
            locks.acquire()
        except exceptions.NovaletError as exc:
            print(f"novalet {name}: cannot start: {exc}", file=sys.stderr, flush=True)
            return 1
    try:
        return await _serve_role(conf, name, stop)
    finally:
        if locks is not None:
            locks.release()


async def _serve_role(conf: config.Config, name: str, stop: asyncio.Event) -> int:
    role = roles.ROLES[name](conf)
    try:
        await role.start()
    except (roles.SchemaNotCurrent, exceptions.NovaletError, OSError) as exc:
        print(f"novalet {name}: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    freeze_startup_objects()
    host = conf.get("DEFAULT", "host")
    LOG.info("novalet %s is running on host %s", name, host)
    print(f"novalet {name} is running on host {host} "
          f"(bus {without_password(conf.get('DEFAULT', 'transport_url'))}); "
          "stop with SIGTERM or Ctrl-C.", flush=True)
    await stop.wait()
    LOG.info("novalet %s is stopping", name)
    await role.stop()
    return 0


def run(conf: config.Config, name: str) -> int:
    return asyncio.run(_serve(conf, name))
