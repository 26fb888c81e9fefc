"""Filters say which host they removed and why; the weigher spreads by free RAM."""

from novalet.compute.payloads import RequestSpec
from novalet.db.placement import ProviderSummary
from novalet.scheduler import filters, weighers


def host(name: str, ram_free: int = 4096, up: bool = True, disabled: bool = False,
         zone: str = "nova") -> filters.HostState:
    provider = ProviderSummary(uuid=f"rp-{name}", name=name, host=name, availability_zone=zone,
                               generation=1, capacity={"VCPU": 8, "MEMORY_MB": 8192,
                                                      "DISK_GB": 100},
                               used={"MEMORY_MB": 8192 - ram_free})
    return filters.HostState(provider, service_up=up, service_disabled=disabled,
                             disabled_reason="maintenance" if disabled else None)


def spec(**kw: object) -> RequestSpec:
    base = dict(instance_uuids=["i"], project_id="p", user_id="u", vcpus=1, memory_mb=1024,
                disk_gb=1)
    base.update(kw)
    return RequestSpec(**base)  # type: ignore[arg-type]


def test_report_names_filter_host_and_reason() -> None:
    hosts = [host("a", up=False), host("b", disabled=True), host("c", ram_free=512),
             host("d", zone="az2"), host("e")]
    passed, report = filters.run_filters(hosts, spec(availability_zone="nova"),
                                         filters.DEFAULT_FILTERS)
    assert [h.host for h in passed] == ["e"]
    assert report[0] == ("ComputeFilter removed 2 host(s): a (compute service is down), "
                         "b (compute service disabled (maintenance))")
    assert "AvailabilityZoneFilter removed 1 host(s): d (in zone az2, not nova)" in report
    assert "ResourcesFilter removed 1 host(s): c (512 MB RAM free, 1024 needed)" in report


def test_forced_host() -> None:
    passed, report = filters.run_filters([host("a"), host("b")], spec(force_host="b"),
                                         filters.DEFAULT_FILTERS)
    assert [h.host for h in passed] == ["b"]
    assert "not the requested host b" in report[0]


def test_spread_by_free_ram() -> None:
    ordered = weighers.by_free_ram([host("a", 1024), host("b", 4096), host("c", 2048)])
    assert [h.host for h in ordered] == ["b", "c", "a"]
    stacked = weighers.by_free_ram([host("a", 1024), host("b", 4096)], multiplier=-1)
    assert [h.host for h in stacked] == ["a", "b"]
