"""Handler for GET /servers/{id}/diagnostics (admin by default): what the server's
host measures of the running guest. From 2.48 in the standard form, the same for
every driver; below, flattened into the libvirt-style keys of the v2 API."""

from __future__ import annotations

import dataclasses
from typing import Any

from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.compute.diagnostics import Diagnostics
from novalet.policy import enforce

STANDARD = "2.48"


def standard_view(diags: Diagnostics) -> dict[str, Any]:
    """The 2.48 form: the model's fields and counts, without the devices' names."""
    def unnamed(part: Any) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(part).items() if k != "name"}
    return {
        "state": diags.state, "driver": diags.driver, "hypervisor": diags.hypervisor,
        "hypervisor_os": diags.hypervisor_os, "uptime": diags.uptime,
        "config_drive": diags.config_drive,
        "num_cpus": len(diags.cpu_details), "num_nics": len(diags.nic_details),
        "num_disks": len(diags.disk_details),
        "memory_details": dataclasses.asdict(diags.memory_details),
        "cpu_details": [unnamed(c) for c in diags.cpu_details],
        "nic_details": [unnamed(n) for n in diags.nic_details],
        "disk_details": [unnamed(d) for d in diags.disk_details]}


def legacy_view(diags: Diagnostics) -> dict[str, Any]:
    """Below 2.48: one flat object of counters, named as libvirt names them (cpu0_time,
    memory in KiB, <disk>_read..., <nic>_rx...); counters not measured are left out."""
    flat: dict[str, Any] = {f"cpu{c.id}_time": c.time for c in diags.cpu_details}
    if diags.memory_details.maximum is not None:
        flat["memory"] = diags.memory_details.maximum * 1024
    if diags.memory_details.used is not None:
        flat["memory-rss"] = diags.memory_details.used * 1024
    for i, disk in enumerate(diags.disk_details):
        name = disk.name or f"disk{i}"
        flat.update({f"{name}_read": disk.read_bytes, f"{name}_read_req": disk.read_requests,
                     f"{name}_write": disk.write_bytes,
                     f"{name}_write_req": disk.write_requests,
                     f"{name}_errors": disk.errors_count})
    for i, nic in enumerate(diags.nic_details):
        name = nic.name or f"nic{i}"
        flat.update({f"{name}_rx": nic.rx_octets, f"{name}_rx_drop": nic.rx_drop,
                     f"{name}_rx_errors": nic.rx_errors, f"{name}_rx_packets": nic.rx_packets,
                     f"{name}_tx": nic.tx_octets, f"{name}_tx_drop": nic.tx_drop,
                     f"{name}_tx_errors": nic.tx_errors, f"{name}_tx_packets": nic.tx_packets})
    return {k: v for k, v in flat.items() if v is not None}


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-server-diagnostics", instance.project_id)
    diags = await req.app.compute.diagnostics(req.ctx, instance.uuid)
    return standard_view(diags) if req.at_least(STANDARD) else legacy_view(diags)
