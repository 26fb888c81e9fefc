"""The metadata service's lookup against this cloud's database: fixed IP -> instance."""

from __future__ import annotations

import base64
import binascii
import logging

from novalet import exceptions
from novalet.db import instances
from novalet.db import network as network_records
from novalet.db import security_groups as db_groups
from novalet.db.engine import Database
from novalet.metadata.content import InstanceMetadata
from novalet.network.api import NetworkAPI

LOG = logging.getLogger(__name__)


class CloudLookup:
    """Finds instances by the fixed IP they hold now; no cache, so an address handed
    to a new instance never serves the old one's data."""

    def __init__(self, db: Database, network: NetworkAPI) -> None:
        self.db = db
        self.network = network

    async def by_address(self, address: str) -> InstanceMetadata | None:
        try:
            row = await network_records.fixed_ip_by_address(self.db, address)
        except exceptions.NotFound:
            return None
        uuid = row.fixed.instance_uuid
        if not row.fixed.allocated or uuid is None:
            return None
        try:
            instance = await instances.get(self.db, uuid)
        except exceptions.NotFound:
            return None
        vifs = await self.network.vifs_for_instance(uuid)
        keys = {instance.key_name: instance.key_data} if instance.key_name and \
            instance.key_data else {}
        image = instance.system_metadata.get("image") or {}
        groups = (await db_groups.instance_group_names(self.db, [uuid])).get(uuid, [])
        return InstanceMetadata(
            uuid=uuid, name=instance.display_name, hostname=instance.hostname,
            project_id=instance.project_id,
            availability_zone=instance.availability_zone or "nova",
            launch_index=instance.launch_index, reservation_id=instance.reservation_id,
            public_keys=keys, user_data=_decode(instance.user_data),
            meta={m.key: m.value for m in instance.metadata_items}, vifs=vifs,
            image_id=str(image.get("id") or instance.image_ref),
            instance_type=instance.flavor.get("name", ""), local_ipv4=address,
            launched_at=instance.launched_at, ec2_id=instance.id,
            password=instance.system_metadata.get("password"),
            security_groups=groups)  # EC2 meta-data/security-groups, as Nova lists them

    async def set_password(self, instance_uuid: str, password: str) -> bool:
        return await instances.set_password_once(self.db, instance_uuid, password)


def _decode(user_data: str | None) -> bytes | None:
    if not user_data:
        return None
    try:
        return base64.b64decode(user_data)
    except (binascii.Error, ValueError):
        LOG.warning("Stored user_data is not base64; serving none")
        return None
