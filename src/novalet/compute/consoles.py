"""Opening a server's remote console: the rules behind remote-consoles and the old
os-get*Console actions.

The instance's compute host says where the guest's display listens; console auth
issues a token bound to that target, and the client gets the proxy's URL with the
token in it. The proxies then trust only the token (console/tokens.py).
"""

from __future__ import annotations

import logging

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.states import TaskState, VmState
from novalet.console.tokens import ConsoleAuth, access_url
from novalet.console.types import DISPLAY_OF, ConsoleTarget
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.db import services as db_services
from novalet.rpc.bus import Bus, MessagingTimeout
from novalet.compute.driver_types import ConsoleUnavailable, InstanceNotFoundOnHost

LOG = logging.getLogger(__name__)

# The config section that turns each kind of display on or off.
SECTION_OF_DISPLAY = {"vnc": "vnc", "spice": "spice", "serial": "serial_console"}

# States in which the guest runs, so its displays are up. Rescue is when a console
# is wanted most; a paused guest still shows its (frozen) screen.
READY_STATES = frozenset({VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED})
# Task states in which the guest is going away or changing hosts (as Nova refuses).
REFUSED_TASKS = frozenset({TaskState.DELETING, TaskState.MIGRATING})


class ConsoleTypeInvalid(exceptions.Invalid):
    msg_fmt = "Invalid console type %(console_type)s"


class InstanceNotReady(exceptions.Conflict):
    msg_fmt = "Instance %(uuid)s is not ready"


class ConsoleInvalidState(exceptions.Conflict):
    msg_fmt = ("Cannot 'get_console' instance %(uuid)s while it is in task_state "
               "%(task_state)s")


class ConsoleService:
    """Issues console URLs for the instances a caller may see."""

    def __init__(self, conf: config.Config, db: Database, bus: Bus) -> None:
        self.conf = conf
        self.db = db
        self.auth = ConsoleAuth(conf, db)
        self.compute = compute_rpcapi.ComputeAPI(bus, conf)

    def display_of(self, console_type: str) -> str:
        """The display kind that serves `console_type`, or ConsoleUnavailable
        when none of ours can (rdp-html5, webmks, spice-direct) or it is turned off."""
        kind = DISPLAY_OF.get(console_type)
        if kind is None or not self.conf.get(SECTION_OF_DISPLAY[kind], "enabled"):
            raise ConsoleUnavailable(console_type=console_type)
        return kind

    async def console_url(self, ctx: RequestContext, instance: Instance,
                          console_type: str) -> str:
        """A new token for the instance's console of `console_type` and the URL that
        carries it. The caller has found the instance and checked policy."""
        kind = self.display_of(console_type)
        if instance.task_state in REFUSED_TASKS:
            raise ConsoleInvalidState(uuid=instance.uuid, task_state=instance.task_state)
        if not instance.host or instance.vm_state not in READY_STATES:
            raise InstanceNotReady(uuid=instance.uuid)
        target = await self._target(ctx, instance, instance.host, console_type, kind)
        token = await self.auth.authorize(instance.uuid, instance.host, console_type, target)
        LOG.info("Issued a %s console token for %s (display %s:%s on %s)", console_type,
                 instance.uuid, target.host, target.port, instance.host)
        return access_url(self.conf, console_type, token)

    async def host_up(self, host: str) -> bool:
        return await db_services.compute_is_up(self.db, host,
                                               self.conf.get("DEFAULT", "service_down_time"))

    async def _target(self, ctx: RequestContext, instance: Instance, host: str,
                      console_type: str, kind: str) -> ConsoleTarget:
        """Where the host says the display listens. A host that is down, or that has
        no such guest (yet, or any more), makes the instance not ready (409) at once
        rather than after a bus timeout."""
        if not await self.host_up(host):
            LOG.info("No console for %s: the compute service of %s is down", instance.uuid,
                     host)
            raise InstanceNotReady(uuid=instance.uuid)
        try:
            return await self.compute.get_console(ctx, host, instance.uuid, kind)
        except ConsoleUnavailable as exc:  # the host names its display kind; say the type
            raise ConsoleUnavailable(console_type=console_type) from exc
        except (InstanceNotFoundOnHost, MessagingTimeout) as exc:
            raise InstanceNotReady(uuid=instance.uuid) from exc
