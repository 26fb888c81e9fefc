"""Debian packages for the test image: resolve the current versions, download, unpack.

Packages are fetched with `apt-get download` (no root needed) into a cache
directory and reused while the archive's candidate version stays the same;
when apt cannot answer (no network, no package lists) the newest cached
download is used instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from novalet.image.testimage.commands import BuildError, CommandFailed, Runner

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
ARCHITECTURE = "amd64"

_KERNEL_PACKAGE = re.compile(r"^linux-image-(\d\S*-cloud-amd64)$")


@dataclass(frozen=True)
class DebPackage:
    """One version of one binary package."""

    name: str
    version: str
    architecture: str = ARCHITECTURE

    @property
    def filename(self) -> str:
        """The file name `apt-get download` gives it (the epoch colon URL-quoted)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"


def parse_control(text: str) -> dict[str, str]:
    """The fields of the first stanza of deb822 text (as apt-cache show prints)."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last is not None:
            fields[last] += "\n" + line.strip()
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last] = value.strip()
    return fields


def kernel_package_name(depends: str) -> str:
    """The versioned kernel package among the metapackage's Depends field."""
    for alternative in re.split(r"[,|]", depends):
        name = alternative.split("(")[0].strip()
        if _KERNEL_PACKAGE.match(name):
            return name
    raise BuildError(reason=f"{KERNEL_METAPACKAGE} depends on no linux-image-*-cloud-amd64 "
                            f"package (Depends: {depends})")


def kernel_release(package_name: str) -> str:
    """The kernel release (`uname -r`, the modules directory) a kernel package ships."""
    match = _KERNEL_PACKAGE.match(package_name)
    if match is None:
        raise BuildError(reason=f"{package_name} is not a cloud kernel package")
    return match.group(1)


def parse_deb_filename(filename: str) -> DebPackage | None:
    """The package a downloaded .deb's name stands for, or None for other files."""
    match = re.fullmatch(r"([^_]+)_([^_]+)_([^_]+)\.deb", filename)
    if match is None:
        return None
    return DebPackage(match.group(1), match.group(2).replace("%3a", ":"), match.group(3))


class PackageCache:
    """Finds, downloads and unpacks packages, keeping the .deb files in `directory`."""

    def __init__(self, runner: Runner, directory: Path) -> None:
        self.runner = runner
        self.directory = directory

    def candidate(self, name: str) -> DebPackage:
        """The version apt would install now."""
        fields = parse_control(self.runner.run(
            ["apt-cache", "show", "--no-all-versions", f"{name}:{ARCHITECTURE}"]))
        if "Version" not in fields:
            raise BuildError(reason=f"apt knows no package {name}; run apt-get update")
        return DebPackage(fields.get("Package", name), fields["Version"],
                          fields.get("Architecture", ARCHITECTURE))

    def kernel(self) -> DebPackage:
        """The cloud kernel the metapackage currently points at (or the newest cached)."""
        try:
            fields = parse_control(self.runner.run(
                ["apt-cache", "show", "--no-all-versions", f"{KERNEL_METAPACKAGE}:{ARCHITECTURE}"]))
            return self.candidate(kernel_package_name(fields.get("Depends", "")))
        except CommandFailed as exc:
            cached = self.newest_cached(_KERNEL_PACKAGE)
            if cached is None:
                raise BuildError(reason=f"cannot resolve {KERNEL_METAPACKAGE} ({exc.message}); "
                                        "is apt-get update done?") from None
            return cached

    def busybox(self) -> DebPackage:
        try:
            return self.candidate(BUSYBOX_PACKAGE)
        except CommandFailed as exc:
            cached = self.newest_cached(re.compile(re.escape(BUSYBOX_PACKAGE) + "$"))
            if cached is None:
                raise BuildError(reason=f"cannot resolve {BUSYBOX_PACKAGE} ({exc.message})"
                                 ) from None
            return cached

    def newest_cached(self, name_pattern: re.Pattern[str]) -> DebPackage | None:
        """The cached package whose name matches, newest by modification time."""
        if not self.directory.is_dir():
            return None
        found = [(path.stat().st_mtime, package) for path in self.directory.glob("*.deb")
                 if (package := parse_deb_filename(path.name)) is not None
                 and name_pattern.match(package.name)]
        return max(found, key=lambda item: item[0])[1] if found else None

    def fetch(self, package: DebPackage) -> tuple[Path, bool]:
        """The path of the package's .deb, downloading it unless cached; and whether it was."""
        path = self.directory / package.filename
        if path.is_file():
            return path, True
        self.directory.mkdir(parents=True, exist_ok=True)
        self.runner.run(["apt-get", "download", "-q",
                         f"{package.name}:{package.architecture}={package.version}"],
                        cwd=self.directory)
        if not path.is_file():
            raise BuildError(reason=f"apt-get download left no {package.filename} "
                                    f"in {self.directory}")
        return path, False

    def unpack(self, deb: Path, destination: Path) -> None:
        """Extract the package's files (not its scripts) under `destination`."""
        destination.mkdir(parents=True, exist_ok=True)
        self.runner.run(["dpkg-deb", "-x", str(deb), str(destination)])
