"""The real `openstack` CLI on quotas: `quota show` and `quota set` against `novalet up`."""

import pytest

from tests.integration.conftest import RunningCloud

pytestmark = pytest.mark.integration


def _rows(value: object) -> dict[str, object]:
    """`quota show -f json` prints an object (older clients) or Resource/Limit rows."""
    if isinstance(value, dict):
        return value
    assert isinstance(value, list)
    return {row["Resource"]: row["Limit"] for row in value}


def test_quota_show_and_set(running_cloud: RunningCloud) -> None:
    def show(*args: str) -> dict[str, object]:
        return _rows(running_cloud.openstack_json("quota", "show", "--compute", *args,
                                                  cloud="novalet"))

    shown = show("demo")
    assert shown["instances"] == 10 and shown["cores"] == 20 and shown["ram"] == 51200
    running_cloud.openstack("quota", "set", "--instances", "5", "demo", cloud="novalet")
    assert show("demo")["instances"] == 5
    assert show("--default")["instances"] == 10
    limits = running_cloud.openstack_json("limits", "show", "--absolute")
    assert isinstance(limits, list)
    by_name = {row["Name"]: row["Value"] for row in limits}
    assert by_name["instances"] == 5
    # a member may not change quotas
    project = running_cloud.openstack_json("project", "show", "demo", cloud="novalet")
    result = running_cloud.openstack("quota", "set", "--instances", "50",
                                     project["id"], check=False)  # type: ignore[index]
    assert result.returncode != 0
    assert show("demo")["instances"] == 5
