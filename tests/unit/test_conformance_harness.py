"""The Tempest harness's own logic (tests/conformance): per-test results from
class-level rows, failure digests, the lists, and tempest.conf per profile."""

from __future__ import annotations

import configparser
from pathlib import Path

from tests.conformance import cloud, profiles, results

A = "tempest.api.compute.a.test_x.XTest"
LISTED = [f"{A}.test_one[id-1]", f"{A}.test_two[id-2,negative]", "tempest.api.compute.b.T.t[id-3]"]
CSV = ("test,status,start_time,stop_time\n"
       f"setUpClass ({A}),fail,t,t\n"
       '"tempest.api.compute.b.T.t[id-3]",success,t,t\n')
OUTPUT = """{0} setUpClass (tempest.api.compute.a.test_x.XTest) ... FAILED

Captured traceback:
~~~~~~~~~~~~~~~~~~~
    Traceback (most recent call last):

      File "/v/tempest/lib/common/rest_client.py", line 877, in _error_checker
    raise exceptions.NotFound(resp_body, resp=resp)

    tempest.lib.exceptions.NotFound: Object not found
Details: {'code': 404, 'message': 'The resource could not be found.'}

{1} tempest.api.compute.b.T.t [0.1s] ... FAILED

Captured traceback:
~~~~~~~~~~~~~~~~~~~
      File "/v/tempest/api/compute/b.py", line 3, in t
    self.client.migrate(server)

    tempest.lib.exceptions.BadRequest: Bad request
Details: {'code': 400, 'message': 'There is no such action: migrate'}

Captured pythonlogging:
~~~~~~~~~~~~~~~~~~~~~~~
    Request (T:t): 400 POST http://127.0.0.1:1/compute/v2.1/servers/{SID}/action 0.001s
    Request (T:_run_cleanups): 404 GET http://127.0.0.1:1/compute/v2.1/servers/{SID} 0.001s
{1} tempest.api.compute.b.T.u [0.1s] ... ok
""".replace("{SID}", "0b7ef0b6-5a4f-4a5e-8f1b-0d1f27d2a0c1")
LOG = ("INFO Request (XTest:setUpClass): 404 GET http://127.0.0.1:1/compute/v2.1/os-hosts 0.1s\n"
       "INFO Request (XTest:setUpClass): 200 GET http://127.0.0.1:1/compute/v2.1/flavors 0.1s\n")


def test_a_failed_setup_class_fails_each_of_its_tests() -> None:
    statuses = results.expand(results.parse_csv(CSV), LISTED)
    assert statuses == {f"{A}.test_one[id-1]": "fail", f"{A}.test_two[id-2,negative]": "fail",
                        "tempest.api.compute.b.T.t[id-3]": "success"}


def test_failures_are_digested_and_keyed_by_refused_request_and_message() -> None:
    details = results.failure_details(OUTPUT)
    assert set(details) == {f"setUpClass ({A})", "tempest.api.compute.b.T.t"}
    migrate = details["tempest.api.compute.b.T.t"]
    assert migrate[0] == "tempest.lib.exceptions.BadRequest: Bad request"
    # the cleanup's 404 (polling a deleted server) is no cause
    assert [d for d in migrate if d.startswith("->")] == [
        "-> 400 POST /compute/v2.1/servers/0b7ef0b6-5a4f-4a5e-8f1b-0d1f27d2a0c1/action"]
    assert results.cause(migrate) == (
        "400 POST /compute/v2.1/servers/{id}/action: There is no such action: migrate")
    results.add_fixture_requests(details, LOG)
    assert results.cause(details[f"setUpClass ({A})"]) == (
        "404 GET /compute/v2.1/os-hosts: The resource could not be found.")


def test_the_verdict_fails_on_a_listed_test_that_did_not_pass(tmp_path: Path) -> None:
    statuses = {"t.a": "success", "t.b": "fail", "t.c": "skip", "t.d": "success"}
    verdict = results.Verdict(statuses, required={"t.a", "t.b", "t.gone"}, nova={"t.a", "t.c"})
    assert verdict.regressions == ["t.b", "t.gone"]
    assert verdict.newly_passing == ["t.d"]
    assert verdict.nova_gap == ["t.c"]
    assert verdict.summary()[0] == "2 passed, 1 failed, 1 skipped (4 results)"
    listed = tmp_path / "passing.txt"
    listed.write_text("# header\nt.a\n")
    assert results.grow(listed, verdict, "# header\n") == 1
    assert results.read_list(listed) == {"t.a", "t.d"}  # grows; never drops t.a


def test_profiles_fill_nova_flags_and_full_turns_features_on(tmp_path: Path) -> None:
    run = profiles.Run(workdir=tmp_path, identity_url="http://h/identity/v3",
                       admin_password="pw", images=("i1", "i2"), max_microversion="2.100",
                       public_network=("ext-id", "public"), fixed_network="private",
                       extensions=("router", "port-security"))
    nova, full = (configparser.RawConfigParser(), configparser.RawConfigParser())
    nova.read_string(profiles.tempest_conf("nova", run))
    full.read_string(profiles.tempest_conf("full", run))
    assert nova.get("compute", "image_ref_alt") == "i2"
    assert nova.get("compute", "max_microversion") == "2.100"
    assert nova.get("auth", "test_accounts_file") == str(tmp_path / "accounts.yaml")
    assert nova.get("compute-feature-enabled", "snapshot") == "false"
    assert full.get("compute-feature-enabled", "snapshot") == "true"
    assert full.get("compute-feature-enabled", "live_migration") == "true"  # Nova's flags stay
    # the network API in both: Neutron on, its external network and extensions
    for conf in (nova, full):
        assert conf.get("service_available", "neutron") == "true"
        assert conf.get("compute-feature-enabled", "interface_attach") == "true"
        assert conf.get("network", "public_network_id") == "ext-id"
        assert conf.get("compute", "fixed_network_name") == "private"
        assert conf.get("network-feature-enabled", "api_extensions") == "router,port-security"
        assert conf.get("network-feature-enabled", "port_security") == "true"
    assert "<" not in profiles.tempest_conf("nova", run)  # every placeholder filled


def test_each_member_project_has_a_reader_and_a_manager_beside_it() -> None:
    by_project: dict[str, set[str]] = {}
    for account in cloud.ACCOUNTS:
        by_project.setdefault(account.project, set()).update(account.roles)
    assert by_project["admin"] == {"admin"}
    for project in ("demo", "alt", "tempest3", "tempest4"):
        assert by_project[project] == {"member", "reader", "manager"}
    assert "roles: ['admin']" in cloud.accounts_yaml()
