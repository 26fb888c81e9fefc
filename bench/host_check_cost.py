#!/usr/bin/env python3
"""Cost of the conductor's host check (conductor/host_access.py): N instance_update
calls over the in-process bus to a conductor on SQLite, alternately as a trusted
service (no identity) and as compute host h1's bus user (checked). Prints
microseconds per call; it is not a test and asserts nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novalet import config  # noqa: E402
from novalet.common.context import RequestContext  # noqa: E402
from novalet.conductor.manager import ConductorManager  # noqa: E402
from novalet.conductor.rpcapi import ConductorAPI  # noqa: E402
from novalet.db import migrate  # noqa: E402
from novalet.db.engine import Database  # noqa: E402
from novalet.network.api import NetworkAPI  # noqa: E402
from novalet.rpc.inprocess import InProcessBus  # noqa: E402
from tests.unit.conductor.conftest import make_instance  # noqa: E402


async def main(calls: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        await migrate.sync(db)
        async with db.transaction() as s:
            s.add(make_instance("inst-1", "h1", "p1"))
        conf = config.Config()
        bus = InProcessBus(default_timeout=30)
        await bus.serve("conductor", ConductorManager(conf, db, bus, NetworkAPI(db, conf)))
        ctx = RequestContext.admin()
        clients = {"trusted": ConductorAPI(bus, conf),
                   "compute-h1": ConductorAPI(bus.as_user("compute-h1"), conf)}
        for _ in range(rounds):
            for label, api in clients.items():
                started = time.perf_counter()
                for _ in range(calls):
                    await api.instance_update(ctx, "inst-1", {"task_state": None})
                per_call = (time.perf_counter() - started) / calls * 1e6
                print(f"{label:11s} {per_call:7.0f} us per instance_update")
        await bus.close()
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
