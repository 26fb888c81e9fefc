"""Resolving, caching and unpacking the Debian packages of the test image (apt faked)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from novalet.image.testimage import packages
from novalet.image.testimage.commands import BuildError, CommandFailed, ScriptedRunner
from novalet.image.testimage.packages import DebPackage, PackageCache

METAPACKAGE = """\
Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 13
Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
Description: Linux for x86-64 cloud (meta-package)
 This package depends on the latest Linux kernel and modules for use on
 cloud platforms.

"""

SHOW = {
    "linux-image-cloud-amd64:amd64": METAPACKAGE,
    "linux-image-6.1.0-56-cloud-amd64:amd64":
        "Package: linux-image-6.1.0-56-cloud-amd64\nVersion: 6.1.192-2\nArchitecture: amd64\n",
    "busybox-static:amd64":
        "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: amd64\n",
}


def apt_cache(argv: list[str], **_: Any) -> str:
    assert argv[:3] == ["apt-cache", "show", "--no-all-versions"]
    return SHOW[argv[3]]


def offline(argv: list[str], **_: Any) -> str:
    raise CommandFailed(command=" ".join(argv), status=100, output="E: No packages found")


def test_parse_control_reads_the_first_stanza_with_continuations() -> None:
    fields = packages.parse_control(METAPACKAGE + "Package: second\nVersion: 2\n")

    assert fields["Package"] == "linux-image-cloud-amd64"
    assert fields["Depends"] == "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)"
    assert fields["Description"].splitlines()[1] == (
        "This package depends on the latest Linux kernel and modules for use on")


@pytest.mark.parametrize("depends, expected", [
    ("linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)", "linux-image-6.1.0-56-cloud-amd64"),
    ("linux-base, linux-image-6.12.9+deb13-cloud-amd64 (= 6.12.9-1) | foo",
     "linux-image-6.12.9+deb13-cloud-amd64"),
])
def test_kernel_package_name_comes_from_the_metapackage_depends(depends: str,
                                                                 expected: str) -> None:
    assert packages.kernel_package_name(depends) == expected


def test_a_metapackage_without_a_cloud_kernel_is_an_error() -> None:
    with pytest.raises(BuildError, match="depends on no linux-image"):
        packages.kernel_package_name("linux-image-6.1.0-56-amd64 (= 6.1.192-2)")


def test_kernel_release_is_the_package_name_without_its_prefix() -> None:
    assert packages.kernel_release("linux-image-6.1.0-56-cloud-amd64") == "6.1.0-56-cloud-amd64"
    with pytest.raises(BuildError):
        packages.kernel_release("linux-image-cloud-amd64")


def test_deb_file_names_quote_the_epoch_as_apt_get_download_does() -> None:
    busybox = DebPackage("busybox-static", "1:1.35.0-4+deb12u1+b1")

    assert busybox.filename == "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
    assert packages.parse_deb_filename(busybox.filename) == busybox
    assert packages.parse_deb_filename("notes.txt") is None


def test_resolves_the_versioned_kernel_and_busybox(tmp_path: Path) -> None:
    cache = PackageCache(ScriptedRunner({"apt-cache": apt_cache}), tmp_path)

    assert cache.kernel() == DebPackage("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2")
    assert cache.busybox() == DebPackage("busybox-static", "1:1.35.0-4+deb12u1+b1")


def test_fetch_downloads_the_pinned_version_into_the_cache(tmp_path: Path) -> None:
    package = DebPackage("busybox-static", "1:1.35.0-4+deb12u1+b1")

    def apt_get(argv: list[str], cwd: Path, **_: Any) -> str:
        (cwd / package.filename).write_bytes(b"!<arch>")
        return ""

    runner = ScriptedRunner({"apt-get": apt_get})
    path, cached = PackageCache(runner, tmp_path / "cache").fetch(package)

    assert (path, cached) == (tmp_path / "cache" / package.filename, False)
    assert runner.commands == [
        ["apt-get", "download", "-q", "busybox-static:amd64=1:1.35.0-4+deb12u1+b1"]]


def test_fetch_reuses_a_cached_download(tmp_path: Path) -> None:
    package = DebPackage("busybox-static", "1:1.35.0-4+deb12u1+b1")
    (tmp_path / package.filename).write_bytes(b"!<arch>")
    runner = ScriptedRunner()

    assert PackageCache(runner, tmp_path).fetch(package) == (tmp_path / package.filename, True)
    assert runner.commands == []


def test_fetch_fails_when_apt_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="left no busybox-static_"):
        PackageCache(ScriptedRunner(), tmp_path).fetch(DebPackage("busybox-static", "1"))


def test_without_apt_the_newest_cached_packages_are_used(tmp_path: Path) -> None:
    for index, name in enumerate([
            "linux-image-6.1.0-40-cloud-amd64_6.1.150-1_amd64.deb",
            "linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb",
            "linux-image-cloud-amd64_6.1.192-2_amd64.deb",
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"]):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (index, index))
    cache = PackageCache(ScriptedRunner({"apt-cache": offline}), tmp_path)

    assert cache.kernel() == DebPackage("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2")
    assert cache.busybox().version == "1:1.35.0-4+deb12u1+b1"


def test_without_apt_or_a_cache_the_error_says_what_to_do(tmp_path: Path) -> None:
    cache = PackageCache(ScriptedRunner({"apt-cache": offline}), tmp_path)

    with pytest.raises(BuildError, match="cannot resolve linux-image-cloud-amd64.*apt-get update"):
        cache.kernel()


def test_unpack_extracts_with_dpkg_deb(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    PackageCache(runner, tmp_path).unpack(tmp_path / "a.deb", tmp_path / "out")

    assert runner.commands == [["dpkg-deb", "-x", str(tmp_path / "a.deb"), str(tmp_path / "out")]]
    assert (tmp_path / "out").is_dir()
