"""Networks with Neutron's semantics, for the network API (api/network/networks.py).

The same rows as nova-network's networks (docs/network-api.md): the label is the
name, a VLAN makes the network a `vlan` provider network, else it is `flat` on
the one physical network. A network made here has no subnet (its L3 columns are
NULL) and no host serves it until it gets one.

Scope and policy are enforced here, with Neutron's rule names: a caller sees its
project's networks, the shared and the external ones (another project's network
is a 404); only an admin sets shared, router:external or provider attributes.
Networks nova-network left unassigned (no project) serve every project: they
count as shared.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import auto_topologies as db_auto
from novalet.db import network as db_network
from novalet.db import networks as db
from novalet.db.models import Network
from novalet.network.api import MAX_VLAN, NetworkAPI, NoMoreVlans
from novalet.network.project_ids import check_project_id

LOG = logging.getLogger(__name__)

# The one physical network guests' bridges reach (flat) or tag onto (vlan).
PHYSICAL_NETWORK = "default"
MIN_MTU = 68  # the least an IPv4 network may have
DEFAULT_MTU = 1500
_VLAN_ATTEMPTS = 3  # picks of a free VLAN before a concurrent creator's win is a 409
# Attributes only an admin may set (Neutron's create_/update_network:<attr> rules).
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
_GUARDED = ("shared", "router:external", "port_security_enabled", "is_default") + PROVIDER


class NetworkNotFound(db_network.NetworkNotFound):
    msg_fmt = "Network %(network_id)s could not be found."


class NetworkInUse(exceptions.Conflict):
    msg_fmt = ("Unable to complete operation on network %(network_id)s. There are one or "
               "more ports still in use on the network.")


class InvalidSharedSetting(exceptions.Conflict):
    msg_fmt = ("Unable to reconfigure sharing settings for network %(network_id)s. "
               "Multiple tenants are using it.")


class VlanIdInUse(exceptions.Conflict):
    msg_fmt = ("Unable to create the network. The VLAN %(vlan)s on physical network "
               "%(physnet)s is in use.")


class InvalidInput(exceptions.Invalid):
    msg_fmt = "Invalid input for operation: %(reason)s."


class ProjectMismatch(exceptions.Invalid):
    neutron_type = "HTTPBadRequest"
    msg_fmt = ("Specifying 'project_id' or 'tenant_id' other than the authenticated "
               "project in request requires admin privileges")


@dataclass
class NetworkRecord:
    """A network row with what the network API shows beside it."""

    row: Network
    subnets: list[str] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        # an external network without a project (a configured pool) is not shared
        return bool(self.row.shared or (self.row.project_id is None and not self.row.external))

    def target(self) -> dict[str, Any]:
        """What policy checks read: the owner ("" for none) and the flags."""
        return {"project_id": self.row.project_id or "", "shared": self.shared,
                "router:external": bool(self.row.external)}


class NetworkService:
    """Create, show, list, update and delete networks for a RequestContext."""

    def __init__(self, nova: NetworkAPI) -> None:
        self.nova = nova  # modes, options and the host refresh of the network domain
        self.db = nova.db

    # --- reads --------------------------------------------------------------------

    async def list_network(self, ctx: RequestContext) -> list[NetworkRecord]:
        """Every network the caller may see (get_network), oldest first."""
        rows = await db.visible_networks(self.db, None if ctx.is_admin else
                                         ctx.project_id or "")
        records = [NetworkRecord(row) for row in rows]
        records = [r for r in records if self._visible(ctx, r)]
        await self._fill_subnets(records)
        return records

    async def get_network(self, ctx: RequestContext, network_id: str) -> NetworkRecord:
        """NetworkNotFound (404) when it does not exist or the caller may not see it."""
        try:
            row = await db_network.get_network(self.db, network_id)
        except db_network.NetworkNotFound:
            raise NetworkNotFound(network_id=network_id) from None
        record = NetworkRecord(row)
        if not self._visible(ctx, record):
            raise NetworkNotFound(network_id=network_id)
        await self._fill_subnets([record])
        return record

    @staticmethod
    def _visible(ctx: RequestContext, record: NetworkRecord) -> bool:
        target = record.target()
        return policy.authorize(ctx, "get_network", target["project_id"], target)

    async def _fill_subnets(self, records: list[NetworkRecord]) -> None:
        found = await db.subnet_ids(self.db, [r.row.id for r in records])
        for record in records:
            record.subnets = found.get(record.row.id, [])

    # --- writes -------------------------------------------------------------------

    async def create_network(self, ctx: RequestContext, attrs: Mapping[str, Any]) -> NetworkRecord:
        """A network of the caller's project (an admin may name another), with no
        subnet. In vlan mode it gets the next free VLAN (an admin may pick it with
        provider:segmentation_id) and the bridge nvbr<vlan>; in the flat modes a
        bridge of its own (nvnet<id>) with no uplink, so that what its subnet puts
        on the bridge reaches no other network (the default one among them)."""
        (record,) = await self.create_networks(ctx, [attrs])
        return record

    async def create_networks(self, ctx: RequestContext, items: Sequence[Mapping[str, Any]]
                              ) -> list[NetworkRecord]:
        """Several networks (Neutron's bulk create): all or none, in one transaction,
        VLANs picked once; each project's `[quota] networks` holds (OverQuota, 409).
        An auto-picked VLAN a concurrent creator took first is picked again."""
        prepared = [self._prepare(ctx, attrs) for attrs in items]
        if len(items) > 1 and any(attrs.get("is_default") for attrs in items):
            raise InvalidInput(reason="is_default can't be set in a bulk create")
        quotas = await self._quotas(prepared)
        for attempt in range(_VLAN_ATTEMPTS):
            try:
                rows = await db.create_bare_networks(
                    self.db, lambda existing: self._plan(existing, prepared), quotas)
                break
            except db_network.DuplicateVlan as exc:
                asked = any(p["vlan"] is not None for p in prepared)
                if asked or attempt + 1 == _VLAN_ATTEMPTS:
                    raise VlanIdInUse(vlan=exc.kwargs.get("vlan"),
                                      physnet=PHYSICAL_NETWORK) from None
        if items and items[0].get("is_default"):  # one item (above); the index decides
            try:
                await db_auto.set_default(self.db, rows[0].uuid, True)
            except db_auto.DefaultExternalNetworkExists:
                await db.delete_unused_network(self.db, rows[0].uuid)
                raise
            rows[0].is_default = True
        for row in rows:
            LOG.info("Network %s (%s) created for project %s on bridge %s", row.uuid,
                     row.label, row.project_id, row.bridge)
        return [NetworkRecord(row) for row in rows]

    def _prepare(self, ctx: RequestContext, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """One network's checked values (policy included); "vlan" is the asked one."""
        owner = self._owner(ctx, attrs)
        target = {"project_id": owner, "shared": bool(attrs.get("shared")),
                  "router:external": bool(attrs.get("router:external"))}
        policy.enforce(ctx, "create_network", owner, target)
        defaults = {"shared": False, "router:external": False, "port_security_enabled": True,
                    "is_default": False}
        for name in _GUARDED:
            if name in attrs and attrs[name] != defaults.get(name):
                policy.enforce(ctx, f"create_network:{name}", owner, target)
        _check_is_default(attrs, bool(attrs.get("router:external")))
        return dict(
            vlan=self._provider_vlan(attrs), mtu=self._mtu(attrs.get("mtu")),
            label=attrs.get("name", ""), description=attrs.get("description", ""),
            shared=bool(attrs.get("shared", False)),
            external=bool(attrs.get("router:external", False)),
            admin_state_up=bool(attrs.get("admin_state_up", True)),
            port_security_enabled=bool(attrs.get("port_security_enabled", True)),
            project_id=owner, multi_host=bool(self.nova.conf.get("network", "multi_host")),
            # reaches the outside through a router only (docs/network-api.md, Routers)
            needs_router=not attrs.get("router:external", False))

    async def _quotas(self, prepared: list[dict[str, Any]]) -> dict[str, int]:
        """The networks limit of each project the request makes networks for (its
        own, set through the network API's quotas, else `[quota] networks`)."""
        projects = dict.fromkeys(p["project_id"] for p in prepared)
        return {project: (await self.nova.quotas.limits(project))["networks"]
                for project in projects}

    def _plan(self, existing: list[Network], prepared: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
        """Column values: asked VLANs as asked, the others the first free ones; an
        external network carries no guests, so it has no bridge and no VLAN."""
        used = {n.vlan for n in existing if n.vlan is not None}
        used.update(p["vlan"] for p in prepared if p["vlan"] is not None)
        free = (v for v in range(int(self.nova.conf.get("network", "vlan_start")),
                                 MAX_VLAN + 1) if v not in used)
        planned = []
        for p in prepared:
            if p["external"]:
                planned.append({**p, "vlan": None, "bridge": "", "bridge_interface": None})
                continue
            if self.nova.mode != "vlan":
                planned.append({**p, "vlan": None, "bridge_interface": None})
                continue
            vlan = p["vlan"] if p["vlan"] is not None else next(free, None)
            if vlan is None:
                raise NoMoreVlans(start=self.nova.conf.get("network", "vlan_start"))
            planned.append({**p, "vlan": vlan, "bridge": f"nvbr{vlan}",
                            "bridge_interface": self.nova.conf.get(
                                "network", "vlan_interface") or None})
        return planned

    async def update_network(self, ctx: RequestContext, network_id: str, attrs: Mapping[str, Any]
                     ) -> NetworkRecord:
        """Change name, description, admin_state_up, shared, router:external,
        port_security_enabled or mtu. Unsharing a network other projects' servers
        use is InvalidSharedSetting (409); provider attributes can't change (400)."""
        record = await self.get_network(ctx, network_id)
        row, target = record.row, record.target()
        policy.enforce(ctx, "update_network", target["project_id"], target)
        current = {"shared": record.shared, "router:external": bool(row.external),
                   "port_security_enabled": bool(row.port_security_enabled),
                   "is_default": bool(row.is_default)}
        for name in _GUARDED:
            if name in attrs and attrs[name] != current.get(name):
                policy.enforce(ctx, f"update_network:{name}", target["project_id"], target)
        if any(name in attrs for name in PROVIDER):
            raise InvalidInput(reason="the provider attributes of a network can't be "
                               "changed; create another network instead")
        values = self._changes(attrs)
        external = bool(values.get("external", row.external))
        _check_is_default(attrs, external)
        if "external" in values and values["external"] != bool(row.external) \
                and record.subnets:
            raise InvalidInput(reason="router:external can't change while the network has a "
                               "subnet: its addresses are either servers' or floating IPs; "
                               "delete the subnet first")
        if values.get("shared") is False and record.shared and (
                row.project_id is None  # nova-network's unassigned networks serve everyone
                or await db.foreign_nics(self.db, network_id, row.project_id)):
            raise InvalidSharedSetting(network_id=network_id)
        if "is_default" in attrs or (row.is_default and not external):
            flag = bool(attrs.get("is_default", row.is_default)) and external
            await db_auto.set_default(self.db, network_id, flag)
            row.is_default = flag or None
        if values:
            record.row = await db.update_network(self.db, network_id, values)
        if "mtu" in values and row.cidr is not None:
            await self.nova.refresh_every_host()
        await self._fill_subnets([record])
        return record

    def _changes(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        columns = {"name": "label", "description": "description",
                   "admin_state_up": "admin_state_up", "shared": "shared",
                   "router:external": "external",
                   "port_security_enabled": "port_security_enabled"}
        values = {column: attrs[name] for name, column in columns.items() if name in attrs}
        if "mtu" in attrs:
            values["mtu"] = self._mtu(attrs["mtu"])
        return values

    async def delete_network(self, ctx: RequestContext, network_id: str) -> None:
        """Remove the network with its subnets and addresses; NetworkInUse (409)
        while a server NIC is on it. The hosts that served it take it down."""
        record = await self.get_network(ctx, network_id)
        target = record.target()
        policy.enforce(ctx, "delete_network", target["project_id"], target)
        try:
            await db.delete_unused_network(self.db, network_id)
        except db_network.NetworkInUse:
            raise NetworkInUse(network_id=network_id) from None
        except db_network.NetworkNotFound:
            raise NetworkNotFound(network_id=network_id) from None
        LOG.info("Network %s (%s) deleted", network_id, record.row.label)
        if record.row.cidr is not None:
            await self.nova.refresh_every_host()

    # --- helpers ------------------------------------------------------------------

    @staticmethod
    def _owner(ctx: RequestContext, attrs: Mapping[str, Any]) -> str:
        given = {attrs[k] for k in ("project_id", "tenant_id") if attrs.get(k)}
        if len(given) > 1:
            raise InvalidInput(reason="project_id and tenant_id differ")
        owner = given.pop() if given else ctx.project_id or ""
        if owner != ctx.project_id and not ctx.is_admin:
            raise ProjectMismatch()
        if not owner:
            raise InvalidInput(reason="a network needs a project: use a project-scoped token "
                               "or give project_id")
        return check_project_id(str(owner))

    def _provider_vlan(self, attrs: Mapping[str, Any]) -> int | None:
        """The VLAN the admin asked for; None to pick one (vlan mode) or for flat.
        Only the mode's own network type is served: flat in the flat modes, vlan
        in vlan mode."""
        vlan_mode = self.nova.mode == "vlan"
        served = "vlan" if vlan_mode else "flat"
        kind = attrs.get("provider:network_type")
        if kind is not None and kind != served:
            raise InvalidInput(reason=f"provider:network_type {kind} is not served; this "
                               f"cloud's networks are {served} ([network] network_manager)")
        physnet = attrs.get("provider:physical_network")
        if physnet is not None and physnet != PHYSICAL_NETWORK:
            raise InvalidInput(reason=f"physical network {physnet} is unknown; the one "
                               f"physical network is {PHYSICAL_NETWORK}")
        segment = attrs.get("provider:segmentation_id")
        if segment is None:
            return None
        if not vlan_mode:
            raise InvalidInput(reason="provider:segmentation_id is for vlan networks only")
        if not 1 <= int(segment) <= MAX_VLAN:
            raise InvalidInput(reason=f"segmentation_id {segment} is out of range 1-{MAX_VLAN}")
        return int(segment)

    def _mtu(self, value: Any) -> int | None:
        if value is None:
            return None
        most = int(self.nova.conf.get("network", "network_device_mtu") or DEFAULT_MTU)
        if not MIN_MTU <= int(value) <= most:
            raise InvalidInput(reason=f"mtu {value} must be from {MIN_MTU} to {most} (the "
                               "MTU of the physical network)")
        return int(value)


def _check_is_default(attrs: Mapping[str, Any], external: bool) -> None:
    """is_default (auto-allocated-topology) marks an external network only."""
    if attrs.get("is_default") and not external:
        raise InvalidInput(reason="is_default applies to router:external networks only")
