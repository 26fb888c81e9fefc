"""POST /servers/{id}/action: one handler per action key in the body."""

from __future__ import annotations

from typing import Any
from collections.abc import Awaitable, Callable

from novalet.api.compute import floating_ips, remote_consoles, security_groups, server_view, servers
from novalet.api.compute import (admin_actions, admin_password, crash_dump, create_backup,
                                 deferred_delete, multinic)
from novalet.api.compute import server_moves
from novalet.api.compute import evacuate, shelve
from novalet.api.compute.schemas import floating_ips as floating_ip_schemas
from novalet.api.compute.schemas import remote_consoles as remote_console_schemas
from novalet.api.compute.schemas import security_groups as security_group_schemas
from novalet.api.compute.schemas import servers as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import METADATA, NAME, Spec, ValidationError, accepts, validate
from novalet.policy import enforce

_REBOOT: dict[str, Any] = {"type": "object", "properties": {"reboot": {
    "type": "object", "properties": {"type": {"type": "string", "enum": [
        "HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
    "required": ["type"], "additionalProperties": False}}, "required": ["reboot"]}
_NULL_BODY = {"type": ["null", "object"]}
_LOCK_273 = {"type": ["null", "object"], "properties": {
    "locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False}
_CONSOLE = {"type": ["object", "null"], "properties": {
    "length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$", "minimum": -1}},
    "additionalProperties": False}

_CREATE_IMAGE = {"type": "object", "properties": {
    "name": NAME, "metadata": METADATA}, "required": ["name"], "additionalProperties": False}
_RESCUE = {"type": ["null", "object"], "properties": {
    "adminPass": {"type": "string"}, "rescue_image_ref": {"type": "string", "format": "uuid"}},
    "additionalProperties": False}
_RESIZE = {"type": "object", "properties": {
    "flavorRef": {"type": ["string", "integer"], "minLength": 1},
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}},
    "required": ["flavorRef"], "additionalProperties": False}

# What each action key takes (the handlers below validate it).
ACTIONS: dict[str, Spec] = {
    **{key: _NULL_BODY for key in ("os-stop", "os-start", "pause", "unpause", "suspend",
                                   "resume", "unlock", "unrescue", "confirmResize",
                                   "revertResize")},
    "reboot": _REBOOT["properties"]["reboot"],
    "lock": [("2.1", _NULL_BODY), ("2.73", _LOCK_273)],
    "os-getConsoleOutput": _CONSOLE, "createImage": _CREATE_IMAGE, "rescue": _RESCUE,
    "rebuild": [(first, schema["properties"]["rebuild"]) for first, schema in schemas.REBUILD],
    "resize": _RESIZE,
    "addSecurityGroup": security_group_schemas.SERVER_GROUP,
    "removeSecurityGroup": security_group_schemas.SERVER_GROUP,
    "addFloatingIp": floating_ip_schemas.ADD_FLOATING_IP["properties"]["addFloatingIp"],
    "removeFloatingIp":
        floating_ip_schemas.REMOVE_FLOATING_IP["properties"]["removeFloatingIp"],
    **remote_console_schemas.ACTIONS,  # 2.1 to 2.5
    **admin_actions.ACTIONS, **admin_password.ACTIONS, **deferred_delete.ACTIONS,
    **create_backup.ACTIONS, **crash_dump.ACTIONS, **multinic.ACTIONS,
    **server_moves.ACTIONS,  # migrate, os-migrateLive
    **shelve.ACTIONS, **evacuate.ACTIONS,
}

# body key -> (policy, domain action name)
_POWER: dict[str, tuple[str, str]] = {
    "os-stop": ("os_compute_api:servers:stop", "stop"),
    "os-start": ("os_compute_api:servers:start", "start"),
    "pause": ("os_compute_api:os-pause-server:pause", "pause"),
    "unpause": ("os_compute_api:os-pause-server:unpause", "unpause"),
    "suspend": ("os_compute_api:os-suspend-server:suspend", "suspend"),
    "resume": ("os_compute_api:os-suspend-server:resume", "resume"),
}


@accepts(actions=ACTIONS)
async def dispatch(req: ApiRequest) -> Any:
    body = await req.json_object()
    for key, value in body.items():
        if key in _POWER:
            return await _power(req, key, value)
        handler = _HANDLERS.get(key)
        if handler is not None:
            return await handler(req, value)
    raise ValidationError(reason=f"There is no such action: {', '.join(body) or '(none)'}")


async def _instance(req: ApiRequest, policy: str) -> Any:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, policy, instance.project_id)
    return instance


async def _power(req: ApiRequest, key: str, value: Any) -> Reply:
    validate(value, _NULL_BODY)
    policy, action = _POWER[key]
    instance = await _instance(req, policy)
    await req.app.compute.power_action(req.ctx, instance.uuid, action)
    return Reply(None, 202)


async def _reboot(req: ApiRequest, value: Any) -> Reply:
    validate({"reboot": value}, _REBOOT)
    instance = await _instance(req, "os_compute_api:servers:reboot")
    hard = value["type"].upper() == "HARD"
    await req.app.compute.power_action(req.ctx, instance.uuid,
                                       "reboot_hard" if hard else "reboot")
    return Reply(None, 202)


async def _lock(req: ApiRequest, value: Any) -> Reply:
    validate(value, _LOCK_273 if req.at_least("2.73") else _NULL_BODY)
    instance = await _instance(req, "os_compute_api:os-lock-server:lock")
    reason = (value or {}).get("locked_reason") if req.at_least("2.73") else None
    await req.app.compute.lock(req.ctx, instance.uuid, reason)
    return Reply(None, 202)


async def _unlock(req: ApiRequest, value: Any) -> Reply:
    validate(value, _NULL_BODY)
    instance = await _instance(req, "os_compute_api:os-lock-server:unlock")
    await req.app.compute.unlock(req.ctx, instance.uuid)
    return Reply(None, 202)


async def _console_output(req: ApiRequest, value: Any) -> dict[str, Any]:
    validate(value, _CONSOLE)
    instance = await _instance(req, "os_compute_api:os-console-output")
    length = (value or {}).get("length")
    output = await req.app.compute.console_output(req.ctx, instance.uuid)
    if length is not None and int(length) >= 0:
        lines = output.splitlines(keepends=True)
        output = "".join(lines[-int(length):]) if int(length) else ""
    return {"output": output}


async def _create_image(req: ApiRequest, value: Any) -> Reply:
    validate(value, _CREATE_IMAGE)
    instance = await _instance(req, "os_compute_api:servers:create_image")
    image_id = await req.app.compute.snapshot(req.ctx, instance.uuid, value["name"],
                                              value.get("metadata", {}))
    location = f"{req.app.conf.public_url}/image/v2/images/{image_id}"
    if req.at_least("2.45"):
        return Reply({"image_id": image_id}, 202)
    return Reply(None, 202, {"Location": location})


async def _rescue(req: ApiRequest, value: Any) -> dict[str, Any]:
    validate(value, _RESCUE)
    instance = await _instance(req, "os_compute_api:os-rescue")
    value = value or {}
    await req.app.compute.rescue(req.ctx, instance.uuid, value.get("rescue_image_ref"))
    return {"adminPass": value.get("adminPass") or servers.generate_password()}


async def _unrescue(req: ApiRequest, value: Any) -> Reply:
    validate(value, _NULL_BODY)
    instance = await _instance(req, "os_compute_api:os-unrescue")
    await req.app.compute.unrescue(req.ctx, instance.uuid)
    return Reply(None, 202)


async def _rebuild(req: ApiRequest, value: Any) -> Reply:
    validate({"rebuild": value}, schemas.for_version(schemas.REBUILD, req))
    instance = await _instance(req, "os_compute_api:servers:rebuild")
    names = {"name": "display_name", "description": "display_description",
             "accessIPv4": "access_ip_v4", "accessIPv6": "access_ip_v6",
             "user_data": "user_data", "hostname": "hostname", "metadata": "metadata",
             "key_name": "key_name", "personality": "personality"}
    values = servers.access_ips({column: value[key] for key, column in names.items()
                                 if key in value})
    instance = await req.app.compute.rebuild(req.ctx, instance.uuid,
                                             servers.last_segment(value["imageRef"]), values)
    nets = await server_view.networking(req, [instance])
    view = server_view.detail(req, instance, net=nets.get(instance.uuid),
                              server_groups=await server_view.groups_of(req, instance),
                              parts=server_view.rebuild_parts(req))
    view["adminPass"] = value.get("adminPass") or servers.generate_password()
    if req.at_least("2.57"):
        view["user_data"] = instance.user_data
    return Reply({"server": view}, 202)


async def _resize(req: ApiRequest, value: Any) -> Reply:
    validate(value, _RESIZE)
    instance = await _instance(req, "os_compute_api:servers:resize")
    await req.app.compute.resize(req.ctx, instance.uuid,
                                 servers.last_segment(str(value["flavorRef"])))
    return Reply(None, 202)


async def _confirm_resize(req: ApiRequest, value: Any) -> Reply:
    validate(value, _NULL_BODY)
    instance = await _instance(req, "os_compute_api:servers:confirm_resize")
    await req.app.compute.confirm_resize(req.ctx, instance.uuid)
    return Reply(None, 204)


async def _revert_resize(req: ApiRequest, value: Any) -> Reply:
    validate(value, _NULL_BODY)
    instance = await _instance(req, "os_compute_api:servers:revert_resize")
    await req.app.compute.revert_resize(req.ctx, instance.uuid)
    return Reply(None, 202)


_HANDLERS: dict[str, Callable[[ApiRequest, Any], Awaitable[Any]]] = {
    "reboot": _reboot, "lock": _lock, "unlock": _unlock,
    "os-getConsoleOutput": _console_output, "createImage": _create_image,
    "rescue": _rescue, "unrescue": _unrescue, "rebuild": _rebuild, "resize": _resize,
    "confirmResize": _confirm_resize, "revertResize": _revert_resize,
    "addSecurityGroup": security_groups.add_to_server,
    "removeSecurityGroup": security_groups.remove_from_server,
    "addFloatingIp": floating_ips.add_floating_ip,
    "removeFloatingIp": floating_ips.remove_floating_ip,
    **remote_consoles.ACTION_HANDLERS,
    **admin_actions.HANDLERS, **admin_password.HANDLERS, **deferred_delete.HANDLERS,
    **create_backup.HANDLERS, **crash_dump.HANDLERS, **multinic.HANDLERS,
    "migrate": server_moves.migrate, "os-migrateLive": server_moves.migrate_live,
    **shelve.ACTION_HANDLERS, **evacuate.ACTION_HANDLERS,
}
