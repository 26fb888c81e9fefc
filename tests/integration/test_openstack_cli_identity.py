"""Identity administration with the real `openstack` CLI against a running `novalet up`."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.integration.conftest import BIN, RunningCloud

pytestmark = pytest.mark.integration


def _admin(cloud: RunningCloud, *args: str) -> Any:
    return cloud.openstack_json(*args, cloud="novalet")


def _demo(cloud: RunningCloud, *args: str) -> Any:
    return cloud.openstack_json(*args)


def test_domains_and_groups(running_cloud: RunningCloud) -> None:
    cli = running_cloud.openstack
    domain = _admin(running_cloud, "domain", "create", "--description", "ACME", "acme")
    assert domain["name"] == "acme" and domain["enabled"] is True
    listed = _admin(running_cloud, "domain", "list")
    assert {d["Name"] for d in listed} >= {"Default", "acme"}
    cli("domain", "set", "--disable", "acme", cloud="novalet")
    cli("domain", "delete", "acme", cloud="novalet")
    group = _admin(running_cloud, "group", "create", "--domain", "default", "devs")
    assert group["name"] == "devs"
    cli("group", "add", "user", "devs", "demo", cloud="novalet")
    result = cli("group", "contains", "user", "devs", "demo", cloud="novalet")
    assert "demo in group devs" in result.stdout
    cli("role", "add", "--group", "devs", "--project", "admin", "reader", cloud="novalet")
    rows = _admin(running_cloud, "role", "assignment", "list", "--group", "devs", "--names")
    assert [(r["Role"], r["Project"]) for r in rows] == [
        ("reader", "admin@Default")]
    # the membership counts: demo may now scope to the admin project
    projects = _demo(running_cloud, "project", "list", "--my-projects")
    assert {p["Name"] for p in projects} == {"admin", "demo"}
    cli("group", "remove", "user", "devs", "demo", cloud="novalet")
    cli("group", "delete", "devs", cloud="novalet")


def test_application_credential_authenticates_a_command(running_cloud: RunningCloud) -> None:
    cred = _demo(running_cloud, "application", "credential", "create",
                                        "--description", "for CI", "ci")
    cred = {k.lower(): v for k, v in cred.items()}  # the CLI capitalises the keys
    assert cred["name"] == "ci" and cred["secret"]
    clouds = yaml.safe_load(running_cloud.clouds_yaml.read_text())
    auth_url = clouds["clouds"]["novalet-demo"]["auth"]["auth_url"]
    result = subprocess.run(
        [str(BIN / "openstack"), "--os-auth-type", "v3applicationcredential",
         "--os-auth-url", auth_url,
         "--os-application-credential-id", cred["id"],
         f"--os-application-credential-secret={cred['secret']}",
         "server", "list", "-f", "json"],
        env=running_cloud.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + running_cloud.tail()
    assert result.stdout.strip() == "[]"
    running_cloud.openstack("application", "credential", "delete", "ci")
    result = subprocess.run(
        [str(BIN / "openstack"), "--os-auth-type", "v3applicationcredential",
         "--os-auth-url", auth_url,
         "--os-application-credential-id", cred["id"],
         f"--os-application-credential-secret={cred['secret']}",
         "server", "list"],
        env=running_cloud.env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_token_issue_and_revoke(running_cloud: RunningCloud) -> None:
    token = _demo(running_cloud, "token", "issue")
    running_cloud.openstack("token", "revoke", token["id"])
    result = running_cloud.openstack("token", "revoke", token["id"],
                                     check=False)
    assert result.returncode != 0
