"""The whole vm_state x task_state -> status table."""

import pytest

from novalet.compute.states import (ALLOWED, KNOWN_STATUSES, STATUS_TABLE, TaskState, VmState,
                                    status_of, vm_states_for_status)

EXPECTED = {
    (VmState.ACTIVE, None): "ACTIVE",
    (VmState.ACTIVE, TaskState.REBOOTING): "REBOOT",
    (VmState.ACTIVE, TaskState.REBOOT_STARTED): "REBOOT",
    (VmState.ACTIVE, TaskState.REBOOTING_HARD): "HARD_REBOOT",
    (VmState.ACTIVE, TaskState.REBUILDING): "REBUILD",
    (VmState.ACTIVE, TaskState.RESIZE_PREP): "RESIZE",
    (VmState.ACTIVE, TaskState.MIGRATING): "MIGRATING",
    (VmState.ACTIVE, TaskState.POWERING_OFF): "ACTIVE",
    (VmState.ACTIVE, TaskState.DELETING): "ACTIVE",
    (VmState.BUILDING, TaskState.SCHEDULING): "BUILD",
    (VmState.BUILDING, TaskState.SPAWNING): "BUILD",
    (VmState.STOPPED, None): "SHUTOFF",
    (VmState.STOPPED, TaskState.POWERING_ON): "SHUTOFF",
    (VmState.STOPPED, TaskState.REBUILDING): "REBUILD",
    (VmState.STOPPED, TaskState.RESIZE_MIGRATING): "RESIZE",
    (VmState.RESIZED, None): "VERIFY_RESIZE",
    (VmState.RESIZED, TaskState.RESIZE_REVERTING): "REVERT_RESIZE",
    (VmState.PAUSED, None): "PAUSED",
    (VmState.PAUSED, TaskState.MIGRATING): "MIGRATING",
    (VmState.SUSPENDED, None): "SUSPENDED",
    (VmState.RESCUED, None): "RESCUE",
    (VmState.ERROR, None): "ERROR",
    (VmState.ERROR, TaskState.REBUILDING): "REBUILD",
    (VmState.DELETED, None): "DELETED",
    (VmState.SOFT_DELETED, None): "SOFT_DELETED",
    (VmState.SHELVED, None): "SHELVED",
    (VmState.SHELVED_OFFLOADED, None): "SHELVED_OFFLOADED",
}


@pytest.mark.parametrize(("states", "status"), EXPECTED.items())
def test_status_table(states: tuple[str, str | None], status: str) -> None:
    assert status_of(*states) == status


def test_every_vm_state_has_a_row() -> None:
    assert set(STATUS_TABLE) == set(VmState)


def test_unknown_vm_state_is_unknown() -> None:
    assert status_of("melted", None) == "UNKNOWN"


def test_statuses_for_filtering() -> None:
    assert vm_states_for_status("SHUTOFF") == [VmState.STOPPED]
    assert {"ACTIVE", "HARD_REBOOT", "VERIFY_RESIZE", "UNKNOWN"} <= KNOWN_STATUSES
    assert "BOGUS" not in KNOWN_STATUSES


def test_soft_reboot_only_from_active_and_idle() -> None:
    vm_states, task_states, running = ALLOWED["reboot"]
    assert vm_states == {VmState.ACTIVE}
    assert task_states == {None}
    assert running == TaskState.REBOOTING


def test_hard_reboot_can_interrupt_a_soft_one() -> None:
    vm_states, task_states, _ = ALLOWED["reboot_hard"]
    assert VmState.STOPPED in vm_states and VmState.ERROR in vm_states
    assert TaskState.REBOOTING in task_states
    assert TaskState.SPAWNING not in task_states


def test_start_only_from_stopped() -> None:
    assert ALLOWED["start"][0] == {VmState.STOPPED}
    assert ALLOWED["unpause"][0] == {VmState.PAUSED}
    assert ALLOWED["resume"][0] == {VmState.SUSPENDED}
