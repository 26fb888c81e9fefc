"""Who may do what: one named rule per API action, checked before the domain service runs.

Every rule is a check string in OpenStack's policy language (see policy_checks);
the defaults below give what Nova's defaults give each of Keystone's roles
(admin ⊇ member ⊇ reader, applied as implied roles): a reader lists and shows in
their project, a member acts in their project, an admin acts everywhere (a
system-scoped admin too). `[oslo_policy] policy_file` (YAML, relative paths
under the state dir) overrides any rule by name and is re-read when it changes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.policy_checks import Check, PolicySyntaxError, parse

LOG = logging.getLogger(__name__)


class PolicyNotAuthorized(exceptions.Forbidden):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


class PolicyFileError(ValueError):
    """The policy file can't be read or holds a rule that can't be parsed."""


# Keystone's default implied roles: holding the key role grants the listed ones.
IMPLIED_ROLES: dict[str, tuple[str, ...]] = {"admin": ("member",), "member": ("reader",)}

# Shorthands earlier RULES entries used; read as the rule each stands for.
LEGACY_ALIASES = {"admin": "rule:admin_api", "project_member": "rule:project_member_or_admin",
                  "project_reader": "rule:project_reader_or_admin", "any_user": "@"}

# Names below are the base rules Nova's defaults are written in; the rest are
# one per API action.

RULES: dict[str, str] = {
    "context_is_admin": "role:admin",
    "admin_api": "is_admin:True",
    "project_member_api": "role:member and project_id:%(project_id)s",
    "project_reader_api": "role:reader and project_id:%(project_id)s",
    "project_member_or_admin": "rule:project_member_api or rule:context_is_admin",
    "project_reader_or_admin": "rule:project_reader_api or rule:context_is_admin",
    "project_manager_api": "role:manager and project_id:%(project_id)s",
    "project_manager_or_admin": "rule:project_manager_api or rule:context_is_admin",
    "os_compute_api:servers:index": "rule:project_reader_or_admin",
    "os_compute_api:servers:index:get_all_tenants": "rule:admin_api",
    "os_compute_api:servers:detail:get_all_tenants": "rule:admin_api",
    "os_compute_api:servers:allow_all_filters": "rule:admin_api",
    "os_compute_api:servers:show": "rule:project_reader_or_admin",
    "os_compute_api:servers:show:host_status": "rule:admin_api",
    "os_compute_api:servers:create": "rule:project_member_or_admin",
    "os_compute_api:servers:create:forced_host": "rule:admin_api",
    "os_compute_api:servers:update": "rule:project_member_or_admin",
    "os_compute_api:servers:delete": "rule:project_member_or_admin",
    "os_compute_api:servers:reboot": "rule:project_member_or_admin",
    "os_compute_api:servers:start": "rule:project_member_or_admin",
    "os_compute_api:servers:stop": "rule:project_member_or_admin",
    "os_compute_api:os-pause-server:pause": "rule:project_member_or_admin",
    "os_compute_api:os-pause-server:unpause": "rule:project_member_or_admin",
    "os_compute_api:os-suspend-server:suspend": "rule:project_member_or_admin",
    "os_compute_api:os-suspend-server:resume": "rule:project_member_or_admin",
    "os_compute_api:os-lock-server:lock": "rule:project_member_or_admin",
    "os_compute_api:servers:create_image": "rule:project_member_or_admin",
    "os_compute_api:os-console-output": "rule:project_member_or_admin",
    "os_compute_api:os-rescue": "rule:project_member_or_admin",
    "os_compute_api:os-unrescue": "rule:project_member_or_admin",
    "os_compute_api:servers:rebuild": "rule:project_member_or_admin",
    "os_compute_api:servers:resize": "rule:project_member_or_admin",
    "os_compute_api:servers:confirm_resize": "rule:project_member_or_admin",
    "os_compute_api:servers:revert_resize": "rule:project_member_or_admin",
    "os_compute_api:os-shelve:shelve": "rule:project_member_or_admin",
    "os_compute_api:os-shelve:shelve_offload": "rule:admin_api",
    "os_compute_api:os-shelve:unshelve": "rule:project_member_or_admin",
    "os_compute_api:os-shelve:unshelve_to_host": "rule:admin_api",
    "os_compute_api:os-evacuate": "rule:admin_api",
    "os_compute_api:os-lock-server:unlock": "rule:project_member_or_admin",
    "os_compute_api:os-lock-server:unlock:unlock_override": "rule:admin_api",
    "os_compute_api:os-extended-server-attributes": "rule:admin_api",
    "os_compute_api:server-metadata:index": "rule:project_reader_or_admin",
    "os_compute_api:server-metadata:update": "rule:project_member_or_admin",
    "os_compute_api:os-server-tags:index": "rule:project_reader_or_admin",
    "os_compute_api:os-server-tags:update": "rule:project_member_or_admin",
    "os_compute_api:ips:index": "rule:project_reader_or_admin",
    "os_compute_api:os-attach-interfaces:list": "rule:project_reader_or_admin",
    "os_compute_api:os-attach-interfaces:show": "rule:project_reader_or_admin",
    "os_compute_api:os-attach-interfaces:create": "rule:project_member_or_admin",
    "os_compute_api:os-attach-interfaces:delete": "rule:project_member_or_admin",
    "os_compute_api:os-instance-actions:list": "rule:project_reader_or_admin",
    "os_compute_api:os-instance-actions:events": "rule:admin_api",
    "os_compute_api:os-instance-actions:events:details": "rule:admin_api",
    "os_compute_api:os-flavor-manage:create": "rule:admin_api",
    "os_compute_api:os-flavor-manage:update": "rule:admin_api",
    "os_compute_api:os-flavor-manage:delete": "rule:admin_api",
    "os_compute_api:os-flavor-extra-specs:index": "rule:project_reader_or_admin",
    "os_compute_api:os-flavor-extra-specs:show": "rule:project_reader_or_admin",
    "os_compute_api:os-flavor-extra-specs:update": "rule:admin_api",
    "os_compute_api:os-flavor-extra-specs:create": "rule:admin_api",
    "os_compute_api:os-flavor-extra-specs:delete": "rule:admin_api",
    "os_compute_api:os-flavor-access": "rule:admin_api",
    "os_compute_api:os-flavor-access:add_tenant_access": "rule:admin_api",
    "os_compute_api:os-flavor-access:remove_tenant_access": "rule:admin_api",
    "os_compute_api:os-keypairs:index": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:show": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:create": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:delete": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:other_user": "rule:admin_api",
    "os_compute_api:limits": "@",
    # quotas (area 1)
    "os_compute_api:limits:other_project": "rule:admin_api",
    "os_compute_api:os-quota-sets:show": "rule:project_reader_or_admin",
    "os_compute_api:os-quota-sets:detail": "rule:project_reader_or_admin",
    "os_compute_api:os-quota-sets:defaults": "@",
    "os_compute_api:os-quota-sets:update": "rule:admin_api",
    "os_compute_api:os-quota-sets:delete": "rule:admin_api",
    "os_compute_api:os-quota-class-sets:show": "rule:admin_api",
    "os_compute_api:os-quota-class-sets:update": "rule:admin_api",
    "os_compute_api:os-availability-zone:list": "@",
    "os_compute_api:os-availability-zone:detail": "rule:admin_api",
    "os_compute_api:os-services:list": "rule:admin_api",
    "os_compute_api:os-services:update": "rule:admin_api",
    "os_compute_api:os-services:delete": "rule:admin_api",
    "os_compute_api:os-aggregates:index": "rule:admin_api",
    "os_compute_api:os-aggregates:create": "rule:admin_api",
    "os_compute_api:os-aggregates:show": "rule:admin_api",
    "os_compute_api:os-aggregates:update": "rule:admin_api",
    "os_compute_api:os-aggregates:delete": "rule:admin_api",
    "os_compute_api:os-aggregates:add_host": "rule:admin_api",
    "os_compute_api:os-aggregates:remove_host": "rule:admin_api",
    "os_compute_api:os-aggregates:set_metadata": "rule:admin_api",
    "os_compute_api:os-networks:list": "rule:project_reader_or_admin",
    "os_compute_api:os-networks:show": "rule:project_reader_or_admin",
    "os_compute_api:os-tenant-networks:list": "rule:project_reader_or_admin",
    "os_compute_api:os-tenant-networks:show": "rule:project_reader_or_admin",
    "os_compute_api:os-networks": "rule:admin_api",
    "os_compute_api:os-networks-associate": "rule:admin_api",
    "os_compute_api:os-floating-ips:list": "rule:project_reader_or_admin",
    "os_compute_api:os-floating-ips:show": "rule:project_reader_or_admin",
    "os_compute_api:os-floating-ips:create": "rule:project_member_or_admin",
    "os_compute_api:os-floating-ips:delete": "rule:project_member_or_admin",
    "os_compute_api:os-floating-ips:add": "rule:project_member_or_admin",
    "os_compute_api:os-floating-ips:remove": "rule:project_member_or_admin",
    "os_compute_api:os-floating-ip-pools": "@",
    "os_compute_api:os-security-groups:get": "rule:project_reader_or_admin",
    "os_compute_api:os-security-groups:show": "rule:project_reader_or_admin",
    "os_compute_api:os-security-groups:create": "rule:project_member_or_admin",
    "os_compute_api:os-security-groups:update": "rule:project_member_or_admin",
    "os_compute_api:os-security-groups:delete": "rule:project_member_or_admin",
    "os_compute_api:os-security-groups:rule:create": "rule:project_member_or_admin",
    "os_compute_api:os-security-groups:rule:delete": "rule:project_member_or_admin",
    "os_compute_api:os-security-groups:list": "rule:project_reader_or_admin",
    "os_compute_api:os-security-groups:add": "rule:project_member_or_admin",
    "os_compute_api:os-security-groups:remove": "rule:project_member_or_admin",
    # The network API's security groups (Neutron's rule names;
    # network/neutron_security_groups.py): another project's are 404 before these.
    "get_security_group": "rule:project_reader_or_admin",
    "create_security_group": "rule:project_member_or_admin",
    "update_security_group": "rule:project_member_or_admin",
    "delete_security_group": "rule:project_member_or_admin",
    "get_security_group_rule": "rule:project_reader_or_admin",
    "create_security_group_rule": "rule:project_member_or_admin",
    "delete_security_group_rule": "rule:project_member_or_admin",
    "os_compute_api:os-fixed-ips": "rule:admin_api",
    # admin API (area 4): hypervisors, usage, migrations, external events, audit log
    "os_compute_api:os-hypervisors:list": "rule:admin_api",
    "os_compute_api:os-hypervisors:list-detail": "rule:admin_api",
    "os_compute_api:os-hypervisors:show": "rule:admin_api",
    "os_compute_api:os-hypervisors:statistics": "rule:admin_api",
    "os_compute_api:os-hypervisors:uptime": "rule:admin_api",
    "os_compute_api:os-hypervisors:search": "rule:admin_api",
    "os_compute_api:os-hypervisors:servers": "rule:admin_api",
    "os_compute_api:os-simple-tenant-usage:list": "rule:admin_api",
    "os_compute_api:os-simple-tenant-usage:show": "rule:project_reader_or_admin",
    # A project's manager lists its own project's migrations, without host fields.
    "os_compute_api:os-migrations:index": "rule:project_manager_or_admin",
    "os_compute_api:os-migrations:index:all_projects": "rule:admin_api",
    "os_compute_api:os-migrations:index:host": "rule:admin_api",
    "os_compute_api:servers:migrations:index": "rule:admin_api",
    "os_compute_api:servers:migrations:show": "rule:admin_api",
    "os_compute_api:servers:migrations:force_complete": "rule:admin_api",
    "os_compute_api:servers:migrations:delete": "rule:admin_api",
    "os_compute_api:os-migrate-server:migrate": "rule:admin_api",
    "os_compute_api:os-migrate-server:migrate:host": "rule:admin_api",
    "os_compute_api:os-migrate-server:migrate_live": "rule:admin_api",
    "os_compute_api:os-server-external-events:create": "rule:admin_api",
    "os_compute_api:os-instance-usage-audit-log:list": "rule:admin_api",
    "os_compute_api:os-instance-usage-audit-log:show": "rule:admin_api",
    "os_compute_api:os-server-groups:index": "rule:project_reader_or_admin",
    "os_compute_api:os-server-groups:index:all_projects": "rule:admin_api",
    "os_compute_api:os-server-groups:show": "rule:project_reader_or_admin",
    "os_compute_api:os-server-groups:create": "rule:project_member_or_admin",
    "os_compute_api:os-server-groups:delete": "rule:project_member_or_admin",
    "os_compute_api:os-remote-consoles": "rule:project_member_or_admin",
    "os_compute_api:os-console-auth-tokens": "rule:admin_api",
    # smaller server actions (compute/server_ops.py)
    "os_compute_api:os-admin-actions:reset_state": "rule:admin_api",
    "os_compute_api:os-admin-password": "rule:project_member_or_admin",
    "os_compute_api:os-deferred-delete:restore": "rule:project_member_or_admin",
    "os_compute_api:os-deferred-delete:force": "rule:project_member_or_admin",
    "os_compute_api:os-create-backup": "rule:project_member_or_admin",
    "os_compute_api:os-server-password:show": "rule:project_reader_or_admin",
    "os_compute_api:os-server-password:clear": "rule:project_member_or_admin",
    "os_compute_api:servers:trigger_crash_dump": "rule:project_member_or_admin",
    "os_compute_api:os-multinic:add": "rule:project_member_or_admin",
    "os_compute_api:os-multinic:remove": "rule:project_member_or_admin",
    # routes Tempest expects (hosts, diagnostics, extensions)
    "os_compute_api:os-hosts:list": "rule:admin_api",
    "os_compute_api:os-hosts:show": "rule:admin_api",
    "os_compute_api:os-hosts:update": "rule:admin_api",
    "os_compute_api:os-hosts:reboot": "rule:admin_api",
    "os_compute_api:os-hosts:shutdown": "rule:admin_api",
    "os_compute_api:os-hosts:start": "rule:admin_api",
    "os_compute_api:os-server-diagnostics": "rule:admin_api",
    "os_compute_api:extensions": "@",
    "identity:admin": "rule:admin_api",
    "image:publicize_image": "rule:admin_api",
    # Reading through the compute API's image proxy (Glance's defaults).
    "image:get_images": "rule:project_reader_or_admin",
    "image:get_image": "rule:project_reader_or_admin",
    # Glance's defaults: a project member (or an admin) changes the project's images.
    "image:add_image": "rule:project_member_or_admin",
    "image:modify_image": "rule:project_member_or_admin",
    "image:delete_image": "rule:project_member_or_admin",
    "image:upload_image": "rule:project_member_or_admin",
    "image:deactivate": "rule:project_member_or_admin",
    "image:reactivate": "rule:project_member_or_admin",
    # The network API (Neutron's rule names and defaults; api/network, network/networks.py).
    # `shared` and `external` are the target network's attributes.
    "shared": "field:networks:shared=True",
    "external": "field:networks:router:external=True",
    "create_network": "rule:project_member_or_admin",
    "create_network:shared": "rule:context_is_admin",
    "create_network:router:external": "rule:context_is_admin",
    "create_network:port_security_enabled": "rule:project_member_or_admin",
    "create_network:provider:network_type": "rule:context_is_admin",
    "create_network:provider:physical_network": "rule:context_is_admin",
    "create_network:provider:segmentation_id": "rule:context_is_admin",
    "get_network": "rule:project_reader_or_admin or rule:shared or rule:external",
    "get_network:provider:network_type": "rule:context_is_admin",
    "get_network:provider:physical_network": "rule:context_is_admin",
    "get_network:provider:segmentation_id": "rule:context_is_admin",
    "update_network": "rule:project_member_or_admin",
    "update_network:shared": "rule:context_is_admin",
    "update_network:router:external": "rule:context_is_admin",
    "update_network:port_security_enabled": "rule:project_member_or_admin",
    "update_network:provider:network_type": "rule:context_is_admin",
    "update_network:provider:physical_network": "rule:context_is_admin",
    "update_network:provider:segmentation_id": "rule:context_is_admin",
    "delete_network": "rule:project_member_or_admin",
    # is_default (auto-allocated-topology): the default external network, admin only
    "create_network:is_default": "rule:context_is_admin",
    "update_network:is_default": "rule:context_is_admin",
    # get-me-a-network (network/auto_topology.py); the target is the project asked for
    "get_auto_allocated_topology": "rule:project_reader_or_admin",
    "delete_auto_allocated_topology": "rule:project_member_or_admin",
    # The network API's subnets (network/subnets.py): the target is the subnet's
    # project and its network's `shared` and `router:external` (an unassigned
    # nova-network network counts as shared); writes are on the network's project.
    "get_subnet": "rule:project_reader_or_admin or rule:shared or rule:external",
    "create_subnet": "rule:project_member_or_admin",
    "update_subnet": "rule:project_member_or_admin",
    "delete_subnet": "rule:project_member_or_admin",
    # The network API's ports (Neutron's rule names and defaults; network/ports.py).
    # The target's `network_project_id` is the port's network's owner.
    "network_owner_member": "role:member and project_id:%(network_project_id)s",
    "admin_or_network_owner": "rule:context_is_admin or rule:network_owner_member",
    "create_port": "rule:project_member_or_admin",
    "create_port:device_id": "rule:project_member_or_admin",
    "create_port:device_owner": "rule:project_member_or_admin",
    "create_port:mac_address": "rule:admin_or_network_owner",
    "create_port:fixed_ips": "rule:admin_or_network_owner or rule:shared",
    "create_port:fixed_ips:ip_address": "rule:admin_or_network_owner",
    "create_port:fixed_ips:subnet_id": "rule:admin_or_network_owner or rule:shared",
    "create_port:port_security_enabled": "rule:admin_or_network_owner",
    "create_port:binding:host_id": "rule:context_is_admin",
    "create_port:binding:profile": "rule:context_is_admin",
    "create_port:allowed_address_pairs": "rule:admin_or_network_owner",
    "get_port": "rule:project_reader_or_admin",
    "get_port:binding:vif_type": "rule:context_is_admin",
    "get_port:binding:vif_details": "rule:context_is_admin",
    "get_port:binding:host_id": "rule:context_is_admin",
    "get_port:binding:profile": "rule:context_is_admin",
    "update_port": "rule:project_member_or_admin",
    "update_port:device_id": "rule:project_member_or_admin",
    "update_port:device_owner": "rule:project_member_or_admin",
    "update_port:mac_address": "rule:context_is_admin",
    "update_port:fixed_ips": "rule:admin_or_network_owner",
    "update_port:fixed_ips:ip_address": "rule:admin_or_network_owner",
    "update_port:fixed_ips:subnet_id": "rule:admin_or_network_owner or rule:shared",
    "update_port:port_security_enabled": "rule:admin_or_network_owner",
    "update_port:binding:host_id": "rule:context_is_admin",
    "update_port:binding:profile": "rule:context_is_admin",
    "update_port:allowed_address_pairs": "rule:admin_or_network_owner",
    "delete_port": "rule:project_member_or_admin",
    # The network API's floating IPs (Neutron's rule names and defaults;
    # network/floating_ips.py): another project's are 404 before these.
    "create_floatingip": "rule:project_member_or_admin",
    "create_floatingip:floating_ip_address": "rule:context_is_admin",
    "get_floatingip": "rule:project_reader_or_admin",
    "update_floatingip": "rule:project_member_or_admin",
    "delete_floatingip": "rule:project_member_or_admin",
    # The network API's routers (Neutron's rule names and defaults; network/routers.py):
    # another project's are 404 before these; turning SNAT off and choosing the
    # gateway's address are the admin's.
    "create_router": "rule:project_member_or_admin",
    "create_router:external_gateway_info": "rule:project_member_or_admin",
    "create_router:external_gateway_info:network_id": "rule:project_member_or_admin",
    "create_router:external_gateway_info:enable_snat": "rule:context_is_admin",
    "create_router:external_gateway_info:external_fixed_ips": "rule:context_is_admin",
    "get_router": "rule:project_reader_or_admin",
    "update_router": "rule:project_member_or_admin",
    "update_router:external_gateway_info": "rule:project_member_or_admin",
    "update_router:external_gateway_info:network_id": "rule:project_member_or_admin",
    "update_router:external_gateway_info:enable_snat": "rule:context_is_admin",
    "update_router:external_gateway_info:external_fixed_ips": "rule:context_is_admin",
    "delete_router": "rule:project_member_or_admin",
    "add_router_interface": "rule:project_member_or_admin",
    "remove_router_interface": "rule:project_member_or_admin",
    # The network API's quotas (network/quotas.py) and IP availability.
    "get_quota": "rule:project_reader_or_admin",
    "update_quota": "rule:context_is_admin",
    "delete_quota": "rule:context_is_admin",
    "get_network_ip_availability": "rule:context_is_admin",
}
# Tags on network API resources (network/tags.py): Neutron's `<action>_<collection>_tags`;
# the target is the tagged resource's (a network's flags for networks and subnets).
TAGGED = ("networks", "subnets", "ports", "security_groups", "floatingips", "routers")
for _kind in TAGGED:
    RULES[f"get_{_kind}_tags"] = "rule:project_reader_or_admin or rule:shared or rule:external"
    for _action in ("create", "update", "delete"):
        RULES[f"{_action}_{_kind}_tags"] = "rule:project_member_or_admin"


def with_implied_roles(roles: Iterable[str]) -> list[str]:
    """`roles` plus every role they imply (admin → member → reader), in order."""
    result = list(dict.fromkeys(roles))
    for role in result:  # grows while it is walked: implied roles imply further
        for implied in IMPLIED_ROLES.get(role.lower(), ()):
            if implied not in result:
                result.append(implied)
    return result


def admin_only(name: str) -> bool:
    """True for an admin-only (deployment-wide) rule: the ones a system-scoped
    token may pass. Unknown rules are admin-only."""
    return _default(name) in (None, "rule:admin_api", "rule:context_is_admin", "role:admin",
                              "is_admin:True")


def _default(name: str) -> str | None:
    check = RULES.get(name)
    return None if check is None else LEGACY_ALIASES.get(check, check)


class Enforcer:
    """The defaults in RULES, overridden by the rules of a policy file.

    The file is stat()ed on each check and re-read when it changed; a file that
    turns bad while the cloud runs is logged and the rules read before stay."""

    def __init__(self, policy_file: Path | None = None) -> None:
        self.policy_file = policy_file
        self.overrides: dict[str, Check] = {}
        self._parsed: dict[str, Check] = {}
        self._signature: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the policy file now; PolicyFileError names the file and line at fault.
        A missing file means no overrides (Nova's behaviour)."""
        self._signature = self._stat()
        self.overrides = self._read() if self._signature else {}

    def refresh(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        with self._lock:
            if signature == self._signature:
                return
            self._signature = signature
            try:
                self.overrides = self._read() if signature else {}
            except PolicyFileError as exc:
                LOG.error("%s; keeping the rules read before", exc)
                return
            LOG.info("Policy file %s (re)loaded: %d rules overridden", self.policy_file,
                     len(self.overrides))

    def _stat(self) -> tuple[int, int, int] | None:
        if self.policy_file is None:
            return None
        try:
            st = os.stat(self.policy_file)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> dict[str, Check]:
        assert self.policy_file is not None
        path = self.policy_file
        try:
            text = path.read_text()
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except OSError as exc:
            raise PolicyFileError(f"Cannot read policy file {path}: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise PolicyFileError(
                f"Policy file {path}{where}: not valid YAML: "
                f"{getattr(exc, 'problem', None) or exc}") from None
        if node is None:
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise PolicyFileError(f"Policy file {path} line {node.start_mark.line + 1}: "
                                  "expected a mapping of rule names to check strings")
        rules: dict[str, Check] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode):
                raise PolicyFileError(f"Policy file {path} line {line}: a rule is "
                                      '"name": "check string"')
            try:
                rules[key.value] = parse(value.value)
            except PolicySyntaxError as exc:
                raise PolicyFileError(f"Policy file {path} line {line}: rule "
                                      f"{key.value!r}: {exc}") from None
            if key.value not in RULES:
                LOG.warning("Policy file %s line %d: %r is not a rule Novalet knows; it "
                            "only matters where another rule refers to it", path, line,
                            key.value)
        return rules

    def rule(self, name: str) -> Check | None:
        """The check `name` stands for now (override, else default), None if unknown."""
        if name in self.overrides:
            return self.overrides[name]
        text = _default(name)
        if text is None:
            return None
        check = self._parsed.get(text)
        if check is None:
            check = self._parsed[text] = parse(text)
        return check

    def authorize(self, ctx: RequestContext, action: str,
                  target: Mapping[str, Any]) -> bool:
        self.refresh()
        check = self.rule(action)
        if ctx.system_scope and ctx.project_id is None and not admin_only(action):
            # Nova's scope_types: project APIs refuse a system-scoped token.
            return False
        if check is None:
            LOG.warning("No policy rule named %s; only admins pass", action)
            check = self.rule("admin_api")
            assert check is not None
        creds: dict[str, Any] = {
            "roles": with_implied_roles(ctx.roles), "user_id": ctx.user_id,
            "project_id": ctx.project_id, "system_scope": ctx.system_scope}
        admin = self.rule("context_is_admin")
        creds["is_admin"] = bool(admin and admin(target, creds, self.rule))
        return check(target, creds, self.rule)


_ENFORCER = Enforcer()


def policy_file_path(policy_file: str, state_path: Path) -> Path:
    path = Path(policy_file).expanduser()
    return path if path.is_absolute() else state_path / path


def configure(policy_file: Path | None) -> Enforcer:
    """Use `policy_file` for overrides from now on; raises PolicyFileError when it is bad."""
    global _ENFORCER
    enforcer = Enforcer(policy_file)
    enforcer.load()
    _ENFORCER = enforcer
    return enforcer


def authorize(ctx: RequestContext, action: str, project_id: str | None = None,
              target: Mapping[str, Any] | None = None) -> bool:
    """True when ctx may perform `action` on a resource of `project_id` (default:
    ctx's own project) described by `target` (e.g. its user_id)."""
    full: dict[str, Any] = {"project_id": ctx.project_id, "user_id": ctx.user_id}
    if project_id is not None:
        full["project_id"] = project_id
    full.update(target or {})
    return _ENFORCER.authorize(ctx, action, full)


def enforce(ctx: RequestContext, action: str, project_id: str | None = None,
            target: Mapping[str, Any] | None = None) -> None:
    """Raise PolicyNotAuthorized (403) unless ctx may perform `action`."""
    if not authorize(ctx, action, project_id, target):
        raise PolicyNotAuthorized(action=action)


def sample() -> str:
    """Every rule with its default, as a commented policy.yaml."""
    lines = ["# Novalet policy: uncomment a rule and change its check string to override",
             "# it. Set [oslo_policy] policy_file (default policy.yaml, relative to the",
             "# state dir); the file is re-read when it changes.", ""]
    for name in RULES:
        lines += [f"#{json.dumps(name)}: {json.dumps(_default(name))}", ""]
    return "\n".join(lines)
