"""What the update and rebuild answers carry at each microversion, as Nova's views
(Tempest checks them with additionalProperties false), and the 2.98 image
properties and canonical access addresses."""

from typing import Any

from tests.functional.conftest import Api, boot, ensure_image, wait_for

S = "/compute/v2.1/servers"

# What Nova's update and rebuild views leave out below 2.75.
EXTENDED = {"OS-EXT-AZ:availability_zone", "config_drive", "OS-SRV-USG:launched_at",
            "OS-SRV-USG:terminated_at", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
            "OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached"}
ADMIN = {"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
         "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:reservation_id",
         "OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:hostname"}


async def _update(api: Api, sid: str, version: str, user: str = "demo") -> dict[str, Any]:
    resp = await api.request("PUT", f"{S}/{sid}", user=user, version=version,
                             json={"server": {"name": "renamed"}})
    assert resp.status_code == 200, resp.text
    server: dict[str, Any] = resp.json()["server"]
    return server


async def _rebuild(api: Api, sid: str, version: str, user: str = "demo",
                   **extra: Any) -> dict[str, Any]:
    resp = await api.request("POST", f"{S}/{sid}/action", user=user, version=version,
                             json={"rebuild": {"imageRef": await ensure_image(api), **extra}})
    assert resp.status_code == 202, resp.text
    await wait_for(api, sid, "ACTIVE")
    server: dict[str, Any] = resp.json()["server"]
    return server


async def test_update_leaves_out_extended_attributes_below_2_75(api: Api) -> None:
    sid = (await boot(api, networks="auto"))["id"]
    for user in ("demo", "admin"):
        old = await _update(api, sid, "2.74", user)
        assert not (EXTENDED | ADMIN | {"key_name", "security_groups", "host_status",
                                        "OS-EXT-SRV-ATTR:user_data"}) & set(old)
        assert old["name"] == "renamed" and old["locked_reason"] is None
        [address] = old["addresses"]["private"]
        assert set(address) == {"version", "addr"}  # no OS-EXT-IPS type and MAC
        new = await _update(api, sid, "2.75", user)
        assert EXTENDED | {"key_name"} <= set(new)
        assert "OS-EXT-IPS:type" in new["addresses"]["private"][0]
    admin = await _update(api, sid, "2.75", "admin")
    assert ADMIN | {"OS-EXT-SRV-ATTR:user_data", "host_status"} <= set(admin)
    member = await _update(api, sid, "2.90")
    assert member["OS-EXT-SRV-ATTR:hostname"] and "OS-EXT-SRV-ATTR:host" not in member


async def test_rebuild_key_name_from_2_54_user_data_from_2_57(api: Api) -> None:
    sid = (await boot(api))["id"]
    old = await _rebuild(api, sid, "2.53")
    assert not (EXTENDED | {"key_name", "user_data", "security_groups"}) & set(old)
    assert old["adminPass"]
    at_254 = await _rebuild(api, sid, "2.54")
    assert at_254["key_name"] is None and "user_data" not in at_254
    at_257 = await _rebuild(api, sid, "2.57", user_data="aGVsbG8=")
    assert at_257["user_data"] == "aGVsbG8="
    assert not (EXTENDED | ADMIN) & set(at_257)


async def test_rebuild_shows_everything_from_2_75_but_admin_user_data(api: Api) -> None:
    sid = (await boot(api, user_data="aGk="))["id"]
    admin_274 = await _rebuild(api, sid, "2.74", user="admin")
    assert not (EXTENDED | ADMIN) & set(admin_274)
    admin = await _rebuild(api, sid, "2.75", user="admin")
    assert EXTENDED | ADMIN <= set(admin)
    assert admin["user_data"] == "aGk=" and "OS-EXT-SRV-ATTR:user_data" not in admin
    member = await _rebuild(api, sid, "2.75")
    assert EXTENDED <= set(member) and not ADMIN & set(member)


async def test_image_properties_from_2_98_are_strings_without_image_attributes(
        api: Api) -> None:
    resp = await api.request("POST", "/image/v2/images", user="admin", json={
        "name": "props", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public", "min_ram": 16, "min_disk": 1,
        "os_distro": "debian", "hw_disk_bus": "virtio"})
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    await api.request("PUT", f"/image/v2/images/{image_id}/file", user="admin",
                      content=b"disk" * 64, headers={"Content-Type": "application/octet-stream"})
    sid = (await boot(api, imageRef=image_id, flavorRef="2"))["id"]
    resp = await api.request("GET", f"{S}/{sid}", version="2.97")
    assert "properties" not in resp.json()["server"]["image"]
    for version in ("2.98", "2.100"):
        resp = await api.request("GET", f"{S}/{sid}", version=version)
        properties = resp.json()["server"]["image"]["properties"]
        assert properties["os_distro"] == "debian" and properties["hw_disk_bus"] == "virtio"
        assert not {"min_ram", "min_disk", "disk_format", "container_format"} & set(properties)
        assert all(isinstance(v, str) for v in properties.values())


async def test_access_addresses_are_kept_in_canonical_form(api: Api) -> None:
    server = await boot(api, accessIPv4="1.1.1.1",
                        accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2")
    assert server["accessIPv4"] == "1.1.1.1" and server["accessIPv6"] == "::babe:dc0c:1602"
    resp = await api.request("PUT", f"{S}/{server['id']}", json={"server": {
        "accessIPv6": "2001:DB8:0:0:0:0:0:1"}})
    assert resp.json()["server"]["accessIPv6"] == "2001:db8::1"
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"rebuild": {
        "imageRef": await ensure_image(api), "accessIPv6": "::FFFF:10.0.0.1"}})
    assert resp.json()["server"]["accessIPv6"] == "::ffff:10.0.0.1"
    resp = await api.request("PUT", f"{S}/{server['id']}", json={"server": {
        "accessIPv6": "not-an-address"}})
    assert resp.status_code == 400
