"""Compute's bus models (their version fingerprints: tests/unit/rpc/test_models.py)."""

import orjson

from novalet.compute.payloads import InstancePayload, RequestSpec


def test_request_spec_round_trips_through_json() -> None:
    spec = RequestSpec(instance_uuids=["a"], project_id="p", user_id="u", vcpus=1,
                       memory_mb=512, disk_gb=1, availability_zone="nova",
                       scheduler_hints={"same_host": ["x"]})
    again = RequestSpec.from_dict(orjson.loads(orjson.dumps(spec.to_dict())))
    assert again == spec
    assert again.resources == {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


def test_instance_payload_makes_a_guest_spec() -> None:
    payload = InstancePayload(
        uuid="u1", display_name="vm", hostname="vm", project_id="p", user_id="u",
        image_ref="img", flavor={"vcpus": 2, "memory_mb": 1024, "root_gb": 5,
                                 "ephemeral_gb": 1, "swap": 512},
        vm_state="building", task_state="spawning", power_state=0, host="h", node="h",
        availability_zone="nova", metadata={"k": "v"})
    spec = payload.guest_spec()
    assert (spec.vcpus, spec.memory_mb, spec.root_gb, spec.swap_mb) == (2, 1024, 5, 512)
    assert InstancePayload.from_dict(payload.to_dict()) == payload


def test_instance_payload_backported_for_1_0_receivers() -> None:
    payload = InstancePayload(
        uuid="u1", display_name="vm", hostname="vm", project_id="p", user_id="u",
        image_ref="img", flavor={}, vm_state="active", task_state=None, power_state=1,
        host="h", node="h", availability_zone=None, network_info=[{"id": "v"}])
    old = payload.to_dict("1.1")
    assert "network_info" not in old and "image" in old and old["_version"] == "1.1"
    assert InstancePayload.from_dict(old).network_info == []
