"""The host half of every image made from a guest's disk: createImage, createBackup
and shelve all snapshot the disk into a scratch file and upload it."""

from __future__ import annotations

import os
import tempfile

from novalet.virt.driver import ComputeDriver, ImageFetcher


async def upload_snapshot(driver: ComputeDriver, images: ImageFetcher, uuid: str,
                          image_id: str) -> None:
    """Snapshot guest `uuid`'s disk and upload it into the queued image `image_id`;
    the scratch copy is removed whatever happens."""
    with tempfile.TemporaryDirectory(prefix="novalet-snapshot-") as tmp:
        dest = os.path.join(tmp, "disk")
        disk_format = await driver.snapshot(uuid, dest)
        await images.upload(image_id, dest, disk_format)
