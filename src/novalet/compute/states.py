"""The three instance states Nova keeps, the actions allowed from each, and the API status.

vm_state says what the instance is, task_state what is being done to it,
power_state what the hypervisor last reported. The public `status` is derived
from vm_state and task_state by one table.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class VmState(StrEnum):
    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    NETWORKING = "networking"
    SPAWNING = "spawning"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_UPLOADING = "image_uploading"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    REBOOTING = "rebooting"
    REBOOT_PENDING = "reboot_pending"
    REBOOT_STARTED = "reboot_started"
    REBOOTING_HARD = "rebooting_hard"
    REBOOT_PENDING_HARD = "reboot_pending_hard"
    REBOOT_STARTED_HARD = "reboot_started_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    MIGRATING = "migrating"
    DELETING = "deleting"
    IMAGE_BACKUP = "image_backup"
    UPDATING_PASSWORD = "updating_password"
    SOFT_DELETING = "soft-deleting"
    RESTORING = "restoring"
    SHELVING = "shelving"
    SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
    SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"


class PowerState(IntEnum):
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


_REBOOT = {TaskState.REBOOTING, TaskState.REBOOT_PENDING, TaskState.REBOOT_STARTED}
_HARD_REBOOT = {TaskState.REBOOTING_HARD, TaskState.REBOOT_PENDING_HARD,
                TaskState.REBOOT_STARTED_HARD}
_REBUILD = {TaskState.REBUILDING, TaskState.REBUILD_SPAWNING}
_RESIZE = {TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED,
           TaskState.RESIZE_FINISH}

# vm_state -> (status when no task overrides it, {task_state: status})
STATUS_TABLE: dict[str, tuple[str, dict[str, str]]] = {
    VmState.ACTIVE: ("ACTIVE", {
        **{t: "REBOOT" for t in _REBOOT}, **{t: "HARD_REBOOT" for t in _HARD_REBOOT},
        **{t: "REBUILD" for t in _REBUILD}, **{t: "RESIZE" for t in _RESIZE},
        TaskState.MIGRATING: "MIGRATING", TaskState.UPDATING_PASSWORD: "PASSWORD"}),
    VmState.BUILDING: ("BUILD", {}),
    VmState.STOPPED: ("SHUTOFF", {**{t: "REBUILD" for t in _REBUILD},
                                  **{t: "RESIZE" for t in _RESIZE}}),
    VmState.RESIZED: ("VERIFY_RESIZE", {TaskState.RESIZE_REVERTING: "REVERT_RESIZE"}),
    VmState.PAUSED: ("PAUSED", {TaskState.MIGRATING: "MIGRATING"}),
    VmState.SUSPENDED: ("SUSPENDED", {}),
    VmState.RESCUED: ("RESCUE", {}),
    VmState.ERROR: ("ERROR", {t: "REBUILD" for t in _REBUILD}),
    VmState.DELETED: ("DELETED", {}),
    VmState.SOFT_DELETED: ("SOFT_DELETED", {}),
    VmState.SHELVED: ("SHELVED", {}),
    VmState.SHELVED_OFFLOADED: ("SHELVED_OFFLOADED", {}),
}


def status_of(vm_state: str, task_state: str | None) -> str:
    """The API status Nova shows for this pair of states."""
    entry = STATUS_TABLE.get(vm_state)
    if entry is None:
        return "UNKNOWN"
    default, by_task = entry
    return by_task.get(task_state or "", default)


def vm_states_for_status(status: str) -> list[str]:
    """vm_states whose default status is `status` (for the status list filter)."""
    return [vm for vm, (default, _) in STATUS_TABLE.items() if default == status]


# action -> (allowed vm_states, allowed task_states, task_state while running)
ALLOWED: dict[str, tuple[frozenset[str], frozenset[str | None], str | None]] = {
    "reboot": (frozenset({VmState.ACTIVE}), frozenset({None}), TaskState.REBOOTING),
    "reboot_hard": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED,
                               VmState.SUSPENDED, VmState.ERROR}),
                    frozenset({None, *_REBOOT, *_HARD_REBOOT}), TaskState.REBOOTING_HARD),
    "stop": (frozenset({VmState.ACTIVE, VmState.ERROR}), frozenset({None}),
             TaskState.POWERING_OFF),
    "start": (frozenset({VmState.STOPPED}), frozenset({None}), TaskState.POWERING_ON),
    "pause": (frozenset({VmState.ACTIVE}), frozenset({None}), TaskState.PAUSING),
    "unpause": (frozenset({VmState.PAUSED}), frozenset({None}), TaskState.UNPAUSING),
    "suspend": (frozenset({VmState.ACTIVE}), frozenset({None}), TaskState.SUSPENDING),
    "resume": (frozenset({VmState.SUSPENDED}), frozenset({None}), TaskState.RESUMING),
    "snapshot": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED,
                            VmState.SUSPENDED}), frozenset({None}), TaskState.IMAGE_SNAPSHOT),
    "rescue": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}), frozenset({None}),
               TaskState.RESCUING),
    "unrescue": (frozenset({VmState.RESCUED}), frozenset({None}), TaskState.UNRESCUING),
    "rebuild": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}),
                frozenset({None}), TaskState.REBUILDING),
    "resize": (frozenset({VmState.ACTIVE, VmState.STOPPED}), frozenset({None}),
               TaskState.RESIZE_PREP),
    "confirm_resize": (frozenset({VmState.RESIZED}), frozenset({None}),
                       TaskState.RESIZE_CONFIRMING),
    "revert_resize": (frozenset({VmState.RESIZED}), frozenset({None}),
                      TaskState.RESIZE_REVERTING),
    "migrate": (frozenset({VmState.ACTIVE, VmState.STOPPED}), frozenset({None}),
                TaskState.RESIZE_PREP),
    "live_migrate": (frozenset({VmState.ACTIVE, VmState.PAUSED}), frozenset({None}),
                     TaskState.MIGRATING),
    # synchronous (the API waits for the host): no task_state of their own
    "attach_interface": (frozenset({VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED}),
                         frozenset({None}), None),
    "detach_interface": (frozenset({VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED}),
                         frozenset({None}), None),
    # server_ops.py: createBackup, changePassword, restore, trigger_crash_dump, multinic
    "backup": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED,
                          VmState.SUSPENDED}), frozenset({None}), TaskState.IMAGE_BACKUP),
    "change_password": (frozenset({VmState.ACTIVE}), frozenset({None}),
                        TaskState.UPDATING_PASSWORD),
    "restore": (frozenset({VmState.SOFT_DELETED}), frozenset({None}), TaskState.RESTORING),
    "trigger_crash_dump": (frozenset({VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED,
                                      VmState.RESIZED, VmState.ERROR}), frozenset({None}), None),
    "add_fixed_ip": (frozenset({VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED}),
                     frozenset({None}), None),
    "remove_fixed_ip": (frozenset({VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED}),
                        frozenset({None}), None),
    # the moves the conductor runs as tasks (conductor/tasks/)
    "shelve": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED,
                          VmState.SUSPENDED}), frozenset({None}), TaskState.SHELVING),
    "shelve_offload": (frozenset({VmState.SHELVED}), frozenset({None}),
                       TaskState.SHELVING_OFFLOADING),
    "unshelve": (frozenset({VmState.SHELVED, VmState.SHELVED_OFFLOADED}), frozenset({None}),
                 TaskState.UNSHELVING),
    "evacuate": (frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}),
                 frozenset({None}), TaskState.REBUILDING),
}

# Public status names accepted by the list filter `status`.
KNOWN_STATUSES = frozenset(
    {default for default, _ in STATUS_TABLE.values()}
    | {s for _, by_task in STATUS_TABLE.values() for s in by_task.values()}
    | {"UNKNOWN"})
