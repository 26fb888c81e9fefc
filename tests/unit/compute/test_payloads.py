"""Compute's bus models (their version fingerprints: tests/unit/rpc/test_models.py)."""

import orjson
import pytest

from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.payloads import InstancePayload, RequestSpec
from novalet.network.model import Vif
from novalet.rpc.models import IncompatibleMessage

VIF = Vif(id="v", address="52:54:00:00:00:01", network_id="n", network_label="private",
            bridge="nvbr100", fixed_ip="10.0.0.11", cidr="10.0.0.0/24", gateway="10.0.0.1")
FLAVOR = {"flavorid": "1", "name": "m1.small", "vcpus": 2, "memory_mb": 1024, "root_gb": 5,
          "ephemeral_gb": 1, "swap": 512, "rxtx_factor": 1.0, "extra_specs": {"k": "v"}}


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
        image_ref="img", flavor=FlavorPayload.from_dict(FLAVOR),
        vm_state="building", task_state="spawning", power_state=0, host="h", node="h",
        availability_zone="nova", metadata={"k": "v"})
    spec = payload.guest_spec()
    assert (spec.vcpus, spec.memory_mb, spec.root_gb, spec.swap_mb) == (2, 1024, 5, 512)
    assert InstancePayload.from_dict(payload.to_dict()) == payload


def test_instance_payload_backported_for_1_0_receivers() -> None:
    payload = InstancePayload(
        uuid="u1", display_name="vm", hostname="vm", project_id="p", user_id="u",
        image_ref="img", flavor=FlavorPayload.from_dict(FLAVOR), vm_state="active",
        task_state=None, power_state=1,
        host="h", node="h", availability_zone=None, network_info=[VIF])
    old = payload.to_dict("1.1")
    assert "network_info" not in old and "image" in old and old["_version"] == "1.1"
    assert InstancePayload.from_dict(old).network_info == []


def test_the_flavor_travels_as_the_plain_dict_older_releases_knew() -> None:
    """InstancePayload 1.3 types the flavor; its data is the 1.2 dict, so a 1.2
    receiver reads it as before, and a 1.2 sender's dict is read as the model."""
    payload = InstancePayload.from_dict({
        "uuid": "u1", "display_name": "vm", "hostname": "vm", "project_id": "p",
        "user_id": "u", "image_ref": "img", "flavor": FLAVOR, "vm_state": "active",
        "task_state": None, "power_state": 1, "host": "h", "node": "h",
        "availability_zone": None, "_version": "1.2"})
    assert payload.flavor == FlavorPayload.from_dict(FLAVOR)
    assert payload.guest_spec().ephemeral_gb == 1
    for version in ("1.2", "1.3"):
        data = orjson.loads(orjson.dumps(payload.to_dict(version)))
        assert data["flavor"] == FLAVOR and data["_version"] == version
    assert FlavorPayload.from_dict(FLAVOR).to_dict(tagged=False) == FLAVOR


def test_a_flavor_missing_a_size_or_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(IncompatibleMessage, match="missing vcpus"):
        FlavorPayload.from_dict({k: v for k, v in FLAVOR.items() if k != "vcpus"})
    with pytest.raises(IncompatibleMessage, match="bad memory_mb"):
        FlavorPayload.from_dict({**FLAVOR, "memory_mb": "1024"})


def test_network_info_travels_as_the_vif_dicts_older_releases_knew() -> None:
    payload = InstancePayload(
        uuid="u1", display_name="vm", hostname="vm", project_id="p", user_id="u",
        image_ref="img", flavor=FlavorPayload.from_dict(FLAVOR), vm_state="active",
        task_state=None, power_state=1, host="h", node="h", availability_zone=None,
        network_info=[VIF])
    data = orjson.loads(orjson.dumps(payload.to_dict("1.2")))
    assert data["network_info"] == [{k: v for k, v in VIF.to_dict().items()
                                     if k != "_version"}]
    assert Vif.from_dict(data["network_info"][0]) == VIF  # as a 1.2 host reads it
    # a 1.2 sender's tagged Vif dicts (what the conductor kept) are read too
    assert InstancePayload.from_dict({**data, "network_info": [VIF.to_dict()]}) == payload
    assert [Vif.from_dict(v) for v in payload.guest_spec().network_info] == [VIF]
