"""Picks the virt driver named by `compute_driver`."""

from __future__ import annotations

from novalet import config, exceptions
from novalet.virt.driver import ComputeDriver


class UnknownDriver(exceptions.Invalid):
    msg_fmt = "Unknown compute_driver %(name)r; available: fake"


def load(conf: config.Config) -> ComputeDriver:
    name = conf.get("DEFAULT", "compute_driver")
    if name == "fake":
        from novalet.virt.fake import FakeDriver
        return FakeDriver(conf)
    raise UnknownDriver(name=name)
