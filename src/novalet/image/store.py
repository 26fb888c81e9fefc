"""The image file store: one file per image under the state dir, written and read in chunks."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from novalet import exceptions

LOG = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
"""Bytes read or written per blocking call; the event loop never waits on a whole file."""

HEAD_SIZE = 512
"""Bytes kept from the start of an upload so the disk format can be inspected."""

HASH_ALGO = "sha512"

_IMAGE_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")


class StorageFull(exceptions.NovaletError):
    msg_fmt = "Image storage media is full: %(reason)s"
    code = 413


class ImageTooLarge(exceptions.NovaletError):
    msg_fmt = "Image exceeds the storage limit of %(limit)d bytes."
    code = 413


class ImageDataNotFound(exceptions.NotFound):
    msg_fmt = "Image %(image_id)s has no data in the image store."


@dataclass(frozen=True)
class StoredData:
    """What a completed write left in the store."""

    size: int
    checksum: str
    hash_algo: str
    hash_value: str
    head: bytes


class _Writer:
    """A temporary file plus the running hashes of what went into it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.secure = hashlib.new(HASH_ALGO)
        self.size = 0
        self.head = b""

    async def write(self, block: bytes) -> None:
        """Append and hash `block`; the file write and both hashes run in parallel
        worker threads (each releases the GIL)."""
        if len(self.head) < HEAD_SIZE:
            self.head += block[:HEAD_SIZE - len(self.head)]
        self.size += len(block)
        await asyncio.gather(asyncio.to_thread(self.handle.write, block),
                             asyncio.to_thread(self.md5.update, block),
                             asyncio.to_thread(self.secure.update, block))

    def finish(self) -> StoredData:
        """Blocking: flush to disk and return the totals."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return StoredData(self.size, self.md5.hexdigest(), HASH_ALGO,
                          self.secure.hexdigest(), self.head)


class ImageStore:
    """Files named by image id in `root`. A write lands under a temporary name and is
    renamed into place only when complete, so a reader never sees a partial image."""

    def __init__(self, root: Path, size_cap: int | None = None) -> None:
        self.root = root
        self.size_cap = size_cap
        root.mkdir(parents=True, exist_ok=True)

    def path(self, image_id: str) -> Path:
        if not _IMAGE_ID.match(image_id):
            raise ValueError(f"not an image id: {image_id!r}")
        return self.root / image_id

    async def write(self, image_id: str, chunks: AsyncIterator[bytes]) -> StoredData:
        """Stream `chunks` into the image's file, replacing any earlier data.

        On any failure (including cancellation) the partial file is removed and the
        previous data, if any, is left as it was."""
        final = self.path(image_id)
        temp = final.with_name(f".{image_id}.{secrets.token_hex(4)}.part")
        writer = _Writer(await asyncio.to_thread(_open_exclusive, temp))
        try:
            await self._fill(writer, chunks)
            stored = await asyncio.to_thread(writer.finish)
            await asyncio.to_thread(os.replace, temp, final)
        except BaseException:
            writer.handle.close()
            await asyncio.to_thread(_unlink, temp)
            raise
        return stored

    async def _fill(self, writer: _Writer, chunks: AsyncIterator[bytes]) -> None:
        """Receive the next block while a worker thread hashes and writes the last one."""
        pending: list[bytes] = []
        buffered = received = 0
        in_flight: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                pending.append(chunk)
                buffered += len(chunk)
                received += len(chunk)
                if self.size_cap is not None and received > self.size_cap:
                    raise ImageTooLarge(limit=self.size_cap)
                if buffered >= CHUNK_SIZE:
                    if in_flight is not None:
                        await in_flight
                    in_flight = _write_soon(writer, b"".join(pending))
                    pending, buffered = [], 0
        except BaseException:
            if in_flight is not None:
                await _settle(in_flight)
            raise
        if in_flight is not None:
            await in_flight
        await _write_soon(writer, b"".join(pending))

    async def read(self, image_id: str) -> AsyncIterator[bytes]:
        """The image's bytes in chunks; the file is open before the first chunk is
        asked for, so a missing file is reported here rather than mid-stream."""
        try:
            handle = await asyncio.to_thread(open, self.path(image_id), "rb")
        except FileNotFoundError:
            raise ImageDataNotFound(image_id=image_id) from None
        return _chunks(handle)

    async def delete(self, image_id: str) -> None:
        """Remove the image's data; nothing happens when there is none."""
        await asyncio.to_thread(_unlink, self.path(image_id))

    async def exists(self, image_id: str) -> bool:
        return await asyncio.to_thread(self.path(image_id).exists)


def _write_soon(writer: _Writer, block: bytes) -> asyncio.Future[None]:
    """Start writing `block` in a worker thread; a full disk becomes StorageFull."""
    async def write() -> None:
        try:
            await writer.write(block)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(reason=exc.strerror) from None
            raise
    return asyncio.ensure_future(write())


async def _settle(future: asyncio.Future[None]) -> None:
    """Wait for an abandoned write so the file is not closed under its worker thread;
    its own outcome no longer matters."""
    await asyncio.wait([future])
    if not future.cancelled():
        future.exception()


async def _chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while block := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            yield block
    finally:
        handle.close()


def _open_exclusive(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def describe(stored: StoredData) -> dict[str, Any]:
    """The image fields a completed write sets."""
    return {"size": stored.size, "checksum": stored.checksum,
            "os_hash_algo": stored.hash_algo, "os_hash_value": stored.hash_value}
