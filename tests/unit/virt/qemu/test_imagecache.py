"""Base images: fetched once, verified, inspected, converted, pruned."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import pytest

from novalet.virt.driver import ImageMeta, VirtDriverError
from novalet.virt.qemu.disks import Disks
from novalet.virt.qemu.imagecache import ImageCache, ImageUnusable
from tests.unit.virt.qemu.fakes import DirFetcher, FakeRunner, qcow2_header
from tests.unit.virt.qemu.test_formats import vmdk_sparse


@pytest.fixture
def cache(tmp_path: Path, runner: FakeRunner, fetcher: DirFetcher) -> ImageCache:
    return ImageCache(tmp_path / "_base", Disks(runner), fetcher)


def leftovers(cache: ImageCache) -> list[str]:
    return sorted(p.name for p in cache.path.iterdir()) if cache.path.exists() else []


def with_data(tmp_path: Path, fetcher: DirFetcher, image_id: str, data: bytes,
              disk_format: str | None, *, hashed: bool = True) -> ImageMeta:
    path = tmp_path / f"src-{image_id}"
    path.write_bytes(data)
    fetcher.files[image_id] = path
    return ImageMeta(id=image_id, disk_format=disk_format, size=len(data),
                     os_hash_algo="sha512" if hashed else None,
                     os_hash_value=hashlib.sha512(data).hexdigest() if hashed else None)


async def test_an_image_is_fetched_once(cache: ImageCache, image: ImageMeta,
                                        fetcher: DirFetcher, runner: FakeRunner) -> None:
    first = await cache.get(image)
    second = await cache.get(image)
    assert first == second
    assert fetcher.fetched == ["img-1"]
    assert (first.format, first.virtual_size, first.source_format) == ("qcow2", 64 << 20, "qcow2")
    assert first.path == cache.path / "img-1"
    assert leftovers(cache) == ["img-1", "img-1.json"]
    assert runner.commands("qemu-img", "info")[0][:5] == [
        "qemu-img", "info", "--output=json", "-f", "qcow2"]


async def test_concurrent_gets_share_one_download(cache: ImageCache, image: ImageMeta,
                                                  fetcher: DirFetcher) -> None:
    import asyncio
    results = await asyncio.gather(*(cache.get(image) for _ in range(5)))
    assert len(set(results)) == 1 and fetcher.fetched == ["img-1"]


async def test_a_wrong_sha512_is_refused_and_nothing_stays(cache: ImageCache,
                                                           image: ImageMeta) -> None:
    bad = dataclasses.replace(image, os_hash_value="0" * 128)
    with pytest.raises(ImageUnusable, match="does not match its sha512 checksum"):
        await cache.get(bad)
    assert leftovers(cache) == []


async def test_md5_is_the_fallback_checksum(cache: ImageCache, image: ImageMeta) -> None:
    md5_only = dataclasses.replace(image, os_hash_algo=None, os_hash_value=None)
    assert (await cache.get(md5_only)).format == "qcow2"
    other = dataclasses.replace(md5_only, id="img-2", checksum="f" * 32)
    cache.fetcher.files["img-2"] = cache.fetcher.files["img-1"]  # type: ignore[union-attr]
    with pytest.raises(ImageUnusable, match="md5"):
        await cache.get(other)


async def test_a_size_mismatch_is_refused(cache: ImageCache, image: ImageMeta) -> None:
    with pytest.raises(ImageUnusable, match="bytes arrived"):
        await cache.get(dataclasses.replace(image, size=5))
    assert leftovers(cache) == []


async def test_data_that_is_not_the_declared_format_is_refused(
        cache: ImageCache, tmp_path: Path, fetcher: DirFetcher) -> None:
    junk = with_data(tmp_path, fetcher, "junk", b"this is not a disk image\n" * 100, "qcow2")
    with pytest.raises(ImageUnusable, match="declared qcow2 but its data is raw"):
        await cache.get(junk)
    assert leftovers(cache) == []


async def test_a_raw_image_holding_qcow2_is_refused(cache: ImageCache, tmp_path: Path,
                                                    fetcher: DirFetcher) -> None:
    sneaky = with_data(tmp_path, fetcher, "sneaky", qcow2_header(1 << 20), "raw")
    with pytest.raises(ImageUnusable, match="declared raw but its data is qcow2"):
        await cache.get(sneaky)


async def test_a_qcow2_with_a_backing_file_is_refused(cache: ImageCache, tmp_path: Path,
                                                      fetcher: DirFetcher,
                                                      runner: FakeRunner) -> None:
    backed = with_data(tmp_path, fetcher, "backed", qcow2_header(1 << 20, backing=True),
                       "qcow2")
    with pytest.raises(ImageUnusable, match="names a backing file"):
        await cache.get(backed)
    assert runner.calls == []  # refused before any QEMU tool opened it
    assert leftovers(cache) == []


async def test_qemu_img_reporting_a_backing_file_is_refused_too(
        cache: ImageCache, image: ImageMeta, runner: FakeRunner) -> None:
    async def info_with_backing(path: Path, fmt: str, *, in_use: bool = False) -> object:
        from novalet.virt.qemu.disks import DiskInfo
        return DiskInfo(fmt, 1 << 20, 0, "/etc/passwd", "raw", None)
    cache.disks.info = info_with_backing  # type: ignore[method-assign,assignment]
    with pytest.raises(ImageUnusable, match="refers to another file"):
        await cache.get(image)
    assert leftovers(cache) == []


async def test_raw_stays_raw(cache: ImageCache, tmp_path: Path, fetcher: DirFetcher) -> None:
    raw = with_data(tmp_path, fetcher, "raw-1", b"\0" * 8192, "raw")
    cached = await cache.get(raw)
    assert (cached.format, cached.virtual_size) == ("raw", 8192)


async def test_vmdk_is_converted_to_qcow2(cache: ImageCache, tmp_path: Path,
                                          fetcher: DirFetcher, runner: FakeRunner) -> None:
    vmdk = with_data(tmp_path, fetcher, "vm-1", vmdk_sparse("monolithicSparse"), "vmdk")
    cached = await cache.get(vmdk)
    assert cached.format == "qcow2" and cached.source_format == "vmdk"
    convert = runner.commands("qemu-img", "convert")[0]
    assert convert[:7] == ["qemu-img", "convert", "-q", "-f", "vmdk", "-O", "qcow2"]
    assert leftovers(cache) == ["vm-1", "vm-1.json"]


async def test_an_iso_is_kept_raw_and_marked(cache: ImageCache, tmp_path: Path,
                                             fetcher: DirFetcher) -> None:
    head = bytearray(0x9000)
    head[0x8001:0x8006] = b"CD001"
    iso = with_data(tmp_path, fetcher, "iso-1", bytes(head), "iso")
    cached = await cache.get(iso)
    assert cached.format == "raw" and cached.is_iso


async def test_a_failed_download_is_a_driver_error(cache: ImageCache) -> None:
    with pytest.raises(VirtDriverError, match="downloading it failed: .*no data for image nope"):
        await cache.get(ImageMeta(id="nope", disk_format="qcow2"))
    assert leftovers(cache) == []


async def test_unsafe_ids_and_missing_fetchers(cache: ImageCache, image: ImageMeta,
                                               tmp_path: Path, runner: FakeRunner) -> None:
    with pytest.raises(ImageUnusable, match="not a safe file name"):
        await cache.get(ImageMeta(id="../../etc/passwd"))
    without = ImageCache(tmp_path / "other", Disks(runner), None)
    with pytest.raises(ImageUnusable, match="no image fetcher"):
        await without.get(image)


async def test_kernels_are_kept_as_files(cache: ImageCache, tmp_path: Path,
                                         fetcher: DirFetcher, runner: FakeRunner) -> None:
    kernel = with_data(tmp_path, fetcher, "k-1", b"\x4d\x5a kernel", "aki", hashed=False)
    cached = await cache.get_file(kernel)
    assert cached.source_format == "file" and cached.path.read_bytes() == b"\x4d\x5a kernel"
    assert runner.calls == []


async def test_blank_filesystems_are_made_once(cache: ImageCache, runner: FakeRunner,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/sbin/{name}")
    first = await cache.blank_filesystem(1024, "ext4", "ephemeral0")
    again = await cache.blank_filesystem(1024, "ext4", "ephemeral0")
    swap = await cache.blank_filesystem(64, "swap", "swap")
    assert first == again and first.path.name == "ephemeral_1024M_ext4"
    assert swap.path.name == "swap_64M" and swap.source_format == "swap"
    assert [c[0] for c in runner.calls if c[0] != "qemu-img"] == ["mkfs.ext4", "mkswap"]


async def test_cleanup_removes_only_old_unused_bases(cache: ImageCache, image: ImageMeta,
                                                     tmp_path: Path, fetcher: DirFetcher) -> None:
    used = await cache.get(image)
    old = await cache.get(with_data(tmp_path, fetcher, "old", b"\0" * 512, "raw"))
    recent = await cache.get(with_data(tmp_path, fetcher, "recent", b"\0" * 1024, "raw"))
    day_ago = time.time() - 86400 * 2
    for cached in (used, old):
        os.utime(cached.path, (day_ago, day_ago))
    stale_temp = cache.path / ".gone.part-1234"
    stale_temp.write_bytes(b"x")
    os.utime(stale_temp, (day_ago, day_ago))
    removed = await cache.cleanup({used.path}, 86400)
    assert removed == ["old"]
    assert leftovers(cache) == ["img-1", "img-1.json", "recent", "recent.json"]
    assert recent.path.exists()


async def test_using_a_base_again_makes_it_recent(cache: ImageCache, image: ImageMeta) -> None:
    cached = await cache.get(image)
    day_ago = time.time() - 86400 * 2
    os.utime(cached.path, (day_ago, day_ago))
    await cache.get(image)
    assert await cache.cleanup(set(), 86400) == []
