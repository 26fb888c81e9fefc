"""Security group rule checks of the network API (network/neutron_rule_checks.py)
on input that once made 500s (review finding 9): Neutron's 400 errors instead."""

from __future__ import annotations

from typing import Any

import pytest

from novalet.network import neutron_rule_checks as checks


def rule(**values: Any) -> checks.RuleSpec:
    fields: dict[str, Any] = {"direction": "ingress", "ethertype": "IPv4", "protocol": None,
                              "port_range_min": None, "port_range_max": None,
                              "remote_ip_prefix": None, "remote_group_id": None}
    return checks.check_rule(**{**fields, **values})


@pytest.mark.parametrize("protocol", [
    "\u00b2", "\u0663", "\uff11", "9" * 5000, "1" * 4301, "1000", "256", " 300 "])
def test_a_protocol_that_is_no_number_0_to_255_is_a_400(protocol: str) -> None:
    with pytest.raises(checks.SecurityGroupRuleInvalidProtocol) as caught:
        rule(protocol=protocol)
    assert caught.value.code == 400


@pytest.mark.parametrize(("protocol", "stored"), [
    ("6", "6"), (" 17 ", "17"), ("0006", "6"), ("0" * 5000 + "47", "47"), ("255", "255"),
    ("TCP", "tcp"), (132, "132")])
def test_a_protocol_number_is_kept_as_its_decimal_string(protocol: Any, stored: str) -> None:
    assert rule(protocol=protocol).protocol == stored


@pytest.mark.parametrize("prefix", [
    "fe80::1%eth0", "fe80::1%" + "x" * 60 + "/128", "fe80::%1/64"])
def test_a_scoped_ipv6_prefix_is_a_400(prefix: str) -> None:
    with pytest.raises(checks.InvalidRemoteIpPrefix) as caught:
        rule(ethertype="IPv6", remote_ip_prefix=prefix)
    assert caught.value.code == 400


def test_a_stored_prefix_fits_its_column() -> None:
    """remote_ip_prefix is String(43): the longest IPv6 network with its length."""
    longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
    assert rule(ethertype="IPv6", remote_ip_prefix=longest).remote_ip_prefix == longest
    assert len(longest) == 43


@pytest.mark.parametrize(("stored", "number"), [
    ("6", 6), ("0006", 6), ("tcp", 6), ("ICMP", 1), ("\u00b2", None), ("9" * 5000, None),
    (None, None)])
def test_protocol_number_of_a_stored_protocol(stored: str | None, number: int | None) -> None:
    assert checks.protocol_number(stored) == number
