"""Server action createBackup: a snapshot image marked as a backup of a type, the
oldest backups of that type beyond `rotation` deleted once it is uploaded."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import METADATA, NAME, validate
from novalet.compute.server_ops import Backup
from novalet.policy import enforce

IMAGE_ID_IN_BODY = "2.45"  # as createImage: the id in the body, no Location header

CREATE_BACKUP: dict[str, Any] = {
    "type": "object", "properties": {
        "name": NAME, "backup_type": {"type": "string"},
        "rotation": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
        "metadata": METADATA},
    "required": ["name", "backup_type", "rotation"], "additionalProperties": False}


async def create_backup(req: ApiRequest, value: Any) -> Reply:
    validate(value, CREATE_BACKUP)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-create-backup", instance.project_id)
    rotation = int(value["rotation"])
    image_id = await req.app.compute.backup(
        req.ctx, instance.uuid, value["name"], Backup(value["backup_type"], rotation),
        value.get("metadata", {}))
    if req.at_least(IMAGE_ID_IN_BODY):
        return Reply({"image_id": image_id}, 202)
    if rotation == 0:  # Nova gives no Location for a backup rotated away at once
        return Reply(None, 202)
    location = f"{req.app.conf.public_url}/image/v2/images/{image_id}"
    return Reply(None, 202, {"Location": location})


ACTIONS = {"createBackup": CREATE_BACKUP}
HANDLERS = {"createBackup": create_backup}
