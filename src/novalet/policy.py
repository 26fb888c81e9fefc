"""Who may do what: one rule per API action, checked before the domain service runs.

Rules (defaults follow Nova's default policy in spirit):
  admin            the admin role
  project_member   member or admin role, acting on their own project (admin: any)
  project_reader   any role, on their own project (admin: any)
  any_user         any authenticated user
"""

from __future__ import annotations

from collections.abc import Callable

from novalet import exceptions
from novalet.common.context import RequestContext


class PolicyNotAuthorized(exceptions.Forbidden):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


def _admin(ctx: RequestContext, project_id: str | None) -> bool:
    return ctx.is_admin


def _member(ctx: RequestContext, project_id: str | None) -> bool:
    if ctx.is_admin:
        return True
    return ("member" in ctx.roles) and (project_id is None or project_id == ctx.project_id)


def _reader(ctx: RequestContext, project_id: str | None) -> bool:
    if ctx.is_admin:
        return True
    return bool(ctx.roles) and (project_id is None or project_id == ctx.project_id)


def _any(ctx: RequestContext, project_id: str | None) -> bool:
    return ctx.user_id is not None


CHECKS: dict[str, Callable[[RequestContext, str | None], bool]] = {
    "admin": _admin, "project_member": _member, "project_reader": _reader,
    "any_user": _any,
}

RULES: dict[str, str] = {
    "os_compute_api:servers:index": "project_reader",
    "os_compute_api:servers:index:get_all_tenants": "admin",
    "os_compute_api:servers:show": "project_reader",
    "os_compute_api:servers:show:host_status": "admin",
    "os_compute_api:servers:create": "project_member",
    "os_compute_api:servers:create:forced_host": "admin",
    "os_compute_api:servers:update": "project_member",
    "os_compute_api:servers:delete": "project_member",
    "os_compute_api:servers:reboot": "project_member",
    "os_compute_api:servers:start": "project_member",
    "os_compute_api:servers:stop": "project_member",
    "os_compute_api:os-pause-server:pause": "project_member",
    "os_compute_api:os-pause-server:unpause": "project_member",
    "os_compute_api:os-suspend-server:suspend": "project_member",
    "os_compute_api:os-suspend-server:resume": "project_member",
    "os_compute_api:os-lock-server:lock": "project_member",
    "os_compute_api:servers:create_image": "project_member",
    "os_compute_api:os-rescue": "project_member",
    "os_compute_api:os-unrescue": "project_member",
    "os_compute_api:servers:rebuild": "project_member",
    "os_compute_api:servers:resize": "project_member",
    "os_compute_api:servers:confirm_resize": "project_member",
    "os_compute_api:servers:revert_resize": "project_member",
    "os_compute_api:os-lock-server:unlock": "project_member",
    "os_compute_api:os-lock-server:unlock:unlock_override": "admin",
    "os_compute_api:os-extended-server-attributes": "admin",
    "os_compute_api:server-metadata:index": "project_reader",
    "os_compute_api:server-metadata:update": "project_member",
    "os_compute_api:os-server-tags:index": "project_reader",
    "os_compute_api:os-server-tags:update": "project_member",
    "os_compute_api:ips:index": "project_reader",
    "os_compute_api:os-attach-interfaces:list": "project_reader",
    "os_compute_api:os-attach-interfaces:show": "project_reader",
    "os_compute_api:os-attach-interfaces:create": "project_member",
    "os_compute_api:os-attach-interfaces:delete": "project_member",
    "os_compute_api:os-instance-actions:list": "project_reader",
    "os_compute_api:os-instance-actions:events": "admin",
    "os_compute_api:os-instance-actions:events:details": "admin",
    "os_compute_api:os-flavor-manage:create": "admin",
    "os_compute_api:os-flavor-manage:update": "admin",
    "os_compute_api:os-flavor-manage:delete": "admin",
    "os_compute_api:os-flavor-extra-specs:index": "any_user",
    "os_compute_api:os-flavor-extra-specs:show": "any_user",
    "os_compute_api:os-flavor-extra-specs:update": "admin",
    "os_compute_api:os-flavor-access": "admin",
    "os_compute_api:os-keypairs:index": "any_user",
    "os_compute_api:os-keypairs:show": "any_user",
    "os_compute_api:os-keypairs:create": "any_user",
    "os_compute_api:os-keypairs:delete": "any_user",
    "os_compute_api:os-keypairs:other_user": "admin",
    "os_compute_api:limits": "any_user",
    "os_compute_api:os-availability-zone:list": "any_user",
    "os_compute_api:os-availability-zone:detail": "admin",
    "os_compute_api:os-services:list": "admin",
    "os_compute_api:os-services:update": "admin",
    "os_compute_api:os-services:delete": "admin",
    "os_compute_api:os-networks:list": "project_reader",
    "os_compute_api:os-networks:show": "project_reader",
    "os_compute_api:os-networks": "admin",
    "os_compute_api:os-networks-associate": "admin",
    "os_compute_api:os-floating-ips:list": "project_reader",
    "os_compute_api:os-floating-ips:show": "project_reader",
    "os_compute_api:os-floating-ips:create": "project_member",
    "os_compute_api:os-floating-ips:delete": "project_member",
    "os_compute_api:os-floating-ips:add": "project_member",
    "os_compute_api:os-floating-ips:remove": "project_member",
    "os_compute_api:os-floating-ip-pools": "any_user",
    "os_compute_api:os-security-groups:get": "project_reader",
    "os_compute_api:os-security-groups:show": "project_reader",
    "os_compute_api:os-security-groups:create": "project_member",
    "os_compute_api:os-security-groups:update": "project_member",
    "os_compute_api:os-security-groups:delete": "project_member",
    "os_compute_api:os-security-groups:rule:create": "project_member",
    "os_compute_api:os-security-groups:rule:delete": "project_member",
    "os_compute_api:os-security-groups:list": "project_reader",
    "os_compute_api:os-security-groups:add": "project_member",
    "os_compute_api:os-security-groups:remove": "project_member",
    "os_compute_api:os-fixed-ips": "admin",
    "identity:admin": "admin",
    "image:publicize_image": "admin",
}


def authorize(ctx: RequestContext, action: str, project_id: str | None = None) -> bool:
    """True when ctx may perform `action` on a resource of `project_id`."""
    return CHECKS[RULES.get(action, "admin")](ctx, project_id)


def enforce(ctx: RequestContext, action: str, project_id: str | None = None) -> None:
    """Raise PolicyNotAuthorized (403) unless ctx may perform `action`."""
    if not authorize(ctx, action, project_id):
        raise PolicyNotAuthorized(action=action)
