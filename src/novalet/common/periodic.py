"""Periodic jobs of a service: each runs every N seconds until the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

LOG = logging.getLogger(__name__)


class Periodic:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    def every(self, interval: float, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Run `job` every `interval` seconds (0 or less: never)."""
        if interval <= 0:
            return

        async def loop() -> None:
            # The flag, not only cancel(): a job that swallows the cancellation
            # (asyncio.wait_for can, on 3.11) must not keep the loop alive.
            while not self._stopped:
                await asyncio.sleep(interval)
                try:
                    await job()
                except Exception:  # a periodic job must outlive one bad run
                    LOG.exception("Periodic task %s failed", name)

        self._tasks.append(asyncio.create_task(loop(), name=name))

    async def stop(self) -> None:
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
