"""Handlers for /extensions: the v2 API's extension list, frozen.

The v2.1 API has no extensions; features come with microversions. Nova still
answers /extensions with the list the v2 API had when v2.1 replaced it, the same
at every microversion and whatever the deployment serves, because older clients
(novaclient's discovery, Tempest's `api_extensions`) look features up by these
aliases. We answer the same frozen list: it is a compatibility document, not a
report of what this cloud can do (the version documents and microversions are).
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.policy import enforce

_UPDATED = "2014-12-03T00:00:00Z"  # when the list was frozen
_NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"

# (alias, name, what it stood for), sorted by alias as Nova sorts them.
_FROZEN: tuple[tuple[str, str, str], ...] = (
    ("NMN", "Multinic", "Servers with more than one network interface."),
    ("OS-DCF", "DiskConfig", "The OS-DCF:diskConfig attribute of servers and images."),
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "A server's availability zone."),
    ("OS-EXT-IMG-SIZE", "ImageSize", "An image's size in image details."),
    ("OS-EXT-IPS", "ExtendedIps", "The type (fixed or floating) of a server's addresses."),
    ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "The MAC address of a server's addresses."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "A server's host, node and name."),
    ("OS-EXT-STS", "ExtendedStatus", "A server's vm, task and power states."),
    ("OS-FLV-DISABLED", "FlavorDisabled", "Whether a flavor is disabled."),
    ("OS-FLV-EXT-DATA", "FlavorExtraData", "A flavor's ephemeral disk size."),
    ("OS-SCH-HNT", "SchedulerHints", "Scheduler hints on server create."),
    ("OS-SRV-USG", "ServerUsage", "When a server was launched and terminated."),
    ("os-access-ips", "AccessIPs", "A server's accessIPv4 and accessIPv6."),
    ("os-admin-actions", "AdminActions", "Reset a server's state or network."),
    ("os-admin-password", "AdminPassword", "Change a server's administrator password."),
    ("os-agents", "Agents", "Guest agent builds (removed)."),
    ("os-aggregates", "Aggregates", "Host aggregates."),
    ("os-assisted-volume-snapshots", "AssistedVolumeSnapshots",
     "Volume snapshots the hypervisor assists with."),
    ("os-attach-interfaces", "AttachInterfaces", "Attach and detach network interfaces."),
    ("os-availability-zone", "AvailabilityZone", "Availability zones."),
    ("os-baremetal-ext-status", "BareMetalExtStatus", "Bare-metal node status (removed)."),
    ("os-baremetal-nodes", "BareMetalNodes", "Bare-metal nodes (removed)."),
    ("os-block-device-mapping", "BlockDeviceMapping", "Block device mappings on create."),
    ("os-block-device-mapping-v2-boot", "BlockDeviceMappingV2Boot",
     "Boot from a block device mapping of the second format."),
    ("os-cell-capacities", "CellCapacities", "Cell capacities (removed)."),
    ("os-cells", "Cells", "Cells (removed)."),
    ("os-certificates", "Certificates", "Per-project x509 certificates (removed)."),
    ("os-cloudpipe", "Cloudpipe", "VPN instances per project (removed)."),
    ("os-cloudpipe-update", "CloudpipeUpdate", "Update a VPN instance (removed)."),
    ("os-config-drive", "ConfigDrive", "A server's config drive."),
    ("os-console-auth-tokens", "ConsoleAuthTokens", "Console authentication tokens."),
    ("os-console-output", "ConsoleOutput", "A server's console log."),
    ("os-consoles", "Consoles", "Per-server consoles (removed: see remote consoles)."),
    ("os-create-backup", "CreateBackup", "Back up a server with rotation."),
    ("os-create-server-ext", "Createserverext", "Extended server create attributes."),
    ("os-deferred-delete", "DeferredDelete", "Restore or force-delete soft-deleted servers."),
    ("os-evacuate", "Evacuate", "Rebuild a server of a failed host on another."),
    ("os-extended-evacuate-find-host", "ExtendedEvacuateFindHost",
     "Evacuate without naming a host."),
    ("os-extended-floating-ips", "ExtendedFloatingIps", "Floating IPs for a fixed address."),
    ("os-extended-hypervisors", "ExtendedHypervisors", "More hypervisor details."),
    ("os-extended-networks", "ExtendedNetworks", "More network details."),
    ("os-extended-quotas", "ExtendedQuotas", "Delete quotas and get a user's quotas."),
    ("os-extended-rescue-with-image", "ExtendedRescueWithImage", "Rescue with an image."),
    ("os-extended-services", "ExtendedServices", "Disable services with a reason."),
    ("os-extended-services-delete", "ExtendedServicesDelete", "Delete services."),
    ("os-extended-status", "ExtendedStatus", "A server's vm, task and power states."),
    ("os-extended-volumes", "ExtendedVolumes", "A server's attached volumes."),
    ("os-fixed-ips", "FixedIPs", "Fixed IPs."),
    ("os-flavor-access", "FlavorAccess", "Private flavors and their projects."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavor extra specs."),
    ("os-flavor-manage", "FlavorManage", "Create and delete flavors."),
    ("os-flavor-rxtx", "FlavorRxtx", "A flavor's rxtx factor."),
    ("os-flavor-swap", "FlavorSwap", "A flavor's swap size."),
    ("os-floating-ip-dns", "FloatingIpDns", "DNS entries of floating IPs (removed)."),
    ("os-floating-ip-pools", "FloatingIpPools", "Floating IP pools."),
    ("os-floating-ips", "FloatingIps", "Floating IPs."),
    ("os-floating-ips-bulk", "FloatingIpsBulk", "Floating IPs in bulk (removed)."),
    ("os-fping", "Fping", "Ping servers (removed)."),
    ("os-hide-server-addresses", "HideServerAddresses",
     "Hide a server's addresses in some states."),
    ("os-hosts", "Hosts", "Hosts and their resources."),
    ("os-hypervisor-status", "HypervisorStatus", "A hypervisor's status and state."),
    ("os-hypervisors", "Hypervisors", "Hypervisors."),
    ("os-instance-actions", "InstanceActions", "A server's actions and their events."),
    ("os-instance_usage_audit_log", "OSInstanceUsageAuditLog", "The usage audit's log."),
    ("os-keypairs", "Keypairs", "Key pairs."),
    ("os-lock-server", "LockServer", "Lock and unlock servers."),
    ("os-migrate-server", "MigrateServer", "Cold and live migration."),
    ("os-migrations", "Migrations", "Migrations."),
    ("os-multiple-create", "MultipleCreate", "Several servers in one create request."),
    ("os-networks", "Networks", "Networks."),
    ("os-networks-associate", "NetworkAssociationSupport",
     "Associate networks with projects and hosts."),
    ("os-pause-server", "PauseServer", "Pause and unpause servers."),
    ("os-personality", "Personality", "Files injected into servers."),
    ("os-preserve-ephemeral-rebuild", "PreserveEphemeralOnRebuild",
     "Keep the ephemeral disk on rebuild."),
    ("os-quota-class-sets", "QuotaClasses", "Quota classes."),
    ("os-quota-sets", "Quotas", "Quotas."),
    ("os-rescue", "Rescue", "Rescue and unrescue servers."),
    ("os-security-group-default-rules", "SecurityGroupDefaultRules",
     "Default security group rules (removed)."),
    ("os-security-groups", "SecurityGroups", "Security groups."),
    ("os-server-diagnostics", "ServerDiagnostics", "A server's diagnostics."),
    ("os-server-external-events", "ServerExternalEvents", "Events from other services."),
    ("os-server-group-quotas", "ServerGroupQuotas", "Server group quotas."),
    ("os-server-groups", "ServerGroups", "Server groups."),
    ("os-server-list-multi-status", "ServerListMultiStatus",
     "Filter server lists by several statuses."),
    ("os-server-password", "ServerPassword", "A server's encrypted password."),
    ("os-server-sort-keys", "ServerSortKeys", "Sort server lists."),
    ("os-server-start-stop", "ServerStartStop", "Start and stop servers."),
    ("os-services", "Services", "Services."),
    ("os-shelve", "Shelve", "Shelve and unshelve servers."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Usage per project."),
    ("os-suspend-server", "SuspendServer", "Suspend and resume servers."),
    ("os-tenant-networks", "OSTenantNetworks", "A project's networks."),
    ("os-used-limits", "UsedLimits", "Used limits."),
    ("os-used-limits-for-admin", "UsedLimitsForAdmin", "Another project's used limits."),
    ("os-user-data", "UserData", "User data on server create."),
    ("os-user-quotas", "UserQuotas", "Quotas per user."),
    ("os-virtual-interfaces", "VirtualInterfaces", "A server's virtual interfaces."),
    ("os-volume-attachment-update", "VolumeAttachmentUpdate", "Swap an attached volume."),
    ("os-volumes", "Volumes", "Volumes."),
)


class ExtensionNotFound(exceptions.NotFound):
    msg_fmt = "Extension %(alias)s could not be found."


def _view(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "links": [],
            "namespace": _NAMESPACE, "updated": _UPDATED}


EXTENSIONS = [_view(*entry) for entry in _FROZEN]


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:extensions")
    return {"extensions": EXTENSIONS}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    """GET /extensions/{alias}: the alias is the extension's id."""
    enforce(req.ctx, "os_compute_api:extensions")
    alias = req.path["alias"]
    found = next((e for e in EXTENSIONS if e["alias"] == alias), None)
    if found is None:
        raise ExtensionNotFound(alias=alias)
    return {"extension": found}
