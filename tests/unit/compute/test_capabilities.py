"""Driver capabilities as data: what each driver declares, how a report reads back,
and which actions need which flag."""

from __future__ import annotations

import dataclasses

import pytest

from novalet.compute import capabilities
from novalet.compute.driver_types import DriverCapabilities
from novalet.compute.payloads import ComputeNodePayload
from novalet.compute.states import ALLOWED
from novalet.virt.driver import ComputeDriver
from novalet.virt.fake import FakeDriver
from novalet.virt.qemu.driver import QemuDriver

# optional operation flag -> the ComputeDriver methods a driver must override for it
OPTIONAL = {
    "supports_snapshot": ["snapshot"],
    "supports_rescue": ["rescue", "unrescue"],
    "supports_rebuild": ["rebuild"],
    "supports_resize": ["resize", "confirm_resize", "revert_resize"],
    "supports_attach_interface": ["attach_interface", "detach_interface"],
    "supports_set_admin_password": ["set_admin_password"],
    "supports_trigger_crash_dump": ["trigger_crash_dump"],
}


@pytest.mark.parametrize("driver", [FakeDriver, QemuDriver])
def test_a_driver_claims_an_optional_operation_exactly_when_it_implements_it(
        driver: type[ComputeDriver]) -> None:
    for flag, methods in OPTIONAL.items():
        implemented = all(getattr(driver, m) is not getattr(ComputeDriver, m) for m in methods)
        assert driver.capabilities.supports(flag) == implemented, (driver.__name__, flag)


def test_the_base_driver_claims_only_the_mandatory_operations() -> None:
    caps = ComputeDriver.capabilities
    assert caps.supports_reboot and caps.supports_pause and caps.supports_suspend
    assert not any(caps.supports(flag) for flag in OPTIONAL)


def test_capabilities_round_trip_through_a_report() -> None:
    caps = dataclasses.replace(FakeDriver.capabilities, supports_pause=False)
    assert DriverCapabilities.from_dict(caps.to_dict()) == caps


def test_a_report_without_a_flag_counts_it_supported() -> None:
    """An older host (fewer flags) or none at all: the host itself decides."""
    assert DriverCapabilities.from_dict(None).supports("supports_rescue")
    assert DriverCapabilities.from_dict({"supports_pause": False}).supports("supports_rescue")
    assert not DriverCapabilities.from_dict({"supports_pause": False}).supports_pause
    # a newer host's flags this side doesn't know are dropped
    assert DriverCapabilities.from_dict({"supports_teleport": True}) == \
        DriverCapabilities.from_dict(None)


def test_every_checked_action_is_a_state_table_action_and_flag() -> None:
    flags = {f.name for f in dataclasses.fields(DriverCapabilities)}
    for action, flag in capabilities.REQUIRED.items():
        assert action in ALLOWED, action
        assert flag in flags, flag


def test_unsupported_feature_is_nova_501_and_attach_400() -> None:
    exc = capabilities.FeatureNotSupported(action="pause", uuid="u", host="h")
    assert exc.code == 501 and "The requested functionality is not supported" in exc.message
    assert capabilities.AttachInterfaceNotSupported(uuid="u", host="h").code == 400


def test_capabilities_travel_in_the_node_report_and_an_older_one_has_none() -> None:
    node = ComputeNodePayload(uuid="u", host="h", hypervisor_hostname="h",
                              hypervisor_type="fake",
                              capabilities=FakeDriver.capabilities.to_dict())
    again = ComputeNodePayload.from_dict(node.to_dict())
    assert DriverCapabilities.from_dict(again.capabilities) == FakeDriver.capabilities
    older = node.to_dict("1.0")  # what a 1.0 receiver is sent; what a 1.0 host sends
    assert "capabilities" not in older
    assert ComputeNodePayload.from_dict(older).capabilities == {}
