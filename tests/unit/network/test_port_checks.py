"""The port attribute checks (network/port_checks.py) refuse what the host firewall
could not render: a MAC or pair address with anything around it."""

from __future__ import annotations

import ipaddress

import pytest

from novalet.network import port_checks


@pytest.mark.parametrize("value", ["fa:16:3e:00:00:01\n", "fa:16:3e:00:00:01\nx",
                                   " fa:16:3e:00:00:01", "fa:16:3e:00:00:011",
                                   "01:16:3e:00:00:01", "00:00:00:00:00:00", 12])
def test_a_mac_with_extra_text_or_not_unicast_is_refused(value: object) -> None:
    with pytest.raises(port_checks.InvalidInput):
        port_checks.mac_address(value)


def test_a_mac_is_stored_in_lower_case() -> None:
    assert port_checks.mac_address("FA:16:3E:00:00:01") == "fa:16:3e:00:00:01"


@pytest.mark.parametrize("address", ["10.0.0.5\n", "10.0.0.5/32\n", " 10.0.0.5"])
def test_a_pair_address_with_extra_text_is_refused(address: str) -> None:
    with pytest.raises(port_checks.InvalidInput):
        port_checks.address_pairs([{"ip_address": address}], "fa:16:3e:00:00:01")


def test_a_pair_mac_with_a_newline_is_refused() -> None:
    with pytest.raises(port_checks.InvalidInput):
        port_checks.address_pairs([{"ip_address": "10.0.0.5",
                                    "mac_address": "fa:16:3e:00:00:02\n"}], None)


SUBNET = ipaddress.IPv4Network("10.41.0.0/24")


def test_a_member_pair_address_must_be_in_the_port_subnet() -> None:
    with pytest.raises(port_checks.InvalidInput, match="outside the port's subnet"):
        port_checks.address_pairs([{"ip_address": "10.2.0.5"}], "fa:16:3e:00:00:01",
                                  within=SUBNET)
    assert port_checks.address_pairs([{"ip_address": "10.41.0.200"}], "fa:16:3e:00:00:01",
                                     within=SUBNET) == [
        {"ip_address": "10.41.0.200", "mac_address": "fa:16:3e:00:00:01"}]


def test_without_a_limit_an_admin_may_allow_any_address() -> None:
    assert port_checks.address_pairs([{"ip_address": "10.2.0.5"}], "fa:16:3e:00:00:01") == [
        {"ip_address": "10.2.0.5", "mac_address": "fa:16:3e:00:00:01"}]
