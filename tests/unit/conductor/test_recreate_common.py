"""The scheduling request of a move: the create's spec, without its forced host."""

from novalet.compute.scheduling_group import SchedulingGroup
from novalet.conductor.tasks.recreate_common import move_spec
from novalet.db.models import Instance

FLAVOR = {"vcpus": 2, "memory_mb": 256, "root_gb": 1, "ephemeral_gb": 1, "swap": 512,
          "extra_specs": {"hw:x": "1"}}


def _instance(spec: dict[str, object] | None) -> Instance:
    return Instance(uuid="i-1", project_id="p", user_id="u", flavor=FLAVOR,
                    request_spec=spec)


def test_the_create_spec_without_its_forced_host_in_the_asked_zone() -> None:
    created = {"instance_uuids": ["i-1", "i-2"], "project_id": "p", "user_id": "u",
               "vcpus": 2, "memory_mb": 256, "disk_gb": 3, "availability_zone": "az1",
               "force_host": "h1", "force_node": "n1", "scheduler_hints": {"a": "b"},
               "group": {"uuid": "g", "policy": "anti-affinity"},
               "group_hosts": {"h1": 1}, "_version": "1.1"}
    spec = move_spec(_instance(created), "az2", "h2")
    assert (spec.instance_uuids, spec.availability_zone, spec.force_host,
            spec.force_node) == (["i-1"], "az2", "h2", None)
    # (a group dict kept before RequestSpec 1.2 reads as the part, its rule defaulted)
    assert spec.scheduler_hints == {"a": "b"} and spec.group == SchedulingGroup(
        uuid="g", policy="anti-affinity", max_server_per_host=1)
    assert spec.group_hosts == {} and spec.resources == {"VCPU": 2, "MEMORY_MB": 256,
                                                         "DISK_GB": 3}


def test_a_row_without_a_spec_is_scheduled_by_its_flavor() -> None:
    spec = move_spec(_instance(None), None, None)
    assert spec.resources == {"VCPU": 2, "MEMORY_MB": 256, "DISK_GB": 3}
    assert (spec.project_id, spec.extra_specs, spec.force_host) == ("p", {"hw:x": "1"}, None)


def test_a_resized_server_is_scheduled_by_its_current_flavor() -> None:
    """The create's spec still has the sizes it was booted with; an evacuation or
    unshelve after a resize claims what the server has now (one spec builder,
    base.spec_for, for every move)."""
    created = {"instance_uuids": ["i-1"], "project_id": "p", "user_id": "u",
               "vcpus": 1, "memory_mb": 64, "disk_gb": 1, "extra_specs": {"old": "1"},
               "_version": "1.1"}
    spec = move_spec(_instance(created), None, None)
    assert spec.resources == {"VCPU": 2, "MEMORY_MB": 256, "DISK_GB": 3}
    assert spec.extra_specs == {"hw:x": "1"}
