"""Every configuration option, declared once with its help text, and the INI loader.

The file follows nova.conf's layout where Nova has the option. `novalet config
sample` prints a sample generated from the declarations below.
"""

from __future__ import annotations

import configparser
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import platformdirs

from novalet.common.urls import url_host


@dataclass(frozen=True)
class Opt:
    section: str
    name: str
    default: Any
    help: str
    type: Callable[[str], Any] = str


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


OPTIONS: list[Opt] = [
    Opt("DEFAULT", "host", socket.gethostname(), "Name of this host as services report it."),
    Opt("DEFAULT", "state_path", "", "Directory holding every file of the cloud "
        "(database, images, keys). Empty means the user's data directory."),
    Opt("DEFAULT", "debug", False, "Log at DEBUG level.", _bool),
    Opt("DEFAULT", "transport_url", "memory://",
        "Message bus: memory:// (in-process, one-process clouds) or "
        "rabbit://user:password@host:port/vhost (RabbitMQ, every service its own process)."),
    Opt("DEFAULT", "compute_driver", "qemu",
        "Virt driver of this compute host: qemu (real guests) or fake (in memory)."),
    Opt("DEFAULT", "default_availability_zone", "nova", "Availability zone of compute hosts."),
    Opt("DEFAULT", "force_config_drive", False,
        "Give every guest a config drive (ISO9660, label config-2), asked for or not "
        "(off, as in Nova: guests read the metadata service; a server gets a drive "
        "when its create asks for config_drive).", _bool),
    Opt("DEFAULT", "rpc_response_timeout", 60.0, "Seconds a bus call waits for its reply.",
        float),
    Opt("DEFAULT", "report_interval", 10.0, "Seconds between service heartbeats.", float),
    Opt("DEFAULT", "sync_power_state_interval", 10.0,
        "Seconds between comparing each guest's power state with the database; "
        "0 turns the sync off.", float),
    Opt("DEFAULT", "instance_usage_audit", False,
        "Each compute host audits the instances it ran in every audit period, once the "
        "period is over (os-instance_usage_audit_log reports the runs).", _bool),
    Opt("DEFAULT", "instance_usage_audit_period", "month",
        "Period of the instance usage audit: hour, day, month or year."),
    Opt("DEFAULT", "instance_usage_audit_interval", 60.0,
        "Seconds between a compute host's checks for an audit period to run.", float),
    Opt("DEFAULT", "image_cache_manager_interval", 2400.0,
        "Seconds between runs of the image cache manager; 0 turns it off.", float),
    Opt("DEFAULT", "vif_plugging_timeout", 300.0,
        "Seconds a build waits, before it starts the guest, for the host's network "
        "service to report each port plugged (network-vif-plugged); 0: no wait. "
        "Nova's option.", float),
    Opt("DEFAULT", "vif_plugging_is_fatal", True,
        "Whether a port not reported plugged within vif_plugging_timeout fails the "
        "build (the server goes to ERROR with a fault naming the port); false: the "
        "guest starts anyway. Nova's option.", _bool),
    Opt("DEFAULT", "shutdown_timeout", 60.0,
        "Seconds a guest gets to power off after an ACPI request before it is stopped "
        "by force.", float),
    Opt("DEFAULT", "reclaim_instance_interval", 0.0,
        "Seconds a deleted server waits, powered off (SOFT_DELETED), for `restore` "
        "before it is reclaimed (deleted for good); also how often the reclaim runs. "
        "0 deletes at once (Nova's default).", float),
    Opt("DEFAULT", "long_rpc_timeout", 1800.0,
        "Seconds a bus call that does long work (a shelve's disk upload, a spawn on "
        "another host for unshelve or evacuate) waits for its reply.", float),
    Opt("DEFAULT", "shelved_offload_time", 0,
        "Seconds a shelved server keeps its host before it is offloaded (its guest "
        "destroyed, its resources freed): 0 at once, -1 never.", int),
    Opt("DEFAULT", "shelved_poll_interval", 3600.0,
        "Seconds between the conductor's checks for shelved servers due to be "
        "offloaded (shelved_offload_time > 0); 0 never checks.", float),
    Opt("DEFAULT", "service_down_time", 60.0,
        "Seconds without a heartbeat after which a service counts as down.", float),
    Opt("oslo_messaging_rabbit", "heartbeat_timeout_threshold", 60,
        "Seconds without AMQP heartbeats after which the broker connection counts as "
        "dead (heartbeats go every half of it).", int),
    Opt("oslo_messaging_rabbit", "rabbit_qos_prefetch_count", 100,
        "Messages a server takes from its topic queue before acknowledging them.", int),
    Opt("conductor", "recovery_interval", 20.0,
        "Seconds between looks for builds a dead service left behind; 0 turns it off.",
        float),
    Opt("conductor", "scheduling_timeout", 300.0,
        "Seconds a build may wait to be scheduled before it is failed with a fault.",
        float),
    Opt("conductor", "host_users", "",
        "Bus users that are compute hosts besides those named compute-<host>, as "
        "user:host pairs separated by commas. The conductor serves a host's user only "
        "that host's instances (and those moving to it)."),
    Opt("conductor", "trust_unidentified_senders", False,
        "Serve broker messages without an AMQP user-id as the cloud's own services' "
        "(only while services of a release before bus identities still run).", _bool),
    Opt("upgrade_levels", "compute", "",
        "Newest compute RPC version to send (e.g. 1.0) while some compute hosts run "
        "the previous release; empty: the newest this release has."),
    Opt("upgrade_levels", "conductor", "",
        "Newest conductor RPC version to send while conductors run the previous "
        "release; empty: the newest."),
    Opt("upgrade_levels", "network", "",
        "Newest network RPC version a compute host sends its host's network service "
        "while that service runs the previous release; empty: the newest."),
    Opt("upgrade_levels", "scheduler", "",
        "Newest scheduler RPC version to send while schedulers run the previous "
        "release; empty: the newest."),
    Opt("api", "listen", "127.0.0.1", "Address the API server binds to."),
    Opt("api", "port", 8774, "Port of the API server (compute, identity and image).", int),
    Opt("api", "workers", 1, "API processes serving [api] port (Nova's "
        "osapi_compute_workers): one binds it, the others share it. More than 1 needs "
        "transport_url = rabbit://…, since the extra processes reach the other services "
        "over the bus; the all-in-one default is 1.", int),
    Opt("api", "public_url", "", "Base URL clients use; empty means http://listen:port."),
    Opt("api", "max_limit", 1000, "Most items a list call returns in one page.", int),
    Opt("api", "max_filter_scan", 20000,
        "Most servers one list request reads to match its regular-expression filters "
        "(name, hostname, ip, ...) after the database's own filters; past it without "
        "a full page the request is refused with 400 asking for a narrower filter, "
        "rather than answering a short page that would pass for the end.", int),
    Opt("wsgi", "client_socket_timeout", 900.0,
        "Seconds an idle keep-alive connection to the API stays open. Longer than any "
        "client's polling interval, so a poll never meets a connection the server is "
        "just closing.", float),
    Opt("wsgi", "client_header_timeout", 60.0,
        "Seconds a client has to send a request's line and headers, from opening the "
        "connection (or from the first byte of a later request on it); a client that "
        "is slower, or sends nothing, is disconnected. (A request body that stops "
        "arriving for client_socket_timeout seconds is cut off too.) The metadata "
        "service applies both to guests.", float),
    Opt("oslo_middleware", "max_request_body_size", 114688,
        "Largest request body (bytes) the compute and identity APIs and the image API's "
        "JSON calls accept; larger ones get 413 without being read. Image data uploads "
        "stream and are bounded by [image] image_size_cap instead.", int),
    Opt("database", "connection", "",
        "Database URL: sqlite:///PATH, postgresql://user:password@host:port/db or "
        "mysql://user:password@host:port/db. Empty means SQLite under state_path. "
        "Compute and network hosts don't need it: they go through the conductor."),
    Opt("identity", "token_expiration", 3600, "Seconds a token stays valid.", int),
    Opt("identity", "admin_password", "admin", "Password of the bootstrap admin user."),
    Opt("identity", "demo_password", "demo", "Password of the bootstrap demo user."),
    Opt("identity", "region", "RegionOne", "Region named in the service catalog."),
    Opt("identity", "revocation_refresh", 1.0, "Seconds an API process keeps its copy of "
        "the token revocation events before rereading them even when no revocation was "
        "announced (a revocation through any API process is seen at once through the "
        "revocations generation in the database; this bounds a lost announcement).",
        float),
    Opt("service_user", "username", "nova",
        "User that services (compute hosts) authenticate as to call other APIs."),
    Opt("service_user", "password", "",
        "Its password. Empty in an all-in-one cloud: one is generated and kept in "
        "STATE/service-password."),
    Opt("service_user", "project_name", "service", "Project of the service user."),
    Opt("service_user", "auth_url", "",
        "Identity endpoint services authenticate at; empty means this cloud's own."),
    Opt("image", "image_size_cap", 1099511627776,
        "Largest image (bytes) an upload may store; larger uploads get 413.", int),
    Opt("fake", "vcpus", 64, "vCPUs the fake driver reports.", int),
    Opt("fake", "memory_mb", 262144, "Memory (MiB) the fake driver reports.", int),
    Opt("fake", "disk_gb", 10240, "Disk (GiB) the fake driver reports.", int),
    Opt("fake", "spawn_delay", 0.0, "Seconds the fake driver takes to spawn a guest.", float),
    Opt("fake", "scheduling_delay", 0.0,
        "Seconds the conductor waits before scheduling each build request, so that tests "
        "can catch builds still scheduling (e.g. at a kill -9); leave 0 in a real cloud.",
        float),
    Opt("fake", "extra_hosts", 0,
        "All-in-one clouds with the fake driver: this many more compute hosts in the same "
        "process (fake-host-2, fake-host-3, ...), each with its own service record and "
        "resource provider; for scheduling tests and benchmarks.", int),
    Opt("fake", "live_migration_steps", 5,
        "Rounds of memory copying the fake driver's live migration takes (its progress "
        "shows in /servers/{id}/migrations; force-complete ends it at once).", int),
    Opt("fake", "live_migration_step_delay", 0.05,
        "Seconds each round of the fake driver's live migration takes.", float),
    Opt("DEFAULT", "allow_resize_to_same_host", True,
        "Let the scheduler keep a resized server on its own host (cold migrations always "
        "leave it). On by default, unlike Nova's, because a one-host cloud is the "
        "embedded default; set false to make every resize move.", _bool),
    Opt("scheduler", "cpu_allocation_ratio", 16.0, "Virtual CPUs per physical CPU.", float),
    Opt("scheduler", "ram_allocation_ratio", 1.5, "Virtual RAM per physical RAM.", float),
    Opt("scheduler", "disk_allocation_ratio", 1.0, "Virtual disk per physical disk.", float),
    Opt("scheduler", "max_attempts", 3, "Hosts tried for one build before giving up.", int),
    Opt("filter_scheduler", "enabled_filters",
        "AvailabilityZoneFilter,ComputeFilter,AggregateInstanceExtraSpecsFilter,"
        "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,DifferentHostFilter,"
        "SameHostFilter",
        "Host filters the scheduler runs, in this order (comma-separated names; a name no "
        "module registers is skipped with a warning). The forced-host check and the "
        "resource (placement) check always run first."),
    Opt("filter_scheduler", "weight_classes", "all",
        "Host weighers (comma-separated names such as RAMWeigher, CPUWeigher, DiskWeigher, "
        "or Nova's dotted paths; all: every registered weigher)."),
    Opt("filter_scheduler", "ram_weight_multiplier", 1.0,
        "RAMWeigher: positive spreads servers over hosts with most free RAM, negative "
        "stacks them.", float),
    Opt("filter_scheduler", "cpu_weight_multiplier", 1.0,
        "CPUWeigher: positive prefers hosts with most free vCPUs, negative the fewest.",
        float),
    Opt("filter_scheduler", "disk_weight_multiplier", 1.0,
        "DiskWeigher: positive prefers hosts with most free disk, negative the least.",
        float),
    Opt("filter_scheduler", "host_subset_size", 1,
        "Pick randomly among this many best-weighed hosts (1: always the best).", int),
    # server group soft policies (scheduler/group_filters.py)
    Opt("filter_scheduler", "soft_affinity_weight_multiplier", 1.0,
        "How strongly a soft-affinity group prefers hosts with more of its members; "
        "0 turns the preference off.", float),
    Opt("filter_scheduler", "soft_anti_affinity_weight_multiplier", 1.0,
        "How strongly a soft-anti-affinity group prefers hosts with fewer of its members; "
        "0 turns the preference off.", float),
    Opt("qemu", "virt_type", "auto",
        "Accelerator of the QEMU driver: auto (KVM when a probe guest proves it works, "
        "else TCG), kvm (required) or qemu (TCG, software emulation)."),
    Opt("qemu", "instances_path", "",
        "Directory of the guests' disks, sockets and logs. Empty means STATE/instances."),
    Opt("qemu", "image_cache_path", "",
        "Directory of cached base images. Empty means INSTANCES_PATH/_base."),
    Opt("qemu", "remove_unused_base_images", True,
        "Let the image cache manager remove base images no guest uses.", _bool),
    Opt("qemu", "remove_unused_original_minimum_age_seconds", 86400,
        "Seconds a base image must have gone unused before it is removed.", int),
    Opt("qemu", "reboot_timeout", 60.0,
        "Seconds a soft reboot waits for the guest to shut down before forcing it.", float),
    Opt("qemu", "console_log_max_bytes", 1048576,
        "Bytes of each guest's serial console log kept when the guest starts again.", int),
    Opt("qemu", "machine_type", "pc",
        "QEMU machine type of guests whose image sets no hw_machine_type: pc or q35."),
    Opt("qemu", "tcg_tb_size", 32,
        "MiB of translated-code cache per guest under TCG (QEMU's own default is larger).",
        int),
    Opt("qemu", "detach_timeout", 30.0,
        "Seconds a guest is given to release a NIC being detached (ACPI hot-unplug).",
        float),
    Opt("qemu", "network", "user",
        "Guest network card until the network service wires guests: user (an isolated "
        "user-mode NIC with no way out) or none."),
    # --- moving guests between hosts (as Nova's [libvirt] live_migration_*) ---
    Opt("qemu", "live_migration_inbound_addr", "",
        "Address other compute hosts reach this one on to send it guests (memory and "
        "disks of migrations). Empty means the address of this host's default route "
        "(127.0.0.1 without one)."),
    Opt("qemu", "live_migration_port_range", "49152:49215",
        "FIRST:LAST ports this host takes incoming guests' memory and disks on."),
    Opt("qemu", "live_migration_bandwidth", 0,
        "MiB/s a live migration may use; 0 means no limit.", int),
    Opt("qemu", "live_migration_downtime", 500,
        "Longest pause (ms) allowed at the switch-over of a live migration, reached in "
        "LIVE_MIGRATION_DOWNTIME_STEPS steps.", int),
    Opt("qemu", "live_migration_downtime_steps", 10,
        "Steps in which the allowed pause grows to LIVE_MIGRATION_DOWNTIME.", int),
    Opt("qemu", "live_migration_downtime_delay", 75,
        "Seconds per GiB of guest memory between two of those steps.", int),
    Opt("qemu", "live_migration_completion_timeout", 800,
        "Seconds per GiB of memory and disk to copy after which a live migration gets "
        "LIVE_MIGRATION_TIMEOUT_ACTION; 0 means never.", int),
    Opt("qemu", "live_migration_timeout_action", "abort",
        "What a live migration past its completion timeout gets: abort (the guest stays "
        "on its source) or force_complete (post-copy when permitted, else a pause)."),
    Opt("qemu", "live_migration_permit_post_copy", False,
        "Let force-complete (and the timeout action) switch a live migration to "
        "post-copy: the guest runs on the destination while its memory follows.", _bool),
    Opt("qemu", "live_migration_permit_auto_converge", False,
        "Let QEMU slow the guest's vCPUs down when it dirties memory faster than it "
        "can be copied.", _bool),
    # --- consoles: what compute hosts expose, the proxies, and their tokens ---
    Opt("vnc", "enabled", True, "Give guests a VNC display (and run the VNC proxies).", _bool),
    Opt("vnc", "server_listen", "127.0.0.1",
        "Address on the compute host the guests' VNC displays listen on."),
    Opt("vnc", "server_proxyclient_address", "127.0.0.1",
        "Address of this compute host the console proxies connect to for its guests' "
        "VNC displays."),
    Opt("vnc", "novncproxy_host", "127.0.0.1", "Address the noVNC websocket proxy listens on."),
    Opt("vnc", "novncproxy_port", 6080,
        "Port of the noVNC websocket proxy (it serves the noVNC web client too); "
        "0 picks a free one.", int),
    Opt("vnc", "novncproxy_base_url", "",
        "Page of the noVNC client in console URLs; empty means "
        "http://NOVNCPROXY_HOST:NOVNCPROXY_PORT/vnc_lite.html."),
    Opt("vnc", "xvpvncproxy_host", "127.0.0.1",
        "Address the proxy for native VNC clients listens on (the console token is the "
        "VNC password)."),
    Opt("vnc", "xvpvncproxy_port", 6081,
        "Port of the proxy for native VNC clients; 0 picks a free one.", int),
    Opt("vnc", "xvpvncproxy_base_url", "",
        "Address in native VNC console URLs; empty means vnc://XVPVNCPROXY_HOST:PORT."),
    Opt("spice", "enabled", True, "Give guests a SPICE display (and run the SPICE proxy).",
        _bool),
    Opt("spice", "server_listen", "127.0.0.1",
        "Address on the compute host the guests' SPICE displays listen on."),
    Opt("spice", "server_proxyclient_address", "127.0.0.1",
        "Address of this compute host the SPICE proxy connects to."),
    Opt("spice", "html5proxy_host", "127.0.0.1", "Address the SPICE HTML5 proxy listens on."),
    Opt("spice", "html5proxy_port", 6082,
        "Port of the SPICE HTML5 proxy (it serves the spice-html5 client too); "
        "0 picks a free one.", int),
    Opt("spice", "html5proxy_base_url", "",
        "Page of the spice-html5 client in console URLs; empty means "
        "http://HTML5PROXY_HOST:HTML5PROXY_PORT/spice_auto.html."),
    Opt("serial_console", "enabled", True,
        "Give guests an interactive serial port on TCP (and run the serial proxy).", _bool),
    Opt("serial_console", "port_range", "10000:20000",
        "TCP ports (first:last) the guests' serial ports and SPICE displays are given from."),
    Opt("serial_console", "proxyclient_address", "127.0.0.1",
        "Address of this compute host the serial proxy connects to; the serial ports "
        "listen on it too."),
    Opt("serial_console", "serialproxy_host", "127.0.0.1",
        "Address the serial console websocket proxy listens on."),
    Opt("serial_console", "serialproxy_port", 6083,
        "Port of the serial console websocket proxy; 0 picks a free one.", int),
    Opt("serial_console", "base_url", "",
        "Websocket address in serial console URLs; empty means "
        "ws://SERIALPROXY_HOST:SERIALPROXY_PORT/."),
    Opt("consoleauth", "token_ttl", 600, "Seconds a console token stays valid.", int),
    Opt("consoleauth", "key_file", "",
        "Key sealing the passwords of native VNC console tokens (the VNC challenge needs "
        "them, so they can't be hashed only). Every API and conductor host needs the same "
        "file; empty means STATE/keys/console-auth."),
    Opt("network", "host_driver", "auto",
        "What makes each host's networking real: linux (bridges, dnsmasq, nftables), "
        "noop, or auto (linux unless the compute driver is fake)."),
    Opt("network", "resync_interval", 60.0,
        "Seconds between re-applying a host's whole network state from the database "
        "(repairs what was lost, e.g. by a reboot); 0 turns it off.", float),
    Opt("network", "network_manager", "flat_dhcp",
        "How guests are networked, as nova-network's managers did it: flat (one bridge, "
        "addresses injected through the config drive), flat_dhcp (one bridge, dnsmasq "
        "hands out the addresses) or vlan (a VLAN, bridge, subnet and dnsmasq per project)."),
    Opt("network", "fixed_range", "10.0.0.0/24",
        "Guests' fixed addresses. flat and flat_dhcp: the default network created at the "
        "first start. vlan: the range project networks of network_size are cut from."),
    Opt("network", "tenant_subnet_ranges", "10.0.0.0/8",
        "Comma-separated CIDRs a member's subnet (network API) must lie inside, besides "
        "fixed_range; admins may use any range but the special-purpose ones and the "
        "floating pools."),
    Opt("network", "auto_allocate_subnet_ranges", "",
        "Comma-separated CIDRs auto-allocated topologies' subnets (get-me-a-network) are "
        "cut from, a free /24 each; empty: tenant_subnet_ranges and fixed_range."),
    Opt("network", "network_size", 256,
        "Addresses in each project network (vlan mode): a power of two from 4 to 1024.", int),
    Opt("network", "default_network_label", "private",
        "Label of the network created at the first start (flat and flat_dhcp); it names "
        "the network in servers' `addresses`."),
    Opt("network", "flat_network_bridge", "nvbr0", "Bridge of flat and flat_dhcp networks."),
    Opt("network", "flat_interface", "",
        "Physical interface added to the flat bridge; empty: guests reach the world only "
        "through the host's NAT."),
    Opt("network", "vlan_interface", "",
        "Physical interface project VLANs ride on (vlan mode); empty: VLANs stay on this "
        "host's bridges."),
    Opt("network", "vlan_start", 100, "First VLAN id given to a project network.", int),
    Opt("network", "dns1", "", "First DNS server guests are told; empty: the gateway."),
    Opt("network", "dns2", "", "Second DNS server guests are told; empty: none."),
    Opt("network", "network_device_mtu", 0, "MTU of guest networks; 0: the default.", int),
    Opt("network", "floating_ip_pools", "public=172.24.4.0/24",
        "Floating IP pools created at start: name=cidr[,name=cidr]. Every address but "
        "the network and broadcast ones can be allocated (at most 1024 per pool)."),
    Opt("network", "default_floating_pool", "public",
        "Pool a floating IP comes from when a request names none."),
    Opt("network", "public_interface", "",
        "Interface floating IPs are added to on network hosts; empty: the addresses are "
        "only NATed, not configured on a device."),
    Opt("network", "auto_assign_floating_ip", False,
        "Give every new server a floating IP from the default pool (released with it).",
        _bool),
    Opt("network", "multi_host", False,
        "Every compute host serves its own guests' networks (bridge, DHCP, NAT); else one "
        "network host serves every network. (Only the single-host layout is done so "
        "far: with one network service every network is served by it.)", _bool),
    Opt("metadata", "listen", "127.0.0.1",
        "Address the metadata service binds to; the DNAT rule for 169.254.169.254:80 "
        "sends guests' requests here."),
    Opt("metadata", "port", 8775, "Port of the metadata service.", int),
    Opt("metadata", "vendordata_json", "",
        "Path of a JSON file (an object) every guest gets as vendor_data.json; empty: {}."),
    Opt("metadata", "trusted_proxies", "",
        "Comma-separated addresses or CIDRs of proxies whose X-Forwarded-For header names "
        "the guest; empty: the header is ignored and the source address is the guest."),
    # policy (policy.py)
    Opt("oslo_policy", "policy_file", "policy.yaml",
        "YAML file of policy rules overriding the defaults by name (`novalet manage "
        "policy-sample` prints them); a relative path is under the state dir. Re-read "
        "when it changes; a missing file means the defaults."),
    # quotas (compute/quotas.py): the last fallback after per-user, per-project and
    # quota class "default" limits; -1 is unlimited.
    Opt("quota", "instances", 10, "Servers a project may have.", int),
    Opt("quota", "cores", 20, "Instance cores (VCPUs) a project may use.", int),
    Opt("quota", "ram", 51200, "Megabytes of instance RAM a project may use.", int),
    Opt("quota", "metadata_items", 128, "Metadata items a server may have.", int),
    Opt("quota", "injected_files", 5, "Personality files a server create or rebuild "
        "may inject.", int),
    Opt("quota", "injected_file_content_bytes", 10240,
        "Bytes of content an injected file may have.", int),
    Opt("quota", "injected_file_path_length", 255,
        "Characters the path of an injected file may have.", int),
    Opt("quota", "key_pairs", 100, "Key pairs a user may have.", int),
    Opt("quota", "server_groups", 10, "Server groups a project may have.", int),
    Opt("quota", "server_group_members", 10, "Servers a server group may hold.", int),
    Opt("quota", "floating_ips", 10, "Floating IPs a project may have "
        "(shown by the quota API below microversion 2.36).", int),
    Opt("quota", "fixed_ips", -1, "Fixed IPs a project may have "
        "(shown by the quota API below microversion 2.36).", int),
    Opt("quota", "security_groups", 10, "Security groups a project may have "
        "(shown by the quota API below microversion 2.36).", int),
    Opt("quota", "networks", 100, "Networks a project may have through the network API "
        "(Neutron's default; not shown by os-quota-sets).", int),
    Opt("quota", "routers", 10, "Routers a project may have through the network API "
        "(Neutron's default; not shown by os-quota-sets).", int),
    Opt("quota", "ports", 500, "Ports a project may have through the network API, its "
        "servers' NICs counted (Neutron's default; not shown by os-quota-sets).", int),
    Opt("quota", "security_group_rules", 20, "Rules a security group may have "
        "(shown by the quota API below microversion 2.36).", int),
]

_BY_KEY = {(o.section, o.name): o for o in OPTIONS}


class ConfigError(ValueError):
    """The configuration file or a flag holds a value the option can't take."""


@dataclass
class Config:
    """Option values by section; reads fall back to the declared default."""

    values: dict[tuple[str, str], Any] = field(default_factory=dict)

    def get(self, section: str, name: str) -> Any:
        key = (section, name)
        if key in self.values:
            return self.values[key]
        return _BY_KEY[key].default

    def set(self, section: str, name: str, raw: Any) -> None:
        opt = _BY_KEY.get((section, name))
        if opt is None:
            raise ConfigError(f"unknown option [{section}] {name}")
        if isinstance(raw, str) and opt.type is not str:
            try:
                raw = opt.type(raw)
            except ValueError as exc:
                raise ConfigError(f"[{section}] {name}: {exc}") from None
        self.values[(section, name)] = raw

    @property
    def state_path(self) -> Path:
        path = self.get("DEFAULT", "state_path") or platformdirs.user_data_dir("novalet")
        return Path(path).expanduser().resolve()

    @property
    def database_url(self) -> str:
        url = self.get("database", "connection")
        return url or f"sqlite:///{self.state_path / 'novalet.sqlite'}"

    @property
    def public_url(self) -> str:
        url = self.get("api", "public_url")
        if url:
            return str(url).rstrip("/")
        return f"http://{url_host(self.get('api', 'listen'))}:{self.get('api', 'port')}"


def load(paths: str | os.PathLike[str] | list[str] | None) -> Config:
    """Read INI files (none, one, or several: later ones override earlier ones, as
    Nova's repeated --config-file) into a Config; unknown options are an error."""
    conf = Config()
    if paths is None:
        return conf
    # DEFAULT is read as an ordinary section: its options are not inherited.
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    for path in paths if isinstance(paths, list) else [paths]:
        if not parser.read(path):
            raise ConfigError(f"cannot read configuration file {path}")
    for section in parser.sections():
        for name, value in parser.items(section, raw=True):
            conf.set(section, name, value)
    return conf


def sample() -> str:
    """The sample configuration file, generated from OPTIONS."""
    lines: list[str] = []
    section = None
    for opt in OPTIONS:
        if opt.section != section:
            section = opt.section
            lines += ["" if lines else "", f"[{section}]"]
        default = "" if opt.name == "host" else opt.default
        if isinstance(default, bool):
            default = str(default).lower()
        lines += [f"# {opt.help}", f"#{opt.name} = {default}"]
    return "\n".join(lines).lstrip() + "\n"
