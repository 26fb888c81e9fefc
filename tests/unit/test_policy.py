"""The check-string evaluator, the default rules and the policy file."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from novalet import policy
from novalet.common.context import RequestContext
from novalet.policy_checks import PolicySyntaxError, parse


def _eval(text: str, target: dict[str, Any] | None = None, **creds: Any) -> bool:
    rules = {"yes": parse("@"), "no": parse("!")}
    return parse(text)(target or {}, creds, rules.get)


@pytest.mark.parametrize(("text", "expected"), [
    ("", True), ("@", True), ("!", False),
    ("role:admin", True), ("role:ADMIN", True), ("role:member", False),
    ("not role:member", True), ("role:member or role:admin", True),
    ("role:member and role:admin", False),
    ("rule:yes", True), ("rule:no", False), ("rule:missing", False),
    ("project_id:%(project_id)s", True), ("user_id:%(user_id)s", False),
    ("(role:member or role:admin) and project_id:%(project_id)s", True),
    ("role:member or (role:admin and not project_id:%(project_id)s)", False),
    ("not (role:admin)", False), ("((@))", True),
    ("is_admin:True", True), ("is_admin:False", False), ("system_scope:all", False),
    ("project_id:p1", True), ("project_id:'p1'", True), ("project_id:%(missing)s", False),
    ("role:member or role:admin and !", False),   # and binds tighter than or
    ("@ or ! and !", True),
])
def test_check_strings(text: str, expected: bool) -> None:
    assert _eval(text, {"project_id": "p1", "user_id": "u2"}, roles=["admin"],
                 project_id="p1", user_id="u1", is_admin=True) is expected


@pytest.mark.parametrize("text", [
    "role", "role:admin and", "(role:admin", "role:admin)", "or @", "and", "not",
    "role:admin @", ":x", "x:",
])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(PolicySyntaxError):
        parse(text)


def test_every_default_parses_and_names_only_known_rules() -> None:
    for name in policy.RULES:
        check = policy.Enforcer().rule(name)
        assert check is not None, name
    for text in policy.RULES.values():
        for word in text.replace("(", " ").replace(")", " ").split():
            if word.startswith("rule:"):
                assert word[5:] in policy.RULES, (text, word)


def test_implied_roles() -> None:
    assert policy.with_implied_roles(["admin"]) == ["admin", "member", "reader"]
    assert policy.with_implied_roles(["member", "other"]) == ["member", "other", "reader"]
    assert policy.with_implied_roles(["reader"]) == ["reader"]


def _ctx(*roles: str, project: str | None = "p1", system: str | None = None
         ) -> RequestContext:
    return RequestContext(user_id="u1", project_id=project, roles=list(roles),
                          system_scope=system)


@pytest.mark.parametrize(("roles", "own_read", "own_write", "other_read", "admin_api"), [
    (("reader",), True, False, False, False),
    (("member",), True, True, False, False),
    (("admin",), True, True, True, True),
    ((), False, False, False, False),
    (("service",), False, False, False, False),
])
def test_defaults_per_role(roles: tuple[str, ...], own_read: bool, own_write: bool,
                           other_read: bool, admin_api: bool) -> None:
    ctx = _ctx(*roles)
    assert policy.authorize(ctx, "os_compute_api:servers:show", "p1") is own_read
    assert policy.authorize(ctx, "os_compute_api:servers:delete", "p1") is own_write
    assert policy.authorize(ctx, "os_compute_api:servers:show", "p2") is other_read
    assert policy.authorize(ctx, "os_compute_api:os-services:list") is admin_api
    assert policy.authorize(ctx, "os_compute_api:limits") is True


def test_system_scoped_admin_passes_admin_apis_only() -> None:
    ctx = _ctx("admin", project=None, system="all")
    assert policy.authorize(ctx, "os_compute_api:os-services:list")
    assert policy.authorize(ctx, "identity:admin")
    assert not policy.authorize(ctx, "os_compute_api:servers:create")
    assert not policy.authorize(_ctx("reader", project=None, system="all"),
                                "os_compute_api:os-services:list")


def test_keypairs_belong_to_their_user() -> None:
    member = _ctx("member")
    assert policy.authorize(member, "os_compute_api:os-keypairs:show")
    assert not policy.authorize(member, "os_compute_api:os-keypairs:show",
                                target={"user_id": "someone-else"})
    assert policy.authorize(_ctx("admin"), "os_compute_api:os-keypairs:show",
                            target={"user_id": "someone-else"})


def test_unknown_action_is_admin_only() -> None:
    assert not policy.authorize(_ctx("member"), "os_compute_api:no-such-thing")
    assert policy.authorize(_ctx("admin"), "os_compute_api:no-such-thing")


def test_enforce_names_the_action() -> None:
    with pytest.raises(policy.PolicyNotAuthorized) as err:
        policy.enforce(_ctx("reader"), "os_compute_api:servers:delete", "p1")
    assert err.value.code == 403
    assert err.value.message == ("Policy doesn't allow os_compute_api:servers:delete "
                                 "to be performed.")


@pytest.fixture
def policy_file(tmp_path: Path) -> Any:
    path = tmp_path / "policy.yaml"
    yield path
    policy.configure(None)


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    # Make the change visible even on a filesystem with coarse timestamps.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_policy_file_overrides_and_is_reread(policy_file: Path) -> None:
    reader = _ctx("reader")
    policy.configure(policy_file)   # missing file: defaults
    assert not policy.authorize(reader, "os_compute_api:servers:reboot", "p1")
    _write(policy_file, '"os_compute_api:servers:reboot": '
                        '"role:reader and project_id:%(project_id)s"\n')
    assert policy.authorize(reader, "os_compute_api:servers:reboot", "p1")
    assert not policy.authorize(reader, "os_compute_api:servers:reboot", "p2")
    _write(policy_file, '"project_reader_api": "!"\n')
    assert not policy.authorize(reader, "os_compute_api:servers:reboot", "p1")
    assert not policy.authorize(reader, "os_compute_api:servers:show", "p1")
    policy_file.unlink()
    assert policy.authorize(reader, "os_compute_api:servers:show", "p1")


def test_bad_file_at_startup_names_file_and_line(policy_file: Path) -> None:
    policy_file.write_text('"os_compute_api:servers:index": "@"\n'
                           '"os_compute_api:servers:show": "role:admin and"\n')
    with pytest.raises(policy.PolicyFileError) as err:
        policy.configure(policy_file)
    assert str(policy_file) in str(err.value) and "line 2" in str(err.value)
    assert "os_compute_api:servers:show" in str(err.value)
    policy_file.write_text('"a": "@"\n"b": [1\n')
    with pytest.raises(policy.PolicyFileError, match="line 3"):
        policy.configure(policy_file)
    policy_file.write_text('- "a"\n')
    with pytest.raises(policy.PolicyFileError, match="mapping"):
        policy.configure(policy_file)


def test_bad_file_at_runtime_keeps_the_old_rules(policy_file: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    _write(policy_file, '"os_compute_api:servers:show": "!"\n')
    policy.configure(policy_file)
    assert not policy.authorize(_ctx("admin"), "os_compute_api:servers:show")
    _write(policy_file, '"os_compute_api:servers:show": "(("\n')
    with caplog.at_level(logging.ERROR, logger="novalet.policy"):
        assert not policy.authorize(_ctx("admin"), "os_compute_api:servers:show")
    assert "keeping the rules read before" in caplog.text


def test_unknown_rule_name_warns(policy_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    policy_file.write_text('"os_compute_api:servers:nope": "@"\n')
    with caplog.at_level(logging.WARNING, logger="novalet.policy"):
        policy.configure(policy_file)
    assert "os_compute_api:servers:nope" in caplog.text and "line 1" in caplog.text


def test_sample_is_yaml_of_every_default() -> None:
    text = policy.sample()
    uncommented = "\n".join(line[1:] for line in text.splitlines() if line.startswith('#"'))
    assert yaml.safe_load(uncommented) == {
        name: policy.LEGACY_ALIASES.get(value, value) for name, value in policy.RULES.items()}
