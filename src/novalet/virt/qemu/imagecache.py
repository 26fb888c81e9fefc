"""Base images on this host: fetched once through the ImageFetcher, verified, kept, pruned.

A base is the image's data as QEMU will read it: qcow2 or raw, checked
against the image service's hash, inspected in Python before any QEMU tool
opens it (formats.py), refused when it names a backing or data file, and
converted to qcow2 when it came in another format. Guests' root disks are
qcow2 overlays on a base, so a base stays while any instance names it; the
cache manager removes the others once unused for long enough.

Layout: <cache>/<name> (the base) and <cache>/<name>.json (its format and
size). <name> is the image id, or ephemeral_<size>_<fs> / swap_<size> for the
formatted blank bases of ephemeral and swap disks. Downloads land in
dot-prefixed temporary files and are renamed into place when complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from novalet.virt.driver import ImageFetcher, ImageMeta, VirtDriverError
from novalet.virt.qemu import formats
from novalet.virt.qemu.disks import MiB, Disks

LOG = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,127}$")
_HASH_CHUNK = 1024 * 1024
STALE_TEMP_SECONDS = 86400.0


class ImageUnusable(VirtDriverError):
    msg_fmt = "Image %(image_id)s can't be used: %(reason)s"


@dataclass(frozen=True)
class CachedImage:
    """A base file ready for QEMU."""

    path: Path
    format: str  # "qcow2" or "raw": what to tell QEMU
    virtual_size: int
    source_format: str  # what the data was: qcow2, raw, iso, vmdk, ..., or "file"

    @property
    def is_iso(self) -> bool:
        return self.source_format == "iso"


class ImageCache:
    def __init__(self, path: Path, disks: Disks, fetcher: ImageFetcher | None) -> None:
        self.path = path
        self.disks = disks
        self.fetcher = fetcher
        self._locks: dict[str, asyncio.Lock] = {}

    # --- getting bases -------------------------------------------------------

    async def get(self, image: ImageMeta) -> CachedImage:
        """The base of a disk image (qcow2, raw, iso, or converted from vmdk/vdi/vhd/vhdx)."""
        return await self._get(image, as_file=False)

    async def get_file(self, image: ImageMeta) -> CachedImage:
        """A kernel or ramdisk image, kept as the plain file QEMU loads (-kernel, -initrd)."""
        return await self._get(image, as_file=True)

    async def _get(self, image: ImageMeta, as_file: bool) -> CachedImage:
        name = image.id
        if not _SAFE_NAME.match(name):
            raise ImageUnusable(image_id=name, reason="its id is not a safe file name")
        async with self._lock(name):
            cached = self._read(name)
            if cached is not None:
                os.utime(cached.path)
                return cached
            if self.fetcher is None:
                raise ImageUnusable(image_id=name, reason="this driver has no image fetcher")
            self._make_dir()
            with self._temp(name) as download, self._temp(name) as converted:
                started = time.monotonic()
                try:
                    await self.fetcher.fetch(image, str(download))
                except VirtDriverError:
                    raise
                except Exception as exc:
                    raise ImageUnusable(image_id=name,
                                        reason=f"downloading it failed: {exc}") from exc
                await asyncio.to_thread(_verify, image, download)
                if as_file:
                    cached = CachedImage(self.path / name, "raw", download.stat().st_size,
                                         "file")
                    ready = download
                else:
                    cached, ready = await self._prepare_disk(image, download, converted)
                os.chmod(ready, 0o644)
                os.replace(ready, cached.path)
                self._write_meta(name, cached)
            LOG.info("Cached image %s (%s, %d bytes virtual) in %.2fs", name,
                     cached.source_format, cached.virtual_size, time.monotonic() - started)
            return cached

    async def _prepare_disk(self, image: ImageMeta, download: Path,
                            converted: Path) -> tuple[CachedImage, Path]:
        name = image.id
        found = await asyncio.to_thread(formats.inspect, download)
        problem = formats.check_declared(image.disk_format, found)
        if problem:
            raise ImageUnusable(image_id=name, reason=problem)
        source_format = found.format
        qemu_format = "raw" if source_format == "iso" else source_format
        info = await self.disks.info(download, qemu_format)
        if info.backing_file or info.data_file:
            raise ImageUnusable(image_id=name, reason="it refers to another file "
                                f"({info.backing_file or info.data_file})")
        ready = download
        if qemu_format not in ("qcow2", "raw"):
            await self.disks.convert(download, qemu_format, converted, "qcow2")
            info = await self.disks.info(converted, "qcow2")
            qemu_format, ready = "qcow2", converted
        return CachedImage(self.path / name, qemu_format, info.virtual_size,
                           source_format), ready

    async def blank_filesystem(self, size_mb: int, fs: str, label: str) -> CachedImage:
        """A raw base of size_mb holding an empty filesystem (or swap area), made once."""
        name = f"swap_{size_mb}M" if fs == "swap" else f"ephemeral_{size_mb}M_{fs}"
        async with self._lock(name):
            cached = self._read(name)
            if cached is not None:
                os.utime(cached.path)
                return cached
            self._make_dir()
            with self._temp(name) as temp:
                await self.disks.create_blank(temp, "raw", size_mb * MiB)
                formatted = await self.disks.make_filesystem(temp, fs, label)
                cached = CachedImage(self.path / name, "raw", size_mb * MiB,
                                     fs if formatted else "raw")
                os.chmod(temp, 0o644)
                os.replace(temp, cached.path)
                self._write_meta(name, cached)
            return cached

    # --- pruning -------------------------------------------------------------

    async def cleanup(self, in_use: set[Path], max_unused_seconds: float) -> list[str]:
        """Remove bases no instance uses that nobody used for max_unused_seconds; their names.

        A base counts as used when it is in `in_use` (the files instances name) or
        was handed out (get) less than max_unused_seconds ago.
        """
        if not self.path.is_dir():
            return []
        removed: list[str] = []
        keep = {p.resolve() for p in in_use}
        now = time.time()
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith("."):
                if now - _mtime(entry) > STALE_TEMP_SECONDS:
                    entry.unlink(missing_ok=True)
                continue
            if entry.suffix == ".json" or not entry.is_file() or entry.resolve() in keep:
                continue
            async with self._lock(entry.name):
                if now - _mtime(entry) < max_unused_seconds:
                    continue
                entry.unlink(missing_ok=True)
                (self.path / f"{entry.name}.json").unlink(missing_ok=True)
            LOG.info("Removed unused base image %s", entry.name)
            removed.append(entry.name)
        return removed

    # --- internals -----------------------------------------------------------

    def _make_dir(self) -> None:
        # Images may be private to a project: other local users get no way in.
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    @contextmanager
    def _temp(self, name: str) -> Iterator[Path]:
        path = self.path / f".{name}.part-{secrets.token_hex(4)}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _read(self, name: str) -> CachedImage | None:
        base, meta = self.path / name, self.path / f"{name}.json"
        if not base.is_file():
            return None
        try:
            data = json.loads(meta.read_text())
            return CachedImage(base, data["format"], int(data["virtual_size"]),
                               data["source_format"])
        except (OSError, ValueError, KeyError, TypeError):
            LOG.warning("Base %s has no readable description; fetching it again", name)
            base.unlink(missing_ok=True)
            return None

    def _write_meta(self, name: str, cached: CachedImage) -> None:
        data = asdict(cached)
        data.pop("path")
        temp = self.path / f".{name}.json-{secrets.token_hex(4)}"
        temp.write_text(json.dumps(data))
        os.replace(temp, self.path / f"{name}.json")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _verify(image: ImageMeta, path: Path) -> None:
    """Compare the downloaded data with the size and hash the image service recorded."""
    size = path.stat().st_size
    if image.size is not None and size != image.size:
        raise ImageUnusable(image_id=image.id,
                            reason=f"{size} bytes arrived, the image service says {image.size}")
    if image.os_hash_algo and image.os_hash_value:
        algo, expected = image.os_hash_algo, image.os_hash_value
    elif image.checksum:
        algo, expected = "md5", image.checksum
    else:
        LOG.warning("Image %s has no checksum: its data is used unverified", image.id)
        return
    try:
        digest = hashlib.new(algo, usedforsecurity=False)
    except ValueError:
        raise ImageUnusable(image_id=image.id, reason=f"unknown hash algorithm {algo!r}") from None
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise ImageUnusable(image_id=image.id,
                            reason=f"its data does not match its {algo} checksum")
