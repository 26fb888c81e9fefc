"""Weighers: Nova's normalisation, multipliers, weight_classes."""

from __future__ import annotations

import pytest

from novalet import config
from novalet.db.placement import ProviderSummary
from novalet.scheduler import filters, weighers
from tests.unit.scheduler.test_filters import spec


def host(name: str, ram: int, cpu: int, disk: int) -> filters.HostState:
    provider = ProviderSummary(uuid=name, name=name, host=name, availability_zone="nova",
                               generation=1,
                               capacity={"MEMORY_MB": ram, "VCPU": cpu, "DISK_GB": disk})
    return filters.HostState(provider, service_up=True, service_disabled=False)


def conf(**options: object) -> config.Config:
    c = config.Config()
    for name, value in options.items():
        c.set("filter_scheduler", name, value)
    return c


def test_normalize() -> None:
    assert weighers.normalize([10, 20, 30]) == [0.0, 0.5, 1.0]
    assert weighers.normalize([5, 5]) == [0.0, 0.0]


def test_normalised_weights_sum_over_weighers() -> None:
    # a: most RAM (1.0) but least CPU (0); b: 0.5 RAM, most CPU (1.0): b wins 1.5 to 1.0.
    hosts = [host("a", 4096, 1, 10), host("b", 3072, 16, 10), host("c", 2048, 8, 10)]
    chosen = weighers.enabled_weighers(conf())
    assert [h.host for h in weighers.weigh(hosts, spec(), chosen)] == ["b", "a", "c"]
    ram_heavy = weighers.enabled_weighers(conf(ram_weight_multiplier=3.0))
    assert [h.host for h in weighers.weigh(hosts, spec(), ram_heavy)][0] == "a"


def test_negative_multiplier_stacks() -> None:
    hosts = [host("a", 4096, 1, 1), host("b", 1024, 1, 1)]
    stack = weighers.enabled_weighers(conf(weight_classes="RAMWeigher",
                                           ram_weight_multiplier=-1.0))
    assert [h.host for h in weighers.weigh(hosts, spec(), stack)] == ["b", "a"]


def test_weight_classes(caplog: pytest.LogCaptureFixture) -> None:
    names = [w.name for w in weighers.enabled_weighers(conf(
        weight_classes="nova.scheduler.weights.disk.DiskWeigher,CPUWeigher,Nope"))]
    assert names == ["DiskWeigher", "CPUWeigher"]
    assert "Nope is not known here" in caplog.text
    everything = {w.name for w in weighers.enabled_weighers(conf())}
    assert {"RAMWeigher", "CPUWeigher", "DiskWeigher"} <= everything
