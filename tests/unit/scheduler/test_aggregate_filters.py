"""Aggregate-driven filters, the filter registry and enabled_filters."""

from __future__ import annotations

import pytest

from novalet import config
from novalet.scheduler import filters
from tests.unit.scheduler.test_filters import host, spec


def in_aggregates(name: str, **metadata: str | set[str]) -> filters.HostState:
    state = host(name)
    state.aggregate_metadata = {k: v if isinstance(v, set) else {v}
                                for k, v in metadata.items()}
    return state


@pytest.mark.parametrize(("value", "requirement", "ok"), [
    ("true", "true", True), ("true", "false", False),
    ("4", "= 2", True), ("1", "= 2", False), ("2", "== 2.0", True), ("3", "!= 3", False),
    ("8", ">= 8", True), ("9", "<= 8", False), ("abc", "s== abc", True),
    ("abc", "s!= abc", False), ("b", "s< c", True), ("d", "s>= c", True),
    ("gpu ssd", "<in> ssd", True), ("gpu", "<in> ssd", False),
    ("ssd", "<or> ssd <or> nvme", True), ("hdd", "<or> ssd <or> nvme", False),
    ("a b c", "<all-in> a c", True), ("a b", "<all-in> a c", False),
    ("x", "= notanumber", False),
])
def test_extra_spec_operators(value: str, requirement: str, ok: bool) -> None:
    assert filters.extra_spec_matches(value, requirement) is ok


def test_extra_specs_scoped_and_unscoped() -> None:
    check = filters.AggregateInstanceExtraSpecsFilter()
    ssd = in_aggregates("ssd-host", ssd="true", gpus="2")
    plain = in_aggregates("plain")
    scoped = spec(extra_specs={"aggregate_instance_extra_specs:ssd": "true"})
    assert check.reject_reason(ssd, scoped) is None
    assert check.reject_reason(plain, scoped) == "no aggregate metadata ssd (flavor asks 'true')"
    assert check.reject_reason(ssd, spec(extra_specs={"ssd": "false"})) is not None
    assert check.reject_reason(ssd, spec(extra_specs={"gpus": ">= 2"})) is None
    # Other scopes are other filters' business.
    other = spec(extra_specs={"hw:cpu_policy": "dedicated", "quota:cpu_shares": "10"})
    assert check.reject_reason(plain, other) is None
    assert check.reject_reason(plain, spec()) is None


def test_extra_specs_any_of_several_aggregates_values() -> None:
    check = filters.AggregateInstanceExtraSpecsFilter()
    both = in_aggregates("h", tier={"gold", "silver"})
    assert check.reject_reason(both, spec(extra_specs={"tier": "silver"})) is None
    assert check.reject_reason(both, spec(extra_specs={"tier": "bronze"})) is not None


def test_availability_zone_from_aggregates() -> None:
    check = filters.AvailabilityZoneFilter()
    zoned = in_aggregates("z", availability_zone="zone-a")
    plain = host("p")
    assert zoned.zone == "zone-a" and plain.zone == "nova"
    assert check.reject_reason(zoned, spec(availability_zone="zone-a")) is None
    assert check.reject_reason(plain, spec(availability_zone="zone-a")) == (
        "in zone nova, not zone-a")
    assert check.reject_reason(zoned, spec(availability_zone="nova")) is not None
    assert check.reject_reason(zoned, spec()) is None


def test_multi_tenancy_isolation() -> None:
    check = filters.AggregateMultiTenancyIsolation()
    isolated = in_aggregates("i", filter_tenant_id="p1,p2")
    assert check.reject_reason(isolated, spec(project_id="p2")) is None
    assert check.reject_reason(isolated, spec(project_id="p3")) is not None
    assert check.reject_reason(host("open"), spec(project_id="p3")) is None


def test_enabled_filters_follow_the_option(caplog: pytest.LogCaptureFixture) -> None:
    conf = config.Config()
    conf.set("filter_scheduler", "enabled_filters",
             "ComputeFilter, nova.scheduler.filters.AggregateMultiTenancyIsolation,NoSuchFilter")
    names = [f.name for f in filters.enabled_filters(conf)]
    assert names == ["ResourcesFilter", "ForcedHostFilter", "ComputeFilter",
                     "AggregateMultiTenancyIsolation"]
    assert "NoSuchFilter is not known here" in caplog.text


def test_register_makes_a_filter_nameable() -> None:
    @filters.register
    class RejectAll(filters.HostFilter):
        name = "TestRejectAllFilter"

        def reject_reason(self, host: filters.HostState, spec: object) -> str | None:
            return "rejects everything"

    try:
        conf = config.Config()
        conf.set("filter_scheduler", "enabled_filters", "TestRejectAllFilter")
        chosen = filters.enabled_filters(conf)
        passed, report = filters.run_filters([host("a")], spec(), chosen)
        assert passed == [] and "TestRejectAllFilter removed 1 host(s)" in report[0]
    finally:
        del filters.FILTERS["TestRejectAllFilter"]
