#!/usr/bin/env python3
"""Live migration's orchestration alone: the fake driver (one copy round, no delay)
on two compute processes over RabbitMQ + PostgreSQL (scripts/backing-services.sh),
the API, conductor and scheduler processes too. Each round is a POST os-migrateLive
to the other host until the migration is `completed` and the server ACTIVE there
without a task (both read side by side every 20 ms, as bench/api_migration.py
does); what bench/migrate.py's API side spends besides QEMU. Run it with
PYTHONPATH naming one tree, then another, to compare their flows (the machine's
other work moves the figures: alternate them). Prints the median and quartiles;
asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.02


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="live migrations")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the multihost tests' helpers for the backing servers
    import novalet
    from tests.multihost.conftest import Cloud, backing_urls, deployment

    options = {"fake": {"live_migration_steps": 1, "live_migration_step_delay": 0}}
    with tempfile.TemporaryDirectory(prefix="novalet-bench-orchestration-") as root:
        for dep, database in deployment(Path(root), backing_urls(), ["c1", "c2"],
                                        options=options):
            cloud = Cloud(dep, database)
            (sid,) = cloud.boot("moving")
            cloud.wait_settled([sid])
            times = [migrate(cloud, sid) for _ in range(args.rounds)]
            cloud.delete_all()
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else times * 3
    print(f"{novalet.__file__}: {len(times)} live migrations (fake driver), median "
          f"{statistics.median(times):.3f} s, quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f} s")
    return 0


def migrate(cloud: Any, sid: str) -> float:
    """One live migration of `sid` to the other host: seconds until it is seen done."""
    api = cloud.api  # tests.multihost.conftest.Cloud's
    host = api("GET", f"/servers/{sid}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    dest = "c2" if host == "c1" else "c1"
    started = time.monotonic()
    resp = api("POST", f"/servers/{sid}/action", version="2.30",
               json={"os-migrateLive": {"host": dest, "block_migration": "auto"}})
    if resp.status_code != 202:
        raise RuntimeError(f"os-migrateLive answered {resp.status_code}: {resp.text}")
    with ThreadPoolExecutor(2) as pool:
        while True:
            migrations = pool.submit(api, "GET", f"/os-migrations?instance_uuid={sid}", "2.80")
            server_resp = pool.submit(api, "GET", f"/servers/{sid}")
            migration = max(migrations.result().json()["migrations"], key=lambda m: m["id"])
            server = server_resp.result().json()["server"]
            if migration["status"] in ("error", "failed", "cancelled"):
                raise RuntimeError(f"live migration of {sid} ended {migration['status']}")
            if migration["status"] == "completed" and (
                    server["status"], server["OS-EXT-SRV-ATTR:host"],
                    server["OS-EXT-STS:task_state"]) == ("ACTIVE", dest, None):
                return time.monotonic() - started
            time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main())
