"""Which server actions need which driver capability, and the up-front refusal.

Each compute host reports its virt driver's DriverCapabilities with its compute node
(ComputeManager.report_resources -> conductor -> compute_nodes.capabilities). The
domain layer asks here, after the state checks and before it sets a task_state or
starts anything, whether the server's host can do the action at all. Nova answers a
feature its hypervisor lacks with 501 ("The requested functionality is not
supported", raised from the driver's NotImplementedError) and an interface attach
the hypervisor cannot do with 400 (AttachInterfaceNotSupported); so do we, but
before any state changes.
"""

from __future__ import annotations

import json

from novalet import exceptions
from novalet.compute.driver_types import DriverCapabilities
from novalet.db import compute_nodes
from novalet.db.engine import Database
from novalet.db.models import Instance

# action (as compute.states.ALLOWED names it) -> the flag it needs. Only actions that
# start something the driver may lack: unpause, resume, unrescue, confirm and revert
# finish what the host did already, and must stay possible.
REQUIRED: dict[str, str] = {
    "reboot": "supports_reboot",
    "reboot_hard": "supports_reboot",
    "pause": "supports_pause",
    "suspend": "supports_suspend",
    "snapshot": "supports_snapshot",
    "rescue": "supports_rescue",
    "rebuild": "supports_rebuild",
    "resize": "supports_resize",
    "migrate": "supports_migrate",
    "live_migrate": "supports_live_migrate",
    "attach_interface": "supports_attach_interface",
    "backup": "supports_snapshot",
    "change_password": "supports_set_admin_password",
    "trigger_crash_dump": "supports_trigger_crash_dump",
    "add_fixed_ip": "supports_attach_interface",
    "remove_fixed_ip": "supports_attach_interface",
    "shelve": "supports_snapshot",  # the shelved image is a snapshot
}


class FeatureNotSupported(exceptions.NovaletError):
    """The server's hypervisor lacks the feature (Nova's raise_feature_not_supported)."""

    msg_fmt = ("The requested functionality is not supported: '%(action)s' on instance "
               "%(uuid)s (its host %(host)s has a hypervisor without it).")
    code = 501


class AttachInterfaceNotSupported(exceptions.Invalid):
    msg_fmt = ("Attaching interfaces is not supported for instance %(uuid)s (its host "
               "%(host)s has a hypervisor without it).")


class SetAdminPasswdNotSupported(exceptions.Conflict):
    """Nova answers changePassword on a guest without a password agent with 409."""

    msg_fmt = ("Set admin password is not supported: instance %(uuid)s's host %(host)s "
               "has no guest agent that can set it.")


class TriggerCrashDumpNotSupported(exceptions.Invalid):
    msg_fmt = ("Triggering crash dump is not supported: instance %(uuid)s's host %(host)s "
               "can't inject an NMI.")


# Refusals with Nova's own status instead of the generic 501.
_REFUSALS: dict[str, type[exceptions.NovaletError]] = {
    "attach_interface": AttachInterfaceNotSupported,
    "change_password": SetAdminPasswdNotSupported,
    "trigger_crash_dump": TriggerCrashDumpNotSupported,
}


async def of_instance(db: Database, instance: Instance) -> DriverCapabilities:
    """What the server's host reported; every flag set if it reported nothing (a host
    of an older release, or none yet): that host refuses by itself then."""
    reported = await compute_nodes.capabilities_of(db, instance.host, instance.node)
    return DriverCapabilities.from_dict(json.loads(reported) if reported else None)


async def check(db: Database, instance: Instance, action: str, public: str) -> None:
    """Refuse `action` (named `public` to the user) when the instance's host can't."""
    flag = REQUIRED.get(action)
    if flag is None or instance.host is None:
        return
    if (await of_instance(db, instance)).supports(flag):
        return
    refusal = _REFUSALS.get(action)
    if refusal is not None:
        raise refusal(uuid=instance.uuid, host=instance.host)
    raise FeatureNotSupported(action=public, uuid=instance.uuid, host=instance.host)
