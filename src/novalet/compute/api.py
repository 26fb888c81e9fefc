"""The compute domain service: every rule about servers lives here, for every front-end.

It checks states and locks, writes the records, records the instance action,
then hands work to the conductor or the instance's compute host.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import logging
import re
import secrets
import string
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from novalet import config, exceptions, policy
from novalet.common.bounded_regex import Pattern, compile_pattern, required_literal
from novalet.common.context import RequestContext
from novalet.common.timeutils import isotime
from novalet.compute import capabilities
from novalet.compute.diagnostics import Diagnostics, InstanceNotReady
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.flavors import FlavorService
from novalet.compute.keypairs import KeypairService
from novalet.compute.move_api import MoveAPI, move_memory
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.move_payloads import RESIZE, MoveRequest
from novalet.compute.quotas import QuotaEngine
from novalet.db.quotas import Admission
from novalet.compute.payloads import RequestSpec
from novalet.compute.put_back import IDLE, put_back
from novalet.compute.server_ops import Backup, ServerOps
from novalet.compute.server_groups import (ServerGroup, ServerGroupService, check_hints,
                                           scheduling_view)
from novalet.compute.states import ALLOWED, PowerState, TaskState, VmState
from novalet.conductor.manager import payload_of
from novalet.conductor.rpcapi import ConductorAPI
from novalet.db import instance_actions, instances, placement, services
from novalet.db.engine import Database
from novalet.db.models import Instance, InstanceMetadata, InstanceTag
from novalet.image.api import ImageService
from novalet.network.api import InterfaceNotFound, NetworkAPI
from novalet.network.auto_topology import AutoTopologyService
from novalet.network.model import Vif
from novalet.rpc.bus import Bus, BusUnavailable

LOG = logging.getLogger(__name__)
MAX_TAGS = 50
MAX_USER_DATA = 65535
MAX_COUNT_BUILT = 1000  # servers one create request can make, whatever the quota


class InstanceInvalidState(exceptions.Conflict):
    msg_fmt = "Cannot '%(action)s' instance %(uuid)s while it is in %(attr)s %(state)s"


class InstanceIsLocked(exceptions.Conflict):
    msg_fmt = "Instance %(uuid)s is locked"


class InvalidRequest(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class AvailabilityZoneNotFound(exceptions.Invalid):
    msg_fmt = "The requested availability zone is not available"


@dataclass
class CreateRequest:
    """A validated server create request."""

    name: str
    flavor_ref: str
    image_ref: str
    min_count: int = 1
    max_count: int = 1
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    user_data: str | None = None
    availability_zone: str | None = None
    description: str | None = None
    hostname: str | None = None
    tags: list[str] = field(default_factory=list)
    # "auto", "none", or [{"uuid": ..., "fixed_ip": ...} or {"port": ...}]
    networks: Any = "auto"
    # networks "auto" asked for (2.37): Nova's get-me-a-network rules
    # (network/auto_topology.py); an omitted networks (before 2.37) keeps the default
    get_me_a_network: bool = False
    security_groups: list[str] = field(default_factory=list)
    config_drive: bool = False
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    return_reservation_id: bool = False
    host: str | None = None
    hypervisor_hostname: str | None = None
    personality: list[dict[str, Any]] = field(default_factory=list)


def sanitize_hostname(name: str, default: str = "server") -> str:
    """A DNS label from a display name, as Nova makes it."""
    host = re.sub(r"[ _.]", "-", name.lower())
    host = re.sub(r"[^a-z0-9-]", "", host).strip("-")[:63].rstrip("-")
    return host or default


class ComputeAPI(ServerOps):
    def __init__(self, db: Database, bus: Bus, conf: config.Config, *,
                 images: ImageService, flavors: FlavorService,
                 keypairs: KeypairService, network: NetworkAPI,
                 quotas: QuotaEngine | None = None) -> None:
        self.network = network
        self.auto_topology = AutoTopologyService(network)
        self.quotas = quotas or QuotaEngine(db, conf)
        self.db = db
        self.conf = conf
        self.images = images
        self.flavors = flavors
        self.keypairs = keypairs
        self.server_groups = ServerGroupService(db, self.quotas)
        self.conductor = ConductorAPI(bus, conf)
        self.compute = compute_rpcapi.ComputeAPI(bus, conf)
        self.moves = MoveAPI(self)  # migrate, live migration (compute/move_api.py)

    # --- create -----------------------------------------------------------

    async def create(self, ctx: RequestContext, req: CreateRequest
                     ) -> tuple[list[Instance], str]:
        try:
            flavor = await self.flavors.get_for_boot(ctx, req.flavor_ref)
            image = await self._image_for_boot(ctx, req.image_ref, flavor)
        except exceptions.NotFound as exc:  # a bad reference in the body is a 400
            raise InvalidRequest(reason=exc.message) from None
        key_data = None
        if req.key_name:
            try:
                key_data = (await self.keypairs.get(ctx, req.key_name)).public_key
            except exceptions.NotFound:
                raise InvalidRequest(reason="Invalid key_name provided.") from None
        zone, force_host, force_node = await self._parse_zone(ctx, req)
        if req.get_me_a_network:
            network_uuid = await self.auto_topology.network_for_boot(ctx)
            if network_uuid is not None:  # None: the default allocation (vlan mode)
                req = dataclasses.replace(req, networks=[{"uuid": network_uuid}])
        if isinstance(req.networks, list):
            await self.network.check_requested_networks(
                ctx.project_id or "", [(n["uuid"], n.get("fixed_ip")) for n in req.networks
                                       if n.get("uuid")])
            await self.network.check_requested_ports(
                ctx.project_id or "", [n["port"] for n in req.networks if n.get("port")],
                req.max_count)
        if req.security_groups:
            await self.network.check_security_groups(ctx.project_id or "", ctx.user_id,
                                                     req.security_groups)
        _check_user_data(req.user_data)
        group = await self._group_for_hints(ctx, req)
        await self.quotas.check_metadata(ctx.project_id or "", len(req.metadata))
        await self.quotas.check_personality(ctx.project_id or "", req.personality)
        reservation_id = "r-" + "".join(secrets.choice(string.ascii_lowercase +
                                                       string.digits) for _ in range(8))
        flavor_doc = flavor_document(flavor)
        # Made once and kept on every instance row (instance_uuids filled once they are
        # known): a build whose cast is lost is re-driven from it (conductor/recovery).
        spec = RequestSpec(instance_uuids=[], project_id=ctx.project_id or "",
                           user_id=ctx.user_id or "", vcpus=flavor.vcpus,
                           memory_mb=flavor.memory_mb,
                           disk_gb=flavor.root_gb + flavor.ephemeral_gb + (flavor.swap + 1023)
                           // 1024, availability_zone=zone, force_host=force_host,
                           force_node=force_node, scheduler_hints=req.scheduler_hints,
                           extra_specs={e.key: e.value for e in flavor.extra_specs},
                           group=scheduling_view(group) if group else None)
        # The records are built before the quota says how many fit: never more than
        # MAX_COUNT_BUILT (a max_count of 10**20 must not hang the API).
        count = min(req.max_count, MAX_COUNT_BUILT)
        spec_doc = spec.to_dict()
        records = [self._new_instance(ctx, req, i, count, flavor_doc, image, key_data,
                                      reservation_id, spec_doc) for i in range(count)]
        # The quota check shares the insert's transaction (race-free); with max_count
        # over the quota but min_count within, as many as fit are created.
        records = await instances.create(self.db, records, admit=self.quotas.admit_instances(
            req.min_count, count, flavor.vcpus, flavor.memory_mb),
            group_uuid=group.uuid if group else None,
            group_admit=await self.server_groups.members_admit(ctx) if group else None)
        uuids = [r.uuid for r in records]
        if req.security_groups or not _ports_only(req.networks):
            # a boot on ports alone takes the groups its ports carry (at binding)
            await self.network.associate_security_groups(
                uuids, ctx.project_id or "", ctx.user_id, req.security_groups or None)
        await instance_actions.start(self.db, ctx, uuids, "create")
        spec.instance_uuids = uuids
        try:
            await self.conductor.build_instances(ctx, spec)
        except BusUnavailable as exc:  # the servers exist: they fail where users see it
            for uuid in uuids:
                await instance_actions.add_fault(self.db, uuid, exc.code, str(exc), "", None)
                await instances.set_fields(self.db, uuid, {"vm_state": VmState.ERROR,
                                                           "task_state": None})
        return records, reservation_id

    async def _group_for_hints(self, ctx: RequestContext, req: CreateRequest
                               ) -> ServerGroup | None:
        """The server group the `group` hint names (the new servers join it), or None;
        every hint this cloud acts on is checked first (a bad one is a 400)."""
        check_hints(req.scheduler_hints)
        uuid = req.scheduler_hints.get("group")
        if not uuid:
            return None
        return await self.server_groups.group_for_boot(ctx, uuid)

    def _new_instance(self, ctx: RequestContext, req: CreateRequest, index: int, count: int,
                      flavor_doc: dict[str, Any], image: dict[str, Any] | None,
                      key_data: str | None, reservation_id: str,
                      spec_doc: dict[str, Any]) -> Instance:
        uuid = str(uuidlib.uuid4())
        hostname = req.hostname or sanitize_hostname(req.name, f"server-{uuid}")
        if count > 1:
            hostname = f"{hostname}-{index + 1}"
        return Instance(
            uuid=uuid, display_name=req.name, display_description=req.description,
            hostname=hostname, project_id=ctx.project_id, user_id=ctx.user_id,
            image_ref=image["id"] if image else "", flavor=flavor_doc,
            vm_state=VmState.BUILDING, task_state=TaskState.SCHEDULING,
            power_state=PowerState.NOSTATE, requested_availability_zone=req.availability_zone,
            availability_zone=None, key_name=req.key_name, key_data=key_data,
            user_data=req.user_data, config_drive=req.config_drive,
            reservation_id=reservation_id, launch_index=index,
            access_ip_v4=req.access_ip_v4, access_ip_v6=req.access_ip_v6,
            scheduler_hints=req.scheduler_hints, request_spec=spec_doc,
            system_metadata={"image_properties": _image_properties(image), "image": image,
                             "requested_networks": req.networks},
            metadata_items=[InstanceMetadata(key=k, value=v) for k, v in req.metadata.items()],
            tags=[InstanceTag(tag=t) for t in dict.fromkeys(req.tags)])

    async def _image_for_boot(self, ctx: RequestContext, image_ref: str,
                              flavor: Any) -> dict[str, Any] | None:
        image = await self.images.get(ctx, image_ref)
        if image["status"] != "active":
            raise InvalidRequest(reason=f"Image {image_ref} is not active.")
        if (image.get("min_ram") or 0) > flavor.memory_mb:
            raise InvalidRequest(reason="Flavor's memory is too small for requested image.")
        if flavor.root_gb and (image.get("min_disk") or 0) > flavor.root_gb:
            raise InvalidRequest(reason="Flavor's disk is too small for requested image.")
        size_gb = ((image.get("size") or 0) + 2**30 - 1) // 2**30
        if flavor.root_gb and size_gb > flavor.root_gb:
            raise InvalidRequest(reason="Flavor's disk is too small for requested image. "
                                 f"Flavor disk is {flavor.root_gb}G, image is {size_gb}G.")
        return image

    async def _parse_zone(self, ctx: RequestContext, req: CreateRequest
                          ) -> tuple[str | None, str | None, str | None]:
        zone, host, node = req.availability_zone, req.host, req.hypervisor_hostname
        if zone and ":" in zone:
            zone, _, rest = zone.partition(":")
            host_part, _, node_part = rest.partition(":")
            host, node = host_part or host, node_part or node
        if (host or node) and not ctx.is_admin:
            raise exceptions.Forbidden(action="os_compute_api:servers:create:forced_host")
        if zone:
            zones = {p.availability_zone for p in await placement.summaries(self.db)}
            if zone not in zones:
                raise AvailabilityZoneNotFound()
        return zone or None, host, node

    # --- reading ----------------------------------------------------------

    async def get(self, ctx: RequestContext, uuid: str) -> Instance:
        """The instance if ctx may see it; otherwise 404 (never a hint it exists)."""
        project = None if ctx.is_admin else ctx.project_id
        return await instances.get(self.db, uuid, project_id=project)

    async def list_servers(self, ctx: RequestContext, query: instances.ListQuery, *,
                           all_tenants: bool = False, detail: bool = False
                           ) -> list[Instance]:
        """One page of the servers ctx may see, whatever front-end asks.

        Without all_tenants the list is ctx's project's (query.project_id is
        overwritten, as Nova ignores project_id/tenant_id then); all_tenants needs
        os_compute_api:servers:{index,detail}:get_all_tenants (403 otherwise, as
        Nova), and then query.project_id may name one project. The marker must be
        a server of the listed scope (400 "marker not found" otherwise). Without
        os_compute_api:servers:allow_all_filters, the hypervisor filters (host,
        node) are dropped. query.patterns are regular expressions matched with RE2
        (linear time, see common/bounded_regex): name, hostname and the other text
        columns by search, "ip"/"ip6" against the fixed addresses by match. The
        database first narrows text columns by each pattern's required plain text
        (query.contains, LIKE), RE2 runs in a worker thread, and a request that
        reads more than [api] max_filter_scan rows without filling its page is a
        400 (instances.FilterScanTooLong) asking for a narrower filter."""
        q = dataclasses.replace(query, patterns=dict(query.patterns))
        if all_tenants:
            policy.enforce(ctx, "os_compute_api:servers:"
                           f"{'detail' if detail else 'index'}:get_all_tenants")
        elif ctx.project_id is not None:
            q.project_id = ctx.project_id
        else:  # a token without a project (system scope) lists its user's servers
            q.project_id, q.user_id = None, ctx.user_id
        if not policy.authorize(ctx, "os_compute_api:servers:allow_all_filters"):
            q.host = None
            q.patterns.pop("node", None)
        keep = None
        if q.patterns:
            keep = self._pattern_filter(ctx, q.patterns)
            q.contains = {column: literal for column, raw in q.patterns.items()
                          if column not in ("ip", "ip6")
                          and (literal := required_literal(raw)) is not None}
        return await instances.list_instances(
            self.db, q, keep, max_scanned=self.conf.get("api", "max_filter_scan"))

    def _pattern_filter(self, ctx: RequestContext, patterns: dict[str, str]
                        ) -> instances.Keep:
        """The rows of a batch that every pattern matches."""
        compiled = {key: compile_pattern(raw, instances.PATTERN_PARAMS.get(key, key))
                    for key, raw in patterns.items()}
        columns = {k: p for k, p in compiled.items() if k not in ("ip", "ip6")}
        ips = {k: p for k, p in compiled.items() if k in ("ip", "ip6")}

        def matching(rows: list[Any]) -> list[Any]:
            return [r for r in rows if all(p.search(_text(getattr(r, column)))
                                           for column, p in columns.items())]

        async def keep(rows: list[Any]) -> list[Any]:
            if columns and rows:  # in a worker thread: the event loop stays free
                rows = await asyncio.to_thread(matching, rows)
            if ips and rows:
                rows = await self._match_addresses(ctx, rows, ips)
            return rows

        return keep

    async def _match_addresses(self, ctx: RequestContext, rows: list[Any],
                               ips: dict[str, Pattern]) -> list[Any]:
        """Rows with a fixed address of each asked family that its pattern matches
        from the start (Nova's ip and ip6 filters)."""
        nets = await self.network.server_networking(ctx, [r.uuid for r in rows])
        kept = []
        for row in rows:
            fixed = [a.address for a in (nets[row.uuid].addresses if row.uuid in nets
                                         else []) if a.kind == "fixed"]
            by_family = {"ip": [a for a in fixed if ":" not in a],
                         "ip6": [a for a in fixed if ":" in a]}
            if all(any(p.match(a) for a in by_family[key]) for key, p in ips.items()):
                kept.append(row)
        return kept

    async def faults(self, rows: list[Instance]) -> dict[str, Any]:
        wanted = [r.uuid for r in rows if r.vm_state in (VmState.ERROR, VmState.DELETED)]
        return await instance_actions.latest_faults(self.db, wanted)

    # --- update and delete -----------------------------------------------

    async def update(self, ctx: RequestContext, uuid: str, values: dict[str, Any]
                     ) -> Instance:
        instance = await self.get(ctx, uuid)
        return await instances.update(self.db, instance.uuid, values)

    async def delete(self, ctx: RequestContext, uuid: str, force: bool = False) -> None:
        """Delete now, or (reclaim_instance_interval, unless `force`) soft-delete."""
        instance = await self.get(ctx, uuid)
        self._check_lock(ctx, instance)
        if not force and await self.soft_delete(ctx, instance):
            return
        await instance_actions.start(self.db, ctx, [uuid], "delete")
        await self.moves.confirm_on_delete(ctx, instance)  # VERIFY_RESIZE: source cleans up
        await self._delete_shelved_image(instance)
        if instance.host is None or not await self._host_up(instance.host):
            LOG.info("Deleting %s locally (no compute host is running it)", uuid)
            await instances.destroy(self.db, uuid)
            await self._discard_snapshots(uuid)
            # its NICs too (a shelved-offloaded server keeps them), as Nova's local delete
            await self.network.deallocate_for_instance(uuid)
            return
        instance = await instances.update(self.db, uuid, {"task_state": TaskState.DELETING})
        await self._discard_snapshots(uuid)
        await self.compute.terminate_instance(ctx, instance.host or "", payload_of(instance))

    async def _delete_shelved_image(self, instance: Instance) -> None:
        """A shelved server's snapshot goes with the server, as in Nova."""
        image_id = instance.system_metadata.get("shelved_image_id")
        if not image_id or instance.vm_state not in (VmState.SHELVED,
                                                     VmState.SHELVED_OFFLOADED):
            return
        try:
            await self.images.delete(RequestContext.admin(), str(image_id))
        except exceptions.NovaletError as exc:
            LOG.warning("Could not delete shelved image %s of %s: %s", image_id,
                        instance.uuid, exc)

    async def _discard_snapshots(self, uuid: str) -> None:
        """A deleted server's snapshots still waiting for data never get it: delete them
        (after DELETING is set, so a createImage checking after us cleans up itself)."""
        for image_id in await self.images.unfinished_snapshots(uuid):
            if await self.images.discard_unfinished(image_id):
                LOG.info("Deleted snapshot %s of %s: the server is being deleted",
                         image_id, uuid)

    async def _host_up(self, host: str) -> bool:
        return await services.compute_is_up(self.db, host,
                                            self.conf.get("DEFAULT", "service_down_time"))

    # --- actions ----------------------------------------------------------

    async def _begin(self, ctx: RequestContext, uuid: str, action: str, public: str,
                     values: dict[str, Any] | None = None,
                     admit: Admission[None] | None = None,
                     check_lock: bool = True) -> Instance:
        """Check lock (unless not `check_lock`) and states for `action`, set its
        task_state (compare-and-swap, with any other `values`; `admit`: a quota check
        in that same transaction) and record the instance action `public`."""
        instance = await self.get(ctx, uuid)
        if check_lock:
            self._check_lock(ctx, instance)
        vm_states, task_states, task_state = ALLOWED[action]
        if instance.vm_state not in vm_states:
            raise InstanceInvalidState(action=public, uuid=uuid, attr="vm_state",
                                       state=instance.vm_state)
        if instance.task_state not in task_states:
            raise InstanceInvalidState(action=public, uuid=uuid, attr="task_state",
                                       state=instance.task_state)
        if instance.host is None:  # e.g. ERROR because no host was found
            raise InstanceInvalidState(action=public, uuid=uuid, attr="host", state=None)
        await capabilities.check(self.db, instance, action, public)  # 501 if the host can't
        instance = await instances.update(self.db, uuid, {"task_state": task_state,
                                                          **(values or {})},
                                          expected_task_state=[instance.task_state],
                                          admit=admit)
        await instance_actions.start(self.db, ctx, [uuid], public)
        return instance

    async def power_action(self, ctx: RequestContext, uuid: str, action: str) -> None:
        """reboot, reboot_hard, stop, start, pause, unpause, suspend, resume."""
        public = "reboot" if action == "reboot_hard" else action
        instance = await self._begin(ctx, uuid, action, public)
        await self.compute.power_action(ctx, _host(instance), action, payload_of(instance))

    async def snapshot(self, ctx: RequestContext, uuid: str, name: str,
                       metadata: dict[str, str], backup: Backup | None = None) -> str:
        """createImage: a queued image now, its data uploaded by the compute host.

        The state check and task_state compare-and-swap come first, so a refused
        createImage makes no image; after the image is made the task_state is
        checked again, and delete() discards a snapshot's unfinished images once it
        has set DELETING: whichever of the two runs second cleans up, so a
        createImage racing a delete leaves no image queued forever."""
        await self.quotas.check_image_metadata(ctx.project_id or "", len(metadata))
        action, public = ("backup", "createBackup") if backup else ("snapshot", "createImage")
        # A lock guards against changes and deletes; an image changes neither (Nova).
        instance = await self._begin(ctx, uuid, action, public, check_lock=False)
        try:
            image = await self.snapshot_image(ctx, instance, name, metadata, backup)
        except Exception:
            await self._end_snapshot(uuid)
            raise
        try:
            await instances.set_fields(self.db, uuid, {}, expected_task_state=[
                instance.task_state])  # still ours: no delete came meanwhile
        except (exceptions.Conflict, exceptions.NotFound):
            await self.images.discard_unfinished(image["id"])
            raise InstanceInvalidState(action=public, uuid=uuid, attr="task_state",
                                       state=TaskState.DELETING) from None
        try:
            if backup:
                await self.compute.backup_instance(ctx, _host(instance), payload_of(instance),
                                                   image["id"], backup.type, backup.rotation)
            else:
                await self.compute.snapshot_instance(ctx, _host(instance),
                                                     payload_of(instance), image["id"])
        except (BusUnavailable, compute_rpcapi.HostTooOld):
            await self.images.discard_unfinished(image["id"])
            await self._end_snapshot(uuid)
            raise
        return str(image["id"])

    async def snapshot_image(self, ctx: RequestContext, instance: Instance, name: str,
                             metadata: dict[str, str], backup: Backup | None = None
                             ) -> dict[str, Any]:
        """A queued snapshot image of `instance` (createImage's, createBackup's,
        shelve's), with its base image's properties, for the host to upload the disk
        into."""
        base = instance.system_metadata.get("image") or {}
        properties = {k: v for k, v in _image_properties(base).items()
                      if k not in ("disk_format", "container_format", "min_disk", "min_ram")}
        return await self.images.create(ctx, {
            **{k: str(v) for k, v in properties.items() if isinstance(v, (str, int))},
            **metadata, "name": name, "disk_format": base.get("disk_format") or "qcow2",
            "container_format": "bare", "min_disk": instance.flavor["root_gb"],
            **(backup.properties() if backup else {"image_type": "snapshot"}),
            "instance_uuid": instance.uuid,
            "base_image_ref": instance.image_ref,
            "owner_project_name": ctx.project_name or "", "user_id": ctx.user_id or ""})

    async def _end_snapshot(self, uuid: str) -> None:
        """Put back the task_state of a createImage that did not get to the host."""
        await put_back(self.db, uuid, IDLE, [TaskState.IMAGE_SNAPSHOT, TaskState.IMAGE_BACKUP])

    async def rescue(self, ctx: RequestContext, uuid: str, image_ref: str | None) -> None:
        instance = await self.get(ctx, uuid)
        try:
            image = await self.images.get(ctx, image_ref or instance.image_ref)
        except exceptions.NotFound as exc:
            raise InvalidRequest(reason=exc.message) from None
        instance = await self._begin(ctx, uuid, "rescue", "rescue")
        await self.compute.rescue_instance(ctx, _host(instance), payload_of(instance), image)

    async def unrescue(self, ctx: RequestContext, uuid: str) -> None:
        instance = await self._begin(ctx, uuid, "unrescue", "unrescue")
        await self.compute.unrescue_instance(ctx, _host(instance), payload_of(instance))

    async def rebuild(self, ctx: RequestContext, uuid: str, image_ref: str,
                      values: dict[str, Any]) -> Instance:
        """A new root disk from image_ref; name, metadata and the like from `values`."""
        instance = await self.get(ctx, uuid)
        flavor = _FlavorView(instance.flavor)
        try:
            image = await self._image_for_boot(ctx, image_ref, flavor)
        except exceptions.NotFound as exc:
            raise InvalidRequest(reason=exc.message) from None
        assert image is not None
        metadata = values.pop("metadata", None)
        if metadata is not None:
            await self.quotas.check_metadata(instance.project_id or "", len(metadata))
        await self.quotas.check_personality(instance.project_id or "",
                                            values.pop("personality", None) or [])
        if values.get("key_name"):
            try:
                values["key_data"] = (await self.keypairs.get(ctx, values["key_name"])
                                      ).public_key
            except exceptions.NotFound:
                raise InvalidRequest(reason="Invalid key_name provided.") from None
        elif "key_name" in values:
            values["key_data"] = None
        _check_user_data(values.get("user_data"))
        instance = await self._begin(ctx, uuid, "rebuild", "rebuild", {
            **values, "image_ref": image["id"],
            "system_metadata": {**instance.system_metadata, "image": image,
                                "image_properties": _image_properties(image)}})
        if metadata is not None:
            await instances.set_metadata(self.db, uuid, metadata, replace=True)
            instance = await instances.get(self.db, uuid)
        await self.compute.rebuild_instance(ctx, _host(instance), payload_of(instance))
        return instance

    async def resize(self, ctx: RequestContext, uuid: str, flavor_ref: str) -> None:
        instance = await self.get(ctx, uuid)
        await capabilities.check(self.db, instance, "resize", "resize")  # before the claim
        try:
            flavor = await self.flavors.get_for_boot(ctx, flavor_ref)
        except exceptions.NotFound as exc:
            raise InvalidRequest(reason=exc.message) from None
        new = flavor_document(flavor)
        if new["flavorid"] == instance.flavor["flavorid"]:
            raise InvalidRequest(reason="When resizing, instances must change flavor!")
        if new["root_gb"] < instance.flavor["root_gb"]:
            raise InvalidRequest(reason="Resizing to a smaller disk is not supported.")
        deltas = (new["vcpus"] - int(instance.flavor["vcpus"]),
                  new["memory_mb"] - int(instance.flavor["memory_mb"]))
        await self.quotas.check_resize(instance.project_id or "", instance.user_id, *deltas)
        # The conductor's task schedules (any host, honouring allow_resize_to_same_host;
        # a hypervisor without moves keeps it home) and claims on the destination.
        home = None if (await capabilities.of_instance(self.db, instance)).supports(
            "supports_migrate") else instance.host
        # the quota again, race-free: in the transaction that starts the resize
        instance = await self._begin(ctx, uuid, "resize", "resize", move_memory(instance, new),
                                     admit=self.quotas.admit_resize(*deltas))
        await self.moves.start(ctx, instance, MoveRequest(uuid, RESIZE, new_flavor=FlavorPayload.of(new),
                                                          host=home))

    async def confirm_resize(self, ctx: RequestContext, uuid: str) -> None:
        """The source host drops the old guest; the destination's claim is kept."""
        await self.moves.settle(ctx, uuid, confirm=True)

    async def revert_resize(self, ctx: RequestContext, uuid: str) -> None:
        """Back to the source host, old flavor and old power state."""
        await self.moves.settle(ctx, uuid, confirm=False)

    async def lock(self, ctx: RequestContext, uuid: str, reason: str | None) -> None:
        instance = await self.get(ctx, uuid)
        await instance_actions.start(self.db, ctx, [uuid], "lock")
        locked_by = "admin" if ctx.is_admin and ctx.project_id != instance.project_id \
            else "owner"
        await instances.update(self.db, uuid, {"locked": True, "locked_by": locked_by,
                                               "locked_reason": reason})

    async def unlock(self, ctx: RequestContext, uuid: str) -> None:
        instance = await self.get(ctx, uuid)
        if instance.locked_by == "admin" and not ctx.is_admin:
            raise exceptions.Forbidden(
                action="os_compute_api:os-lock-server:unlock:unlock_override")
        await instance_actions.start(self.db, ctx, [uuid], "unlock")
        await instances.update(self.db, uuid, {"locked": False, "locked_by": None,
                                               "locked_reason": None})

    def _check_lock(self, ctx: RequestContext, instance: Instance) -> None:
        if instance.locked and not ctx.is_admin:
            raise InstanceIsLocked(uuid=instance.uuid)

    # --- interfaces ---------------------------------------------------------

    async def attach_interface(self, ctx: RequestContext, uuid: str, network_uuid: str | None,
                               address: str | None, port_id: str | None = None) -> Vif:
        """A new NIC on a network (or a port of the network API), hot-plugged by the
        host (which the API waits for); when the host fails, the NIC is released
        again (a port unbound)."""
        if port_id is not None:  # the server's project's port (an admin acts for it)
            owner = (await self.get(ctx, uuid)).project_id or ""
            await self.network.check_requested_ports(owner, [port_id], 1, attach=True)
        instance = await self._begin(ctx, uuid, "attach_interface", "attach_interface")
        vif = await self.network.add_interface(instance.uuid, instance.project_id,
                                               instance.host, network_uuid, address,
                                               port_id=port_id)
        instance = await self._save_network_info(instance)
        try:
            await self.compute.attach_interface(ctx, _host(instance), payload_of(instance),
                                                vif)
        except exceptions.NovaletError as exc:
            await self.network.remove_interface(instance.uuid, vif.id)
            await self._save_network_info(instance)
            raise InterfaceAttachFailed(uuid=uuid, reason=exc.message) from exc
        return vif

    async def detach_interface(self, ctx: RequestContext, uuid: str, port_id: str) -> None:
        instance = await self.get(ctx, uuid)
        vif = next((v for v in await self.network.vifs_for_instance(uuid) if v.id == port_id),
                   None)
        if vif is None:
            raise InterfaceNotFound(port_id=port_id, uuid=uuid)
        instance = await self._begin(ctx, uuid, "detach_interface", "detach_interface")
        try:
            await self.compute.detach_interface(ctx, _host(instance), payload_of(instance),
                                                vif)
        except exceptions.NovaletError as exc:
            raise InterfaceDetachFailed(uuid=uuid, reason=exc.message) from exc
        await self.network.remove_interface(instance.uuid, vif.id)
        await self._save_network_info(instance)

    async def _save_network_info(self, instance: Instance) -> Instance:
        """The instance's network_info, as the database now has its NICs."""
        vifs = [v.to_dict() for v in await self.network.vifs_for_instance(instance.uuid)]
        return await instances.update(self.db, instance.uuid, {"system_metadata": {
            **instance.system_metadata, "network_info": vifs}})

    async def console_output(self, ctx: RequestContext, uuid: str) -> str:
        instance = await self.get(ctx, uuid)
        if instance.host is None or instance.vm_state == VmState.BUILDING:
            raise InstanceInvalidState(action="get_console_output", uuid=uuid,
                                       attr="vm_state", state=instance.vm_state)
        return await self.compute.get_console_output(ctx, instance.host, uuid)

    async def diagnostics(self, ctx: RequestContext, uuid: str) -> Diagnostics:
        """What the instance's host measures of it; 409 without a host or unless the
        guest runs (the host checks that)."""
        instance = await self.get(ctx, uuid)
        if instance.host is None:
            raise InstanceNotReady(uuid=uuid)
        return Diagnostics.from_dict(await self.compute.get_diagnostics(ctx, instance.host,
                                                                        uuid))

    # --- metadata and tags ------------------------------------------------

    async def set_metadata(self, ctx: RequestContext, uuid: str, items: dict[str, str],
                           replace: bool) -> dict[str, str]:
        instance = await self.get(ctx, uuid)
        self._check_lock(ctx, instance)
        self._check_not_deleting(instance, "update metadata")
        # The metadata_items quota, checked in the write's transaction.
        admit = await self.quotas.admit_metadata(instance.project_id or "")
        return await instances.set_metadata(self.db, uuid, items, replace, admit=admit)

    async def delete_metadata(self, ctx: RequestContext, uuid: str, key: str) -> None:
        instance = await self.get(ctx, uuid)
        self._check_lock(ctx, instance)
        if key not in {m.key for m in instance.metadata_items}:
            raise MetadataKeyNotFound(key=key, uuid=uuid)
        await instances.delete_metadata(self.db, uuid, key)

    def _check_not_deleting(self, instance: Instance, what: str) -> None:
        if instance.task_state == TaskState.DELETING:
            raise InstanceInvalidState(action=what, uuid=instance.uuid, attr="task_state",
                                       state=instance.task_state)

    async def set_tags(self, ctx: RequestContext, uuid: str, tags: list[str]) -> list[str]:
        await self.get(ctx, uuid)
        if len(set(tags)) > MAX_TAGS:
            raise instances.TooManyTags(max=MAX_TAGS)
        return await instances.set_tags(self.db, uuid, tags)

    async def add_tag(self, ctx: RequestContext, uuid: str, tag: str) -> bool:
        await self.get(ctx, uuid)
        return await instances.add_tag(self.db, uuid, tag, MAX_TAGS)

    async def delete_tag(self, ctx: RequestContext, uuid: str, tag: str) -> None:
        await self.get(ctx, uuid)
        if not await instances.delete_tag(self.db, uuid, tag):
            raise TagNotFound(tag=tag, uuid=uuid)

    # --- instance actions -------------------------------------------------

    async def actions(self, ctx: RequestContext, uuid: str, **filters: Any) -> list[Any]:
        instance = await instances.get(self.db, uuid, deleted=True,
                                       project_id=None if ctx.is_admin else ctx.project_id)
        return await instance_actions.list_for_instance(self.db, instance.uuid, **filters)

    async def action(self, ctx: RequestContext, uuid: str, request_id: str) -> Any:
        instance = await instances.get(self.db, uuid, deleted=True,
                                       project_id=None if ctx.is_admin else ctx.project_id)
        return await instance_actions.get(self.db, instance.uuid, request_id)


def _text(value: Any) -> str | None:
    """A column's value as a pattern filter sees it (timestamps as the API shows them)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return isotime(value)
    return str(value)


class MetadataKeyNotFound(exceptions.NotFound):
    msg_fmt = "Metadata item %(key)s was not found on instance %(uuid)s"


class TagNotFound(exceptions.NotFound):
    msg_fmt = "Tag %(tag)s could not be found for instance %(uuid)s."


class InterfaceAttachFailed(exceptions.Conflict):
    msg_fmt = "Failed to attach a network interface to instance %(uuid)s: %(reason)s"


class InterfaceDetachFailed(exceptions.Conflict):
    msg_fmt = "Failed to detach the network interface from instance %(uuid)s: %(reason)s"


def _host(instance: Instance) -> str:
    assert instance.host is not None  # _begin refused host-less instances
    return instance.host


@dataclass
class _FlavorView:
    """The flavor attributes image checks need, from an instance's flavor copy."""

    doc: dict[str, Any]

    @property
    def memory_mb(self) -> int:
        return int(self.doc["memory_mb"])

    @property
    def root_gb(self) -> int:
        return int(self.doc["root_gb"])


def flavor_document(flavor: Any) -> dict[str, Any]:
    """The copy of a flavor an instance keeps, so later flavor edits don't change it."""
    return {"flavorid": flavor.flavorid, "name": flavor.name, "memory_mb": flavor.memory_mb,
            "vcpus": flavor.vcpus, "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb, "swap": flavor.swap,
            "rxtx_factor": flavor.rxtx_factor,
            "extra_specs": {e.key: e.value for e in flavor.extra_specs}}


def _check_user_data(user_data: str | None) -> None:
    if user_data is None:
        return
    try:
        decoded = base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(reason="User data needs to be valid base 64.") from None
    if len(decoded) > MAX_USER_DATA:
        raise InvalidRequest(reason=f"User data too large. User data must be no larger "
                             f"than {MAX_USER_DATA} bytes once base64 encoded.")


def _image_properties(image: dict[str, Any] | None) -> dict[str, Any]:
    if not image:
        return {}
    core = {"id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
            "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "created_at",
            "updated_at", "tags", "self", "file", "schema", "direct_url", "locations",
            "stores"}
    return {k: v for k, v in image.items() if k not in core}


def _ports_only(networks: Any) -> bool:
    """Whether a boot asks for ports (network API) and nothing else."""
    return isinstance(networks, list) and bool(networks) and all(
        n.get("port") for n in networks)
