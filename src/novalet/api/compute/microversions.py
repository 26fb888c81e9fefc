"""Compute API microversions: what each version we claim changes, and negotiation.

Each line is (version, what changed). Versions not listed between two listed
ones changed resources Novalet does not serve yet (their routes answer 404);
the shapes of everything we do serve are right at every version up to MAX.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, total_ordering

from novalet import exceptions

HISTORY: list[tuple[str, str]] = [
    ("2.1", "The base v2.1 API."),
    ("2.2", "Keypairs have a type (ssh or x509)."),
    ("2.3", "Servers show OS-EXT-SRV-ATTR reservation_id, launch_index, hostname, "
            "kernel_id, ramdisk_id, root_device_name and user_data to admins."),
    ("2.4", "os-fixed-ips shows `reserved`."),
    ("2.5", "Non-admins can filter the server list by ip6."),
    ("2.6", "POST /servers/{id}/remote-consoles replaces the os-getVNCConsole, "
            "os-getSPICEConsole, os-getSerialConsole and os-getRDPConsole actions "
            "(404 from here)."),
    ("2.7", "Adding project access to a public flavor is a 409."),
    ("2.8", "Remote consoles take the mks protocol and webmks type (no Novalet host serves them: a 400)."),
    ("2.9", "Servers show `locked`."),
    ("2.10", "Admins can name a user_id on keypair calls."),
    ("2.11", "os-services shows forced_down; PUT os-services/force-down sets it."),
    ("2.13", "Server groups show project_id and user_id."),
    ("2.14", "evacuate no longer takes onSharedStorage nor returns adminPass."),
    ("2.15", "Server groups may have the soft-affinity and soft-anti-affinity policies."),
    ("2.16", "Servers show host_status to admins."),
    ("2.17", "The trigger_crash_dump server action (an NMI into the guest)."),
    ("2.19", "Servers have a description (create, update, show)."),
    ("2.21", "Instance actions of deleted servers can be listed."),
    ("2.22", "Force-complete of a running live migration (POST "
             "/servers/{id}/migrations/{id}/action)."),
    ("2.23", "os-migrations shows migration_type; /servers/{id}/migrations lists "
             "in-progress live migrations."),
    ("2.24", "Abort of a running live migration (DELETE /servers/{id}/migrations/{id})."),
    ("2.25", "os-migrateLive takes block_migration auto and no longer disk_over_commit."),
    ("2.26", "Server tags (the tags API and `tags` in server bodies)."),
    ("2.28", "os-hypervisors shows cpu_info as an object, not a JSON string."),
    ("2.29", "evacuate takes `force` (skip the scheduler's filters for the named host)."),
    ("2.30", "os-migrateLive takes force (a host without the scheduler's filters)."),
    ("2.31", "os-console-auth-tokens shows the tokens of every console type (below, a 400)."),
    ("2.33", "os-hypervisors lists are paged with limit and marker."),
    ("2.34", "os-migrateLive checks run after the answer: no valid host shows in the "
             "migration record, not as a 400."),
    ("2.35", "Keypair lists are paged with limit and marker."),
    ("2.36", "Limits drop the network quotas; os-networks, os-fixed-ips, os-floating-ips, "
             "os-floating-ip-pools, os-security-groups and os-security-group-rules "
             "answer 404; so does the image proxy (/images)."),
    ("2.37", "Server create requires `networks`: a list, or the string none (no NICs) "
             "or auto (the project's one network; its auto-allocated topology when it "
             "has none; 409 when it has several)."),
    ("2.38", "An unknown `status` filter is a 400."),
    ("2.39", "Limits drop maxImageMeta; image metadata (/images/{id}/metadata) "
             "answers 404."),
    ("2.40", "os-simple-tenant-usage is paged over instances with limit and marker."),
    ("2.41", "Aggregates show their uuid."),
    ("2.43", "os-hosts answers 404 (os-hypervisors and os-services replace it)."),
    ("2.44", "addFloatingIp, removeFloatingIp, addFixedIp and removeFixedIp answer 404."),
    ("2.45", "createImage and createBackup return the new image's id in the body, not a "
             "Location."),
    ("2.47", "A server's flavor is embedded (original_name, sizes, extra_specs) "
             "instead of linked by id."),
    ("2.48", "Server diagnostics have a standard form, the same for every driver."),
    ("2.50", "os-quota-class-sets shows and takes server_groups and "
             "server_group_members instead of the network quotas (fixed_ips, "
             "floating_ips, security_groups, security_group_rules)."),
    ("2.51", "Non-admins see instance action events; the volume-extended external "
             "event."),
    ("2.52", "Tags can be given on server create."),
    ("2.53", "os-services ids are UUIDs; PUT os-services/{id} sets status, disabled_reason "
             "and forced_down (the enable, disable and force-down actions are gone); "
             "DELETE takes the UUID. os-hypervisors ids are UUIDs, lists take "
             "hypervisor_hostname_pattern and with_servers, search and servers are gone."),
    ("2.54", "Rebuild can set or unset the key pair."),
    ("2.55", "Flavors have a description and can be updated."),
    ("2.56", "migrate takes a target host."),
    ("2.57", "Personality files are gone (create, rebuild, limits)."),
    ("2.58", "Instance actions are paged and filtered by changes-since."),
    ("2.59", "os-migrations shows uuid, is paged with limit and marker, and takes "
             "changes-since."),
    ("2.61", "Flavor bodies include extra_specs."),
    ("2.62", "Instance action events show host and hostId."),
    ("2.63", "Servers show trusted_image_certificates."),
    ("2.64", "Server groups have one `policy` and `rules` (max_server_per_host for "
             "anti-affinity) instead of `policies`; they no longer show metadata."),
    ("2.65", "Abort also stops a live migration still queued or preparing."),
    ("2.66", "changes-before filter on servers, instance actions and os-migrations."),
    ("2.68", "os-migrateLive and evacuate no longer take `force`."),
    ("2.71", "Servers show server_groups (show, update and rebuild)."),
    ("2.73", "Lock takes a locked_reason; servers show it."),
    ("2.74", "Server create takes host and hypervisor_hostname to ask for a compute "
             "host and node (admins, by policy)."),
    ("2.75", "Update returns the whole server; unknown list filters are a 400; "
             "flavor swap is 0 instead of an empty string."),
    ("2.76", "The power-update external event."),
    ("2.77", "unshelve of a SHELVED_OFFLOADED server takes an availability_zone."),
    ("2.80", "os-migrations shows and filters by user_id and project_id."),
    ("2.82", "The accelerator-request-bound external event."),
    ("2.83", "Non-admins can filter the server list by availability_zone, config_drive, "
             "key_name, created_at, launched_at, terminated_at, power_state, task_state, "
             "vm_state, progress and user_id."),
    ("2.84", "Instance action events show details."),
    ("2.88", "os-hypervisors drops the resource figures, uptime and statistics; "
             "show includes uptime."),
    ("2.90", "Servers have a settable hostname (create, update)."),
    ("2.91", "unshelve takes a host (admin) and a null availability_zone (unpin)."),
    ("2.92", "Keypairs can only be imported, never generated by the server."),
    ("2.93", "The volume-reimaged external event."),
    ("2.94", "Server hostnames may be fully qualified."),
    ("2.95", "Evacuated servers end stopped."),
    ("2.96", "Servers show pinned_availability_zone."),
    ("2.98", "A server's image shows its properties."),
    ("2.99", "Remote consoles take the spice-direct type (not served: a 400)."),
    ("2.100", "Servers show scheduler_hints."),
    ("2.101", "Attaching a volume answers 202 without a body (os-volume_attachments is "
              "not served here: 404 at every version)."),
    ("2.102", "Flavors drop rxtx_factor and OS-FLV-DISABLED:disabled (create no longer "
              "takes rxtx_factor, lists no longer sort by it) and lists take a name "
              "filter; every GET refuses unknown query parameters with a 400."),
    ("2.103", "The /os-volumes_boot alias of /servers is gone (never served here: 404 "
              "at every version)."),
    ("2.104", "PUT /servers/{id} takes pinned_availability_zone: null unpins, the "
              "server's current zone re-pins, anything else is a 409."),
]


@total_ordering
@dataclass(frozen=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        return _parse(text)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, APIVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        # Views ask this dozens of times per server: keep it a tuple compare.
        other = _parse(text)
        return (self.major, self.minor) >= (other.major, other.minor)


@lru_cache(maxsize=512)
def _parse(text: str) -> APIVersion:
    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if not match:
        raise InvalidMicroversion(version=text)
    return APIVersion(int(match.group(1)), int(match.group(2)))


MIN = APIVersion.parse(HISTORY[0][0])
MAX = APIVersion.parse(HISTORY[-1][0])


class InvalidMicroversion(exceptions.Invalid):
    msg_fmt = ("Invalid API version request: %(version)s. Use major.minor, "
               "for example 2.1, or 'latest'.")


class MicroversionNotAcceptable(exceptions.NovaletError):
    msg_fmt = "Version %(version)s is not supported by the API. Minimum is %(min)s and maximum is %(max)s."
    code = 406


def negotiate(headers: Mapping[str, str]) -> APIVersion:
    """The version a request asks for: OpenStack-API-Version (compute X), else the
    legacy X-OpenStack-Nova-API-Version, else the minimum. 'latest' is MAX."""
    get = headers.get
    requested = None
    modern = get("openstack-api-version")
    if modern:
        for part in modern.split(","):
            words = part.strip().split()
            if len(words) == 2 and words[0].lower() == "compute":
                requested = words[1]
    if requested is None:
        requested = get("x-openstack-nova-api-version")
    if not requested:
        return MIN
    if requested.strip().lower() == "latest":
        return MAX
    version = APIVersion.parse(requested)
    if not MIN <= version <= MAX:
        raise MicroversionNotAcceptable(version=requested, min=MIN, max=MAX)
    return version
