"""Neutron's `field:RESOURCE:ATTR=VALUE` checks in the policy language, and the network
API's rules built on them."""

from __future__ import annotations

import pytest

from novalet import policy
from novalet.common.context import RequestContext
from novalet.policy_checks import FieldCheck, PolicySyntaxError, parse


def test_a_field_check_reads_the_target_attribute_even_with_colons() -> None:
    check = parse("field:networks:router:external=True")
    assert check == FieldCheck("networks", "router:external", "True")
    assert str(check) == "field:networks:router:external=True"
    lookup = policy.Enforcer().rule
    assert check({"router:external": True}, {}, lookup)
    assert not check({"router:external": False}, {}, lookup)
    assert not check({}, {}, lookup)
    assert parse("field:networks:name=web")({"name": "web"}, {}, lookup)


@pytest.mark.parametrize("text", ["field:networks", "field:networks:shared", "field::x=1"])
def test_a_malformed_field_check_is_a_syntax_error(text: str) -> None:
    with pytest.raises(PolicySyntaxError):
        parse(text)


def test_get_network_lets_members_see_shared_and_external_networks_only() -> None:
    member = RequestContext(project_id="p1", roles=["member", "reader"])
    other = {"project_id": "p2", "shared": False, "router:external": False}
    assert not policy.authorize(member, "get_network", "p2", other)
    assert policy.authorize(member, "get_network", "p2", {**other, "shared": True})
    assert policy.authorize(member, "get_network", "p2", {**other, "router:external": True})
    assert policy.authorize(member, "get_network", "p1", {**other, "project_id": "p1"})
    assert not policy.authorize(member, "create_network:shared", "p1")
    admin = RequestContext(project_id="p1", roles=["admin", "member", "reader"])
    assert policy.authorize(admin, "get_network", "p2", other)
    assert policy.authorize(admin, "get_network:provider:segmentation_id")
