"""Server group filters and weighers, and the different_host / same_host hints."""

from __future__ import annotations

from typing import Any

from novalet.compute.payloads import RequestSpec
from novalet.compute.scheduling_group import SchedulingGroup
from novalet.config import Config
from novalet.db.placement import ProviderSummary
from novalet.scheduler import filters, weighers
from novalet.scheduler.group_filters import (ServerGroupAffinityFilter,
                                             ServerGroupAntiAffinityFilter,
                                             ServerGroupSoftAffinityWeigher,
                                             ServerGroupSoftAntiAffinityWeigher, note_placed)
from novalet.scheduler.hint_filters import DifferentHostFilter, SameHostFilter, hinted_uuids


def host(name: str) -> filters.HostState:
    provider = ProviderSummary(uuid=f"rp-{name}", name=name, host=name,
                               availability_zone="nova", generation=1,
                               capacity={"VCPU": 8, "MEMORY_MB": 8192, "DISK_GB": 100})
    return filters.HostState(provider, service_up=True, service_disabled=False)


HOSTS = [host("a"), host("b"), host("c")]


def spec(policy: str | None = None, group_hosts: dict[str, int] | None = None,
         **kw: Any) -> RequestSpec:
    group = None if policy is None else SchedulingGroup(
        uuid="g1", policy=policy, max_server_per_host=kw.pop("max_per_host", 1))
    return RequestSpec(instance_uuids=["i"], project_id="p", user_id="u", vcpus=1,
                       memory_mb=512, disk_gb=1, group=group,
                       group_hosts=dict(group_hosts or {}), **kw)


def passing(host_filter: filters.HostFilter, request: RequestSpec) -> list[str]:
    passed, _ = filters.run_filters(HOSTS, request, [host_filter])
    return [h.host for h in passed]


def test_affinity_passes_every_host_before_the_first_member() -> None:
    assert passing(ServerGroupAffinityFilter(), spec("affinity")) == ["a", "b", "c"]


def test_affinity_keeps_only_the_members_host() -> None:
    request = spec("affinity", {"b": 2})
    passed, report = filters.run_filters(HOSTS, request, [ServerGroupAffinityFilter()])
    assert [h.host for h in passed] == ["b"]
    assert report == ["ServerGroupAffinityFilter removed 2 host(s): a (not the host of "
                      "server group g1 (b)), c (not the host of server group g1 (b))"]


def test_anti_affinity_removes_hosts_with_a_member() -> None:
    request = spec("anti-affinity", {"a": 1, "c": 1})
    passed, report = filters.run_filters(HOSTS, request, [ServerGroupAntiAffinityFilter()])
    assert [h.host for h in passed] == ["b"]
    assert "a (has 1 member(s) of server group g1, max_server_per_host is 1)" in report[0]


def test_anti_affinity_max_server_per_host() -> None:
    request = spec("anti-affinity", {"a": 2, "b": 1}, max_per_host=2)
    assert passing(ServerGroupAntiAffinityFilter(), request) == ["b", "c"]


def test_filters_ignore_other_policies_and_no_group() -> None:
    for request in (spec(), spec("soft-affinity", {"a": 1}),
                    spec("soft-anti-affinity", {"a": 5})):
        assert passing(ServerGroupAffinityFilter(), request) == ["a", "b", "c"]
        assert passing(ServerGroupAntiAffinityFilter(), request) == ["a", "b", "c"]
    assert passing(ServerGroupAffinityFilter(), spec("anti-affinity", {"a": 1})) == [
        "a", "b", "c"]
    assert passing(ServerGroupAntiAffinityFilter(), spec("affinity", {"a": 1})) == [
        "a", "b", "c"]


def test_note_placed_counts_this_requests_instances() -> None:
    request = spec("anti-affinity")
    note_placed(request, "a")
    assert passing(ServerGroupAntiAffinityFilter(), request) == ["b", "c"]
    note_placed(request, "b")
    note_placed(request, "c")
    assert passing(ServerGroupAntiAffinityFilter(), request) == []
    no_group = spec()
    note_placed(no_group, "a")
    assert no_group.group_hosts == {}


def test_soft_weighers_score_by_members() -> None:
    soft = spec("soft-affinity", {"a": 2, "b": 1})
    anti = spec("soft-anti-affinity", {"a": 2, "b": 1})
    conf = Config()
    affine = ServerGroupSoftAffinityWeigher(conf)
    spread = ServerGroupSoftAntiAffinityWeigher(conf)
    assert [affine.raw_weight(h, soft) for h in HOSTS] == [2.0, 1.0, 0.0]
    assert [spread.raw_weight(h, anti) for h in HOSTS] == [-2.0, -1.0, 0.0]
    # Each weighs only its own policy.
    assert [affine.raw_weight(h, anti) for h in HOSTS] == [0.0, 0.0, 0.0]
    assert [spread.raw_weight(h, soft) for h in HOSTS] == [0.0, 0.0, 0.0]
    assert [h.host for h in weighers.weigh(HOSTS, soft, [affine])] == ["a", "b", "c"]
    assert [h.host for h in weighers.weigh(HOSTS, anti, [spread])] == ["c", "b", "a"]


def test_soft_weighers_multipliers_come_from_config() -> None:
    conf = Config()
    conf.set("filter_scheduler", "soft_affinity_weight_multiplier", 0.0)
    conf.set("filter_scheduler", "soft_anti_affinity_weight_multiplier", 3.5)
    assert ServerGroupSoftAffinityWeigher(conf).multiplier == 0.0
    assert ServerGroupSoftAntiAffinityWeigher(conf).multiplier == 3.5


def test_registered_by_name() -> None:
    filters.discover()
    for name in ("ServerGroupAffinityFilter", "ServerGroupAntiAffinityFilter",
                 "DifferentHostFilter", "SameHostFilter"):
        assert name in filters.FILTERS
    assert {"ServerGroupSoftAffinityWeigher",
            "ServerGroupSoftAntiAffinityWeigher"} <= set(weighers.WEIGHERS)


def test_hint_values_are_a_uuid_or_a_list() -> None:
    assert hinted_uuids("x") == ["x"]
    assert hinted_uuids(["x", "y"]) == ["x", "y"]
    assert hinted_uuids(None) == []


def test_different_host() -> None:
    request = spec(hinted_hosts={"different_host": ["a", "c"]})
    passed, report = filters.run_filters(HOSTS, request, [DifferentHostFilter()])
    assert [h.host for h in passed] == ["b"]
    assert "a (runs a server named by the different_host hint)" in report[0]
    assert passing(DifferentHostFilter(), spec()) == ["a", "b", "c"]


def test_same_host() -> None:
    assert passing(SameHostFilter(), spec(hinted_hosts={"same_host": ["b"]})) == ["b"]
    assert passing(SameHostFilter(), spec()) == ["a", "b", "c"]
    # Servers that run nowhere (never placed) leave no host.
    assert passing(SameHostFilter(), spec(hinted_hosts={"same_host": []})) == []


def test_applies_only_when_the_request_asks() -> None:
    assert not ServerGroupAffinityFilter().applies(spec("affinity"))
    assert ServerGroupAffinityFilter().applies(spec("affinity", {"a": 1}))
    assert not ServerGroupAntiAffinityFilter().applies(spec("affinity", {"a": 1}))
    assert ServerGroupAntiAffinityFilter().applies(spec("anti-affinity", {"a": 1}))
    conf = Config()
    assert ServerGroupSoftAffinityWeigher(conf).applies(spec("soft-affinity"))
    assert not ServerGroupSoftAffinityWeigher(conf).applies(spec("soft-anti-affinity"))
    assert ServerGroupSoftAntiAffinityWeigher(conf).applies(spec("soft-anti-affinity"))
    assert not ServerGroupSoftAntiAffinityWeigher(conf).applies(spec())
    assert not DifferentHostFilter().applies(spec())
    assert DifferentHostFilter().applies(spec(hinted_hosts={"different_host": ["a"]}))
    assert not SameHostFilter().applies(spec())
    assert SameHostFilter().applies(spec(hinted_hosts={"same_host": []}))
