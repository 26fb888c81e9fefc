"""Servers on ports: a boot's `networks: [{"port": id}]` checked at the compute API
and bound by the conductor (network/api.py calls these). A bound port is the
server's NIC; when the server goes (or the interface is detached) a port the user
made is unbound, keeping its address and the server's groups (db/network.py), as
Nova leaves a preexisting port behind."""

from __future__ import annotations

from collections.abc import Sequence

from novalet import exceptions
from novalet.db import ports as db
from novalet.db.engine import Database


class PortNotFound(exceptions.Invalid):
    msg_fmt = "Port %(port_id)s could not be found."


class AttachPortNotFound(exceptions.NotFound):
    """os-interface's attach of an unknown port (or another project's): 404, as Nova."""

    msg_fmt = "Port %(port_id)s could not be found."


class PortInUse(exceptions.Conflict):
    msg_fmt = "Port %(port_id)s is still in use."


class PortsForOneServer(exceptions.Invalid):
    msg_fmt = ("Unable to launch multiple instances with a single configured port ID. "
               "Please launch your instance one by one with different ports.")


class DuplicatePortRequested(exceptions.Invalid):
    msg_fmt = "Port %(port_id)s is requested more than once."


async def check_ports(db_: Database, project_id: str, port_ids: Sequence[str],
                      max_count: int, vlan_mode: bool = False) -> None:
    """400 for an unknown port (or another project's), a repeated one, or ports with
    max_count above 1; 409 for a port a server has already."""
    if not port_ids:
        return
    if max_count > 1:
        raise PortsForOneServer()
    if len(set(port_ids)) != len(port_ids):
        raise DuplicatePortRequested(port_id=next(p for p in port_ids
                                                  if list(port_ids).count(p) > 1))
    try:
        await db.check_bindable(db_, project_id, port_ids, vlan_mode)
    except db.PortNotFound as exc:
        raise PortNotFound(port_id=exc.kwargs["port_id"]) from None
    except db.PortBound as exc:
        raise PortInUse(port_id=exc.kwargs["port_id"]) from None


async def bind(db_: Database, instance_uuid: str, project_id: str, host: str | None,
               port_ids: Sequence[str], vlan_mode: bool = False) -> None:
    """Bind the ports to the instance; the groups they carried become its own. The
    port's network is checked again: another project may have claimed it since."""
    try:
        await db.bind_ports(db_, instance_uuid, project_id, host, port_ids, vlan_mode)
    except db.PortBound as exc:  # a concurrent boot took it since the API's check
        raise PortInUse(port_id=exc.kwargs["port_id"]) from None
