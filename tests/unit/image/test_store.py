"""The file store: streamed writes with hashes, atomic replacement, cleanup on failure."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet.image import store as image_store
from novalet.image.store import ImageDataNotFound, ImageStore, ImageTooLarge
from tests.unit.image.helpers import stream

IMAGE_ID = "0f6b2a4e-3b5c-4d7e-8f90-a1b2c3d4e5f6"


async def _read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([block async for block in chunks])


async def test_write_hashes_and_reads_back(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    blocks = [bytes([i]) * 700_000 for i in range(5)]  # crosses CHUNK_SIZE several times
    data = b"".join(blocks)

    stored = await store.write(IMAGE_ID, stream(blocks))

    assert stored.size == len(data)
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert stored.hash_algo == "sha512"
    assert stored.hash_value == hashlib.sha512(data).hexdigest()
    assert stored.head == data[:image_store.HEAD_SIZE]
    assert await _read_all(await store.read(IMAGE_ID)) == data
    assert [p.name for p in (tmp_path / "images").iterdir()] == [IMAGE_ID]


async def test_empty_upload_is_a_zero_byte_image(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    stored = await store.write(IMAGE_ID, stream([]))
    assert (stored.size, stored.checksum) == (0, hashlib.md5(b"").hexdigest())


async def test_failed_write_leaves_no_partial_file_and_keeps_old_data(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    await store.write(IMAGE_ID, stream([b"old data"]))

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (3 * image_store.CHUNK_SIZE)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.write(IMAGE_ID, broken())

    assert sorted(p.name for p in tmp_path.iterdir()) == [IMAGE_ID]
    assert await _read_all(await store.read(IMAGE_ID)) == b"old data"


async def test_cancelled_write_cleans_up(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"y" * (2 * image_store.CHUNK_SIZE)
        started.set()
        await asyncio.sleep(3600)
        yield b""

    task = asyncio.create_task(store.write(IMAGE_ID, slow()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == []


async def test_size_cap_refuses_and_cleans_up(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, size_cap=10)
    with pytest.raises(ImageTooLarge) as err:
        await store.write(IMAGE_ID, stream([b"12345", b"678901"]))
    assert err.value.code == 413
    assert list(tmp_path.iterdir()) == []


async def test_read_of_missing_data_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageDataNotFound):
        await ImageStore(tmp_path).read(IMAGE_ID)


async def test_delete_is_idempotent(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    await store.write(IMAGE_ID, stream([b"abc"]))
    await store.delete(IMAGE_ID)
    await store.delete(IMAGE_ID)
    assert not await store.exists(IMAGE_ID)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", ".hidden", "x" * 40])
def test_path_refuses_anything_but_an_image_id(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        ImageStore(tmp_path).path(bad)
