"""Bus models: a change of fields without a version bump fails here."""

import dataclasses
import hashlib

import orjson
import pytest

from novalet.compute.payloads import InstancePayload, RequestSpec

# model -> (VERSION, fingerprint of its fields). Update both together.
RECORDED = {
    InstancePayload: ("1.2", "4c553b74"),
    RequestSpec: ("1.1", "71b414ef"),
}


def fingerprint(cls: type) -> str:
    fields = [(f.name, str(f.type)) for f in dataclasses.fields(cls)]
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:8]


@pytest.mark.parametrize("cls", RECORDED)
def test_fields_match_recorded_version(cls: type) -> None:
    version, recorded = RECORDED[cls]
    assert cls.VERSION == version, "VERSION changed: record the new fingerprint too"
    assert fingerprint(cls) == recorded, (
        f"{cls.__name__} fields changed: bump VERSION and record {fingerprint(cls)}")


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
