"""Ports with Neutron's semantics, for the network API (api/network/ports.py).

A port is a `virtual_interfaces` row (docs/network-api.md): a server's NIC is a port
bound to it (device_id the server, device_owner `compute:<zone>`), and a port made
here is bound to nothing until a server is booted on it. Both are one row, so the
compute API's os-interface and this API show the same MAC and address.

What a port has here: one IPv4 address of its network's one subnet; security
groups (a bound port's are its server's, security_group_instances, shared by all
its NICs; an unbound port keeps its own list until it is bound); port security
and allowed address pairs, which the host firewall honours per tap; the binding
host is the bound server's host, never stored apart from it.

Scope: a member sees its project's ports (its own and its servers' NICs) and makes
ports on its networks and on shared ones (another project's network is a 404); an
admin sees and does anything. Neutron's rule names, binding:* admin only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import network as db_network
from novalet.db import networks as db_networks
from novalet.db import port_groups
from novalet.db import ports as db
from novalet.db.models import Network
from novalet.network import port_checks as checks
from novalet.network import router_ports
from novalet.network.api import NetworkAPI
from novalet.network.port_info import PortInfo

LOG = logging.getLogger(__name__)

BOUND_VIF_TYPE = "bridge"  # a tap on a Linux bridge, as Neutron's linuxbridge agent binds
# Attributes a create or update checks a rule of its own for (Neutron's names).
_GUARDED = ("mac_address", "port_security_enabled", "binding:host_id", "binding:profile",
            "allowed_address_pairs", "device_owner", "device_id")
_DEVICE_ID = ("device_id is the server the port is bound to, set when a server is booted on "
              "the port (or attached to it) and cleared when it goes; it can't be written")


class PortNotFound(checks.NeutronNamed, exceptions.NotFound):
    msg_fmt = "Port %(port_id)s could not be found."


class NetworkNotFound(checks.NeutronNamed, exceptions.NotFound):
    msg_fmt = "Network %(net_id)s could not be found."


class SecurityGroupNotFound(checks.NeutronNamed, exceptions.NotFound):
    msg_fmt = "Security group %(id)s does not exist"


class PortInUse(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = ("Unable to complete operation on port %(port_id)s for network %(net_id)s. "
               "Port already has an attached device %(device_id)s. %(hint)s")


class MacAddressInUse(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = ("Unable to complete operation for network %(net_id)s. The mac address "
               "%(mac)s is in use.")


class IpAddressAlreadyAllocated(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class IpAddressGenerationFailure(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = "No more IP addresses available on network %(net_id)s."


class InvalidIpForSubnet(checks.InvalidIpForSubnet):
    """An address of the subnet that is not handed out (network, broadcast, gateway,
    outside the allocation pools, reserved by an admin)."""

    msg_fmt = ("IP address %(ip_address)s is not a valid IP for the specified subnet: it "
               "is reserved (network, broadcast or gateway address, outside the "
               "allocation pools, or reserved by an admin); pick one of the pools.")


class PortSecurityPortHasSecurityGroup(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = ("Port has security group associated. Cannot disable port security or ip "
               "address until security group is removed")


class PortSecurityAndIPRequiredForSecurityGroups(checks.NeutronNamed, exceptions.Invalid):
    msg_fmt = ("Port security must be enabled and port must have an IP address in order to "
               "use security groups.")


class AddressPairAndPortSecurityRequired(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = "Port Security must be enabled in order to have allowed address pairs on a port."


class ProjectMismatch(exceptions.Invalid):
    neutron_type = "HTTPBadRequest"
    msg_fmt = ("Specifying 'project_id' or 'tenant_id' other than the authenticated "
               "project in request requires admin privileges")


class PortService:
    """Create, show, list, update and delete ports for a RequestContext."""

    def __init__(self, nova: NetworkAPI) -> None:
        self.nova = nova  # groups, the default zone and the host refresh
        self.db = nova.db

    # --- reads --------------------------------------------------------------------

    async def list_ports(self, ctx: RequestContext) -> list[PortInfo]:
        """The caller's project's ports (an admin: every port), its routers'
        interfaces (an admin: routers' gateways too) after them."""
        rows = await db.list_ports(self.db, None if ctx.is_admin else ctx.project_id or "")
        infos = await self._infos(rows)
        return [i for i in infos if policy.authorize(ctx, "get_port", i.project_id, i.target)
                ] + await router_ports.list_ports(self.db, ctx)

    async def get_port(self, ctx: RequestContext, port_id: str) -> PortInfo:
        """PortNotFound (404) when it does not exist or the caller may not see it."""
        try:
            return (await self._infos([await self._visible(ctx, port_id)]))[0]
        except PortNotFound:
            return await self._router_port(ctx, port_id)

    async def _router_port(self, ctx: RequestContext, port_id: str) -> PortInfo:
        """A router's interface or gateway shown as a port (read-only); PortNotFound
        when it is none the caller may see."""
        found = await router_ports.find(self.db, ctx, port_id)
        if found is None:
            raise PortNotFound(port_id=port_id)
        return found

    async def _visible(self, ctx: RequestContext, port_id: str) -> db.PortRow:
        try:
            row = await db.get_port(self.db, port_id)
        except db.PortNotFound:
            raise PortNotFound(port_id=port_id) from None
        if not policy.authorize(ctx, "get_port", row.project_id or "", _target(row)):
            raise PortNotFound(port_id=port_id)
        return row

    async def _infos(self, rows: list[db.PortRow]) -> list[PortInfo]:
        stored = {g for r in rows if r.server is None for g in r.vif.security_groups or []}
        existing = await db.existing_group_uuids(self.db, None, sorted(stored))
        return [_info(r, existing, self._zone) for r in rows]

    @property
    def _zone(self) -> str:
        """The zone of a server placed in none (Nova's default_availability_zone)."""
        return str(self.nova.conf.get("DEFAULT", "default_availability_zone"))

    # --- create -------------------------------------------------------------------

    async def create_port(self, ctx: RequestContext, attrs: Mapping[str, Any]) -> PortInfo:
        """A port bound to nothing on a network the caller may use, with the address
        and MAC asked for or picked; its groups default to the project's default
        group (none when port security is off)."""
        network = await self._usable_network(ctx, attrs.get("network_id"))
        owner = _owner(ctx, attrs)
        target = _network_target(network, owner)
        policy.enforce(ctx, "create_port", owner, target)
        self._enforce_attributes(ctx, "create_port", attrs, owner, target, {})
        _refuse_binding_writes(attrs, None)
        if attrs.get("device_id"):
            raise checks.InvalidInput(error_message=_DEVICE_ID)
        subnet = checks.network_subnet(network, await self._subnet_uuid(network))
        address = None
        if "fixed_ips" in attrs:
            address = checks.fixed_ip(attrs["fixed_ips"], network, subnet)
            self._enforce_fixed_ips(ctx, "create_port", attrs["fixed_ips"], owner, target)
        mac = checks.mac_address(attrs["mac_address"]) if "mac_address" in attrs else None
        security = bool(attrs.get("port_security_enabled", network.port_security_enabled))
        pairs = checks.address_pairs(attrs.get("allowed_address_pairs", []), mac,
                                     within=None if ctx.is_admin else subnet.cidr)
        groups = await self._new_port_groups(ctx, owner, attrs.get("security_groups"), security)
        if pairs and not security:
            raise AddressPairAndPortSecurityRequired()
        values = {"project_id": owner, "name": attrs.get("name", ""),
                  "description": attrs.get("description", ""),
                  "device_owner": _device_owner(attrs.get("device_owner", "")),
                  "admin_state_up": bool(attrs.get("admin_state_up", True)),
                  "port_security_enabled": security, "allowed_address_pairs": pairs,
                  "security_groups": groups, "preserve_on_delete": True}
        row = await self._insert(network, values, mac, address, subnet.uuid)
        LOG.info("Port %s (%s %s) created on network %s for project %s", row.vif.uuid,
                 row.vif.address, row.fixed_ip, network.uuid, owner)
        return (await self._infos([row]))[0]

    async def _insert(self, network: Network, values: dict[str, Any], mac: str | None,
                      address: str | None, subnet_uuid: str) -> db.PortRow:
        quota = (await self.nova.quotas.limits(values["project_id"]))["ports"]
        try:
            return await db.create_port(self.db, network.uuid, values, mac, address, quota)
        except db.MacAddressInUse:
            raise MacAddressInUse(net_id=network.uuid, mac=mac) from None
        except db.AddressTaken as exc:
            raise _address_error(exc, subnet_uuid) from None
        except db.PoolExhausted:
            raise IpAddressGenerationFailure(net_id=network.uuid) from None
        except db_network.NetworkNotFound:
            raise NetworkNotFound(net_id=network.uuid) from None

    async def _usable_network(self, ctx: RequestContext, network_id: Any) -> Network:
        """The network a port may be made on: any for an admin; the caller's own, the
        shared and (outside vlan mode) nova-network's unassigned ones for others (else
        404): the rule a boot on a network follows (db/ports.py usable_by)."""
        if not isinstance(network_id, str) or not network_id:
            raise checks.InvalidInput(error_message="network_id must be given: the network "
                                      "the port is on")
        try:
            network = await db_network.get_network(self.db, network_id)
        except db_network.NetworkNotFound:
            raise NetworkNotFound(net_id=network_id) from None
        if network.external:  # its addresses are floating IPs, no fixed ones to give
            raise checks.InvalidInput(error_message=(
                f"network {network_id} is external: it holds floating IPs, not ports; make "
                "the port on a guest network and give it a floating IP"))
        if not (ctx.is_admin or db.usable_by(network, ctx.project_id or "",
                                             self.nova.mode == "vlan")):
            raise NetworkNotFound(net_id=network_id)
        return network

    async def _subnet_uuid(self, network: Network) -> str | None:
        return next(iter((await db_networks.subnet_ids(self.db, [network.id])).get(
            network.id, [])), None)

    async def _new_port_groups(self, ctx: RequestContext, owner: str, given: Any,
                               security: bool) -> list[str]:
        if given is None:
            if not security:
                return []
            return [(await self.nova.default_group(owner, ctx.user_id)).uuid]
        uuids = await self._groups(ctx, owner, given)
        if uuids and not security:
            raise PortSecurityAndIPRequiredForSecurityGroups()
        return uuids

    async def _groups(self, ctx: RequestContext, owner: str, given: Any) -> list[str]:
        """Group uuids of the port's project (an unknown one, or another project's,
        is SecurityGroupNotFound), in the order given, without repeats."""
        if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
            raise checks.InvalidInput(error_message=f"security_groups {given!r} is not a "
                                      "list of security group ids")
        uuids = list(dict.fromkeys(given))
        found = await db.existing_group_uuids(self.db, owner, uuids)
        missing = [g for g in uuids if g not in found]
        if missing:
            raise SecurityGroupNotFound(id=missing[0])
        return uuids

    # --- update -------------------------------------------------------------------

    async def update_port(self, ctx: RequestContext, port_id: str, attrs: Mapping[str, Any]
                          ) -> PortInfo:
        """Change what Neutron lets change. A bound port's MAC, address, device and
        owner follow its server (409 PortInUse / 400); its groups are its server's.
        A router's port is changed through its router (409)."""
        try:
            row = await self._visible(ctx, port_id)
        except PortNotFound:
            router_port = await self._router_port(ctx, port_id)
            policy.enforce(ctx, "update_port", router_port.project_id, router_port.target)
            raise router_ports.refuse_update(router_port) from None
        target = _target(row)
        project = row.project_id or ""
        policy.enforce(ctx, "update_port", project, target)
        self._enforce_attributes(ctx, "update_port", attrs, project, target, _current(row, self._zone))
        _refuse_binding_writes(attrs, row)
        if "fixed_ips" in attrs:
            self._enforce_fixed_ips(ctx, "update_port", attrs["fixed_ips"], project, target)
        plan = await self._update_plan(ctx, row, attrs)
        if "fixed_ips" in attrs:
            row = await self._readdress(row, attrs["fixed_ips"])
        if "groups" in plan:
            await self._set_server_groups(row, plan.pop("groups"))
        if plan:
            try:
                row = await db.update_port(self.db, port_id, plan)
            except db.MacAddressInUse:
                raise MacAddressInUse(net_id=row.network.uuid, mac=plan.get("address")) from None
        else:
            row = await db.get_port(self.db, port_id)
        if row.server is not None:
            await self.nova.refresh_project_hosts(row.server.project_id)
        return (await self._infos([row]))[0]

    async def _update_plan(self, ctx: RequestContext, row: db.PortRow,
                           attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The columns to set (and "groups": a bound port's server's new groups)."""
        values: dict[str, Any] = {k: attrs[k] for k in ("name", "description", "admin_state_up")
                                  if k in attrs}
        if "mac_address" in attrs:
            mac = checks.mac_address(attrs["mac_address"])
            if mac != row.vif.address:
                self._refuse_if_bound(row, "its MAC address")
                values["address"] = mac
        if "device_owner" in attrs and attrs["device_owner"] != _current(row, self._zone)["device_owner"]:
            self._refuse_if_bound(row, "its device_owner")
            values["device_owner"] = _device_owner(attrs["device_owner"])
        if "device_id" in attrs and attrs["device_id"] != _current(row, self._zone)["device_id"]:
            raise checks.InvalidInput(error_message=_DEVICE_ID)
        security = bool(attrs.get("port_security_enabled", row.vif.port_security_enabled))
        groups = await self._groups(ctx, row.project_id or "", attrs["security_groups"]) \
            if "security_groups" in attrs else _current(row, self._zone)["security_groups"]
        mac = values.get("address", row.vif.address)
        pairs = list(row.vif.allowed_address_pairs or [])
        if "allowed_address_pairs" in attrs:
            within = None if ctx.is_admin else \
                checks.network_subnet(row.network, row.subnet_id).cidr
            pairs = checks.address_pairs(attrs["allowed_address_pairs"], mac, within=within)
        if not security and groups:
            raise PortSecurityPortHasSecurityGroup()
        if not security and pairs:
            raise AddressPairAndPortSecurityRequired()
        values["port_security_enabled"] = security
        if "allowed_address_pairs" in attrs:
            values["allowed_address_pairs"] = pairs
        if "security_groups" in attrs:
            values["security_groups"] = groups
            if row.server is not None:  # the server's; the port leaves with them
                values["groups"] = groups
                own_added = port_groups.split(row.vif.security_groups or [])[1]
                values["security_groups"] = port_groups.record(
                    groups, [g for g in own_added if g in groups])
        return values

    async def _readdress(self, row: db.PortRow, fixed_ips: Any) -> db.PortRow:
        subnet = checks.network_subnet(row.network, row.subnet_id)
        address = checks.fixed_ip(fixed_ips, row.network, subnet)
        if address is None or address == row.fixed_ip:
            return row  # the same subnet, and no other address asked for: it stays
        self._refuse_if_bound(row, "its address")
        try:
            return await db.change_address(self.db, row.vif.uuid, address)
        except db.AddressTaken as exc:
            raise _address_error(exc, subnet.uuid) from None
        except db.PortBound:
            self._refuse_if_bound(await db.get_port(self.db, row.vif.uuid), "its address")
            raise

    async def _set_server_groups(self, row: db.PortRow, uuids: list[str]) -> None:
        assert row.server is not None
        await db.set_instance_groups(self.db, row.server.uuid, uuids)
        LOG.info("Server %s's security groups are now %s (through port %s)", row.server.uuid,
                 ", ".join(uuids) or "none", row.vif.uuid)

    @staticmethod
    def _refuse_if_bound(row: db.PortRow, what: str) -> None:
        if row.server is not None:
            raise PortInUse(port_id=row.vif.uuid, net_id=row.network.uuid,
                            device_id=row.server.uuid, hint=(
                                f"A server's port can't change {what}: detach the interface "
                                "(DELETE /servers/{id}/os-interface/{port}) and attach another"))

    # --- delete -------------------------------------------------------------------

    async def delete_port(self, ctx: RequestContext, port_id: str) -> None:
        """Delete a port bound to no server and free its address. A server's NIC is
        a 409 PortInUse (detach it from the server, or delete the server): deleting
        it here would pull the device from under a running guest. A router's port
        is a 409 L3PortInUse (remove the router interface instead)."""
        try:
            row = await self._visible(ctx, port_id)
        except PortNotFound:
            router_port = await self._router_port(ctx, port_id)
            policy.enforce(ctx, "delete_port", router_port.project_id, router_port.target)
            raise router_ports.refuse_delete(router_port) from None
        policy.enforce(ctx, "delete_port", row.project_id or "", _target(row))
        try:
            await db.delete_unbound_port(self.db, port_id)
        except db.PortNotFound:
            raise PortNotFound(port_id=port_id) from None
        except db.PortBound as exc:
            raise PortInUse(port_id=port_id, net_id=row.network.uuid,
                            device_id=exc.kwargs["instance_uuid"], hint=(
                                "It is a server's interface: detach it with DELETE "
                                "/servers/{id}/os-interface/{port} or delete the server")
                            ) from None
        LOG.info("Port %s (%s) deleted", port_id, row.fixed_ip)

    # --- policy -------------------------------------------------------------------

    @staticmethod
    def _enforce_attributes(ctx: RequestContext, action: str, attrs: Mapping[str, Any],
                            project: str, target: dict[str, Any],
                            current: Mapping[str, Any]) -> None:
        """Neutron's per-attribute rules, for attributes given with a new value."""
        for name in _GUARDED:
            if name in attrs and (name not in current or attrs[name] != current[name]):
                policy.enforce(ctx, f"{action}:{name}", project, target)

    @staticmethod
    def _enforce_fixed_ips(ctx: RequestContext, action: str, fixed_ips: Any, project: str,
                           target: dict[str, Any]) -> None:
        policy.enforce(ctx, f"{action}:fixed_ips", project, target)
        entries = [e for e in fixed_ips if isinstance(e, dict)] \
            if isinstance(fixed_ips, list) else []
        for key in ("ip_address", "subnet_id"):
            if any(key in e for e in entries):
                policy.enforce(ctx, f"{action}:fixed_ips:{key}", project, target)


# --- helpers --------------------------------------------------------------------------

def _owner(ctx: RequestContext, attrs: Mapping[str, Any]) -> str:
    given = {attrs[k] for k in ("project_id", "tenant_id") if attrs.get(k)}
    if len(given) > 1:
        raise checks.InvalidInput(error_message="project_id and tenant_id differ")
    owner = given.pop() if given else ctx.project_id or ""
    if owner != ctx.project_id and not ctx.is_admin:
        raise ProjectMismatch()
    if not owner:
        raise checks.InvalidInput(error_message="a port needs a project: use a "
                                  "project-scoped token or give project_id")
    return str(owner)


def _device_owner(value: Any) -> str:
    text = str(value or "")
    if text.startswith("compute:"):
        raise checks.InvalidInput(error_message=(
            f"device_owner {text} is set by the compute service when a server is booted on "
            "the port; leave it out"))
    return text


def _refuse_binding_writes(attrs: Mapping[str, Any], row: db.PortRow | None) -> None:
    """binding:host_id is the bound server's host and binding:profile is not used
    here: writing anything else than what they are is a 400 (after the policy's 403)."""
    host = (row.server.host if row is not None and row.server is not None else None) or ""
    if attrs.get("binding:host_id", host) != host:
        raise checks.InvalidInput(error_message=(
            "binding:host_id is the host of the server the port is bound to; boot the "
            "server on the port (or move it) instead"))
    if attrs.get("binding:profile", {}) != {}:
        raise checks.InvalidInput(error_message="binding:profile is not used here: leave it {}")


def _address_error(exc: db.AddressTaken, subnet_uuid: str) -> exceptions.NovaletError:
    address, holder = exc.kwargs["address"], str(exc.kwargs["holder"])
    if holder.startswith("in use"):
        return IpAddressAlreadyAllocated(ip=address, subnet_id=subnet_uuid)
    return InvalidIpForSubnet(ip_address=address)


def _network_target(network: Network, owner: str) -> dict[str, Any]:
    return {"project_id": owner, "network_project_id": network.project_id or "",
            "shared": bool(network.shared or network.project_id is None)}


def _target(row: db.PortRow) -> dict[str, Any]:
    return _network_target(row.network, row.project_id or "")


def _current(row: db.PortRow, zone: str) -> dict[str, Any]:
    """What an update compares given attributes with (unchanged ones need no rule)."""
    return {"mac_address": row.vif.address,
            "port_security_enabled": bool(row.vif.port_security_enabled),
            "allowed_address_pairs": _pairs(row),
            "device_owner": _shown_owner(row, zone),
            "device_id": row.server.uuid if row.server is not None else "",
            "security_groups": (list(row.server.group_uuids) if row.server is not None
                                else list(row.vif.security_groups or [])),
            "binding:host_id": (row.server.host or "") if row.server is not None else "",
            "binding:profile": {}}


def _shown_owner(row: db.PortRow, zone: str) -> str:
    """compute:<the server's zone> for a server's port, as Nova writes it."""
    if row.server is not None:
        return f"compute:{row.server.availability_zone or zone}"
    return row.vif.device_owner or ""


def _pairs(row: db.PortRow) -> list[dict[str, str]]:
    """Stored pairs; a pair stored without a MAC (made before the port had one) has
    the port's."""
    return [{"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or
             row.vif.address} for p in row.vif.allowed_address_pairs or []]


def _info(row: db.PortRow, existing_groups: set[str], default_zone: str) -> PortInfo:
    server, vif = row.server, row.vif
    bound = server is not None
    groups = list(server.group_uuids) if server is not None else \
        [g for g in vif.security_groups or [] if g in existing_groups]
    active = (server is not None and server.host is not None and server.vm_state == "active"
              and bool(vif.admin_state_up))
    return PortInfo(
        id=vif.uuid, name=vif.name or "", description=vif.description or "",
        network_id=row.network.uuid, project_id=row.project_id or "", mac_address=vif.address,
        admin_state_up=bool(vif.admin_state_up), status="ACTIVE" if active else "DOWN",
        fixed_ips=([{"subnet_id": row.subnet_id or "", "ip_address": row.fixed_ip}]
                   if row.fixed_ip else []),
        device_id=server.uuid if server is not None else "",
        device_owner=_shown_owner(row, default_zone),
        security_groups=groups, port_security_enabled=bool(vif.port_security_enabled),
        allowed_address_pairs=_pairs(row),
        binding_host_id=(server.host or "") if server is not None else "",
        binding_vif_type=BOUND_VIF_TYPE if bound and server and server.host else "unbound",
        created_at=vif.created_at, updated_at=vif.updated_at or vif.created_at,
        target=_target(row))
