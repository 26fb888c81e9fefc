#!/usr/bin/env python3
"""What a catastrophic `name` regular expression costs the rest of the cloud.

Starts an in-process all-in-one cloud (fake driver, SQLite, in-process HTTP),
names a server 29 × "a" + "!", and measures GET /servers/{id} latency alone and
while 5 requests GET /servers?name=^(a+)+$ run at the same time; then times the
same match with RE2 (what the server list uses) and with Python's backtracking
`re` on shorter names (what SQLite's REGEXP ran), to show the growth.
Prints the figures; it is not a test and asserts nothing.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novalet.common.bounded_regex import compile_pattern  # noqa: E402
from novalet.service.allinone import AllInOne  # noqa: E402
from tests.functional.conftest import Api, boot, make_conf  # noqa: E402

S = "/compute/v2.1/servers"


async def _get(api: Api, path: str) -> float:
    start = time.perf_counter()
    resp = await api.request("GET", path)
    assert resp.status_code == 200, resp.text
    return time.perf_counter() - start


async def measure() -> None:
    with tempfile.TemporaryDirectory() as state:
        cloud = AllInOne(make_conf(Path(state)), in_process_http=True)
        await cloud.start()
        try:
            transport = httpx.ASGITransport(app=cloud.app)
            async with httpx.AsyncClient(transport=transport,
                                         base_url="http://novalet.test") as client:
                api = Api(cloud, client)
                await boot(api, "a" * 29 + "!")
                plain = await boot(api, "aaaa")
                probe = f"{S}/{plain['id']}"
                for _ in range(5):
                    await _get(api, probe)
                alone = [await _get(api, probe) for _ in range(20)]

                async def evil() -> float:
                    return await _get(api, f"{S}?name=^(a%2B)%2B$")

                async def probes() -> list[float]:
                    return [await _get(api, probe) for _ in range(20)]

                *evils, during = await asyncio.gather(*[evil() for _ in range(5)],
                                                      probes())
        finally:
            await cloud.stop()
    print(f"GET /servers/id alone: median {statistics.median(alone) * 1000:.1f} ms, "
          f"max {max(alone) * 1000:.1f} ms")
    print(f"GET /servers/id during 5 x name=^(a+)+$: median "
          f"{statistics.median(during) * 1000:.1f} ms, max {max(during) * 1000:.1f} ms")
    print(f"GET /servers?name=^(a+)+$ itself: max {max(evils) * 1000:.1f} ms")
    pattern = compile_pattern("^(a+)+$")
    start = time.perf_counter()
    pattern.search("a" * 29 + "!")
    print(f"RE2, 29 x a + !: {(time.perf_counter() - start) * 1e6:.0f} us")
    backtracking = re.compile("^(a+)+$")
    for n in (18, 20, 22):
        start = time.perf_counter()
        backtracking.search("a" * n + "!")
        print(f"Python re, {n} x a + !: {(time.perf_counter() - start) * 1000:.0f} ms "
              "(doubles per character)")


if __name__ == "__main__":
    asyncio.run(measure())
