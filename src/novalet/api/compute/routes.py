"""The compute API's one route table (mounted at /compute)."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.compute import (availability_zones, fixed_ips, flavor_access,
                                 flavor_extra_specs, flavors, floating_ip_pools, floating_ips,
                                 instance_actions, interfaces, ips, keypairs, limits, networks,
                                 security_group_rules, security_groups, server_actions,
                                 server_metadata, server_tags, servers, services, versions)
from novalet.api.compute import openapi
from novalet.api.compute import aggregates
from novalet.api.compute import server_groups
from novalet.api.compute import (hypervisors, instance_usage_audit_log, migrations,
                                 server_external_events, simple_tenant_usage)
from novalet.api.compute import quota_classes, quota_sets
from novalet.api.compute import console_auth_tokens, remote_consoles
from novalet.api.compute import server_password
from novalet.api.compute import tenant_networks
from novalet.api.compute import (extensions, hosts, image_metadata, images, legacy_v2,
                                 server_diagnostics)
from novalet.api.handler import COMPUTE, Handler, endpoint


def _r(path: str, methods: list[str], handler: Handler, auth: bool = True) -> Route:
    return Route(path, endpoint(COMPUTE, handler, auth=auth), methods=methods)


V = "/v2.1"
ROUTES = [
    _r("/", ["GET"], versions.index, auth=False),
    _r(V, ["GET"], versions.show, auth=False),
    _r(V + "/", ["GET"], versions.show, auth=False),
    # servers
    _r(V + "/servers", ["GET"], servers.index),
    _r(V + "/servers", ["POST"], servers.create),
    _r(V + "/servers/detail", ["GET"], servers.detail),
    _r(V + "/servers/{server_id}", ["GET"], servers.show),
    _r(V + "/servers/{server_id}", ["PUT"], servers.update),
    _r(V + "/servers/{server_id}", ["DELETE"], servers.delete),
    _r(V + "/servers/{server_id}/action", ["POST"], server_actions.dispatch),
    _r(V + "/servers/{server_id}/metadata", ["GET"], server_metadata.index),
    _r(V + "/servers/{server_id}/metadata", ["POST"], server_metadata.update_all),
    _r(V + "/servers/{server_id}/metadata", ["PUT"], server_metadata.replace_all),
    _r(V + "/servers/{server_id}/metadata/{key}", ["GET"], server_metadata.show),
    _r(V + "/servers/{server_id}/metadata/{key}", ["PUT"], server_metadata.update),
    _r(V + "/servers/{server_id}/metadata/{key}", ["DELETE"], server_metadata.delete),
    _r(V + "/servers/{server_id}/tags", ["GET"], server_tags.index),
    _r(V + "/servers/{server_id}/tags", ["PUT"], server_tags.replace_all),
    _r(V + "/servers/{server_id}/tags", ["DELETE"], server_tags.delete_all),
    _r(V + "/servers/{server_id}/tags/{tag}", ["GET"], server_tags.show),
    _r(V + "/servers/{server_id}/tags/{tag}", ["PUT"], server_tags.add),
    _r(V + "/servers/{server_id}/tags/{tag}", ["DELETE"], server_tags.delete),
    _r(V + "/servers/{server_id}/ips", ["GET"], ips.index),
    _r(V + "/servers/{server_id}/ips/{network}", ["GET"], ips.show),
    _r(V + "/servers/{server_id}/os-interface", ["GET"], interfaces.index),
    _r(V + "/servers/{server_id}/os-interface", ["POST"], interfaces.create),
    _r(V + "/servers/{server_id}/os-interface/{port_id}", ["GET"], interfaces.show),
    _r(V + "/servers/{server_id}/os-interface/{port_id}", ["DELETE"], interfaces.delete),
    _r(V + "/servers/{server_id}/os-security-groups", ["GET"], security_groups.server_index),
    _r(V + "/servers/{server_id}/os-server-password", ["GET"], server_password.index),
    _r(V + "/servers/{server_id}/os-server-password", ["DELETE"], server_password.clear),
    _r(V + "/servers/{server_id}/os-instance-actions", ["GET"], instance_actions.index),
    _r(V + "/servers/{server_id}/os-instance-actions/{request_id}", ["GET"],
       instance_actions.show),
    # flavors
    _r(V + "/flavors", ["GET"], flavors.index),
    _r(V + "/flavors", ["POST"], flavors.create),
    _r(V + "/flavors/detail", ["GET"], flavors.detail),
    _r(V + "/flavors/{flavor_id}", ["GET"], flavors.show),
    _r(V + "/flavors/{flavor_id}", ["PUT"], flavors.update),
    _r(V + "/flavors/{flavor_id}", ["DELETE"], flavors.delete),
    _r(V + "/flavors/{flavor_id}/action", ["POST"], flavor_access.action),
    _r(V + "/flavors/{flavor_id}/os-flavor-access", ["GET"], flavor_access.index),
    _r(V + "/flavors/{flavor_id}/os-extra_specs", ["GET"], flavor_extra_specs.index),
    _r(V + "/flavors/{flavor_id}/os-extra_specs", ["POST"], flavor_extra_specs.create),
    _r(V + "/flavors/{flavor_id}/os-extra_specs/{key}", ["GET"], flavor_extra_specs.show),
    _r(V + "/flavors/{flavor_id}/os-extra_specs/{key}", ["PUT"], flavor_extra_specs.update),
    _r(V + "/flavors/{flavor_id}/os-extra_specs/{key}", ["DELETE"],
       flavor_extra_specs.delete),
    # keypairs, limits, zones
    _r(V + "/os-keypairs", ["GET"], keypairs.index),
    _r(V + "/os-keypairs", ["POST"], keypairs.create),
    _r(V + "/os-keypairs/{name}", ["GET"], keypairs.show),
    _r(V + "/os-keypairs/{name}", ["DELETE"], keypairs.delete),
    _r(V + "/limits", ["GET"], limits.index),
    _r(V + "/os-availability-zone", ["GET"], availability_zones.index),
    _r(V + "/os-availability-zone/detail", ["GET"], availability_zones.detail),
    # services (admin; {service_id} is an action name below 2.53 on PUT)
    _r(V + "/os-services", ["GET"], services.index),
    _r(V + "/os-services/{service_id}", ["PUT"], services.update),
    _r(V + "/os-services/{service_id}", ["DELETE"], services.delete),
    # host aggregates (admin)
    _r(V + "/os-aggregates", ["GET"], aggregates.index),
    _r(V + "/os-aggregates", ["POST"], aggregates.create),
    _r(V + "/os-aggregates/{aggregate_id}", ["GET"], aggregates.show),
    _r(V + "/os-aggregates/{aggregate_id}", ["PUT"], aggregates.update),
    _r(V + "/os-aggregates/{aggregate_id}", ["DELETE"], aggregates.delete),
    _r(V + "/os-aggregates/{aggregate_id}/action", ["POST"], aggregates.action),
    # nova-network proxies (404 from 2.36)
    _r(V + "/os-networks", ["GET"], networks.index),
    _r(V + "/os-networks", ["POST"], networks.create),
    _r(V + "/os-networks/add", ["POST"], networks.add),
    _r(V + "/os-networks/{network_id}", ["GET"], networks.show),
    _r(V + "/os-networks/{network_id}", ["DELETE"], networks.delete),
    _r(V + "/os-networks/{network_id}/action", ["POST"], networks.action),
    _r(V + "/os-tenant-networks", ["GET"], tenant_networks.index),
    _r(V + "/os-tenant-networks/{network_id}", ["GET"], tenant_networks.show),
    _r(V + "/os-floating-ips", ["GET"], floating_ips.index),
    _r(V + "/os-floating-ips", ["POST"], floating_ips.create),
    _r(V + "/os-floating-ips/{floating_ip_id}", ["GET"], floating_ips.show),
    _r(V + "/os-floating-ips/{floating_ip_id}", ["DELETE"], floating_ips.delete),
    _r(V + "/os-floating-ip-pools", ["GET"], floating_ip_pools.index),
    _r(V + "/os-security-groups", ["GET"], security_groups.index),
    _r(V + "/os-security-groups", ["POST"], security_groups.create),
    _r(V + "/os-security-groups/{group_id}", ["GET"], security_groups.show),
    _r(V + "/os-security-groups/{group_id}", ["PUT"], security_groups.update),
    _r(V + "/os-security-groups/{group_id}", ["DELETE"], security_groups.delete),
    _r(V + "/os-security-group-rules", ["POST"], security_group_rules.create),
    _r(V + "/os-security-group-rules/{rule_id}", ["DELETE"], security_group_rules.delete),
    _r(V + "/os-fixed-ips/{address}", ["GET"], fixed_ips.show),
    _r(V + "/os-fixed-ips/{address}/action", ["POST"], fixed_ips.action),
    # --- quotas (area 1): os-quota-sets, os-quota-class-sets ---
    _r(V + "/os-quota-sets/{tenant_id}", ["GET"], quota_sets.show),
    _r(V + "/os-quota-sets/{tenant_id}", ["PUT"], quota_sets.update),
    _r(V + "/os-quota-sets/{tenant_id}", ["DELETE"], quota_sets.delete),
    _r(V + "/os-quota-sets/{tenant_id}/defaults", ["GET"], quota_sets.defaults),
    _r(V + "/os-quota-sets/{tenant_id}/detail", ["GET"], quota_sets.detail),
    _r(V + "/os-quota-class-sets/{class_id}", ["GET"], quota_classes.show),
    _r(V + "/os-quota-class-sets/{class_id}", ["PUT"], quota_classes.update),
    # --- server groups (area 3) ---
    _r(V + "/os-server-groups", ["GET"], server_groups.index),
    _r(V + "/os-server-groups", ["POST"], server_groups.create),
    _r(V + "/os-server-groups/{group_id}", ["GET"], server_groups.show),
    _r(V + "/os-server-groups/{group_id}", ["DELETE"], server_groups.delete),
    # --- OpenAPI document (request validation area) ---
    _r(V + "/openapi.json", ["GET"], openapi.document, auth=False),
    # --- admin API (area 4): hypervisors, usage, migrations, external events ---
    _r(V + "/os-hypervisors", ["GET"], hypervisors.index),
    _r(V + "/os-hypervisors/detail", ["GET"], hypervisors.detail),
    _r(V + "/os-hypervisors/statistics", ["GET"], hypervisors.statistics),
    _r(V + "/os-hypervisors/{hypervisor_id}", ["GET"], hypervisors.show),
    _r(V + "/os-hypervisors/{hypervisor_id}/uptime", ["GET"], hypervisors.uptime),
    _r(V + "/os-hypervisors/{hypervisor_hostname_pattern}/search", ["GET"],
       hypervisors.search),
    _r(V + "/os-hypervisors/{hypervisor_hostname_pattern}/servers", ["GET"],
       hypervisors.servers),
    _r(V + "/os-simple-tenant-usage", ["GET"], simple_tenant_usage.index),
    _r(V + "/os-simple-tenant-usage/{tenant_id}", ["GET"], simple_tenant_usage.show),
    _r(V + "/os-simple-tenant-usage/", ["GET"], simple_tenant_usage.show_without_id),
    _r(V + "/os-migrations", ["GET"], migrations.index),
    _r(V + "/servers/{server_id}/migrations", ["GET"], migrations.server_index),
    _r(V + "/servers/{server_id}/migrations/{migration_id}", ["GET"],
       migrations.server_show),
    _r(V + "/servers/{server_id}/migrations/{migration_id}", ["DELETE"],
       migrations.server_delete),
    _r(V + "/servers/{server_id}/migrations/{migration_id}/action", ["POST"],
       migrations.server_action),
    _r(V + "/os-server-external-events", ["POST"], server_external_events.create),
    _r(V + "/os-instance_usage_audit_log", ["GET"], instance_usage_audit_log.index),
    _r(V + "/os-instance_usage_audit_log/{before_timestamp}", ["GET"],
       instance_usage_audit_log.show),
    # --- consoles ---
    _r(V + "/servers/{server_id}/remote-consoles", ["POST"], remote_consoles.create),
    _r(V + "/os-console-auth-tokens/{console_token}", ["GET"], console_auth_tokens.show),
    _r(V + "/servers/{server_id}/diagnostics", ["GET"], server_diagnostics.index),
    # --- os-hosts (admin; 404 from 2.43) ---
    _r(V + "/os-hosts", ["GET"], hosts.index),
    _r(V + "/os-hosts/{host_name}", ["GET"], hosts.show),
    _r(V + "/os-hosts/{host_name}", ["PUT"], hosts.update),
    _r(V + "/os-hosts/{host_name}/reboot", ["GET"], hosts.reboot),
    _r(V + "/os-hosts/{host_name}/shutdown", ["GET"], hosts.shutdown),
    _r(V + "/os-hosts/{host_name}/startup", ["GET"], hosts.startup),
    # --- the image proxy (404 from 2.36; its metadata from 2.39) ---
    _r(V + "/images", ["GET"], images.index),
    _r(V + "/images/detail", ["GET"], images.detail),
    _r(V + "/images/{image_id}", ["GET"], images.show),
    _r(V + "/images/{image_id}", ["DELETE"], images.delete),
    _r(V + "/images/", ["DELETE"], images.delete_without_id),
    _r(V + "/images/{image_id}/metadata", ["GET"], image_metadata.index),
    _r(V + "/images/{image_id}/metadata", ["POST"], image_metadata.create),
    _r(V + "/images/{image_id}/metadata", ["PUT"], image_metadata.update_all),
    _r(V + "/images/{image_id}/metadata/{key}", ["GET"], image_metadata.show),
    _r(V + "/images/{image_id}/metadata/{key}", ["PUT"], image_metadata.update),
    _r(V + "/images/{image_id}/metadata/{key}", ["DELETE"], image_metadata.delete),
    # --- extensions (the v2 API's list, frozen) ---
    _r(V + "/extensions", ["GET"], extensions.index),
    _r(V + "/extensions/{alias}", ["GET"], extensions.show),
]

# Nova's legacy /v2 endpoint: the routes above without microversions.
LEGACY_V2_ROUTES = legacy_v2.routes(list(ROUTES))
