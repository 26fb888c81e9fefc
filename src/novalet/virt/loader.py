"""Picks the virt driver named by `compute_driver`."""

from __future__ import annotations

from novalet import config, exceptions
from novalet.virt.driver import ComputeDriver, ImageFetcher


class UnknownDriver(exceptions.Invalid):
    msg_fmt = "Unknown compute_driver %(name)r; available: fake, qemu"


def load(conf: config.Config, fetcher: ImageFetcher | None = None) -> ComputeDriver:
    """The configured driver; fetcher is how it gets image data (the fake needs none)."""
    name = conf.get("DEFAULT", "compute_driver")
    if name == "fake":
        from novalet.virt.fake import FakeDriver
        return FakeDriver(conf)
    if name == "qemu":
        from novalet.virt.qemu.driver import QemuDriver
        return QemuDriver(conf, fetcher)
    raise UnknownDriver(name=name)
