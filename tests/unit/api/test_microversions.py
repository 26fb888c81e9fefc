"""Microversion negotiation, on each side of the boundaries."""

import pytest

from novalet.api.compute.microversions import (HISTORY, MAX, MIN, APIVersion,
                                               InvalidMicroversion,
                                               MicroversionNotAcceptable, negotiate)


def test_no_header_means_minimum() -> None:
    assert negotiate({}) == MIN == APIVersion(2, 1)


def test_modern_header_wins_over_legacy() -> None:
    headers = {"openstack-api-version": "compute 2.47",
               "x-openstack-nova-api-version": "2.3"}
    assert negotiate(headers) == APIVersion(2, 47)


def test_legacy_header_and_latest() -> None:
    assert negotiate({"x-openstack-nova-api-version": "2.9"}) == APIVersion(2, 9)
    assert negotiate({"openstack-api-version": "compute latest"}) == MAX


def test_other_services_in_header_are_ignored() -> None:
    assert negotiate({"openstack-api-version": "volume 3.5"}) == MIN


@pytest.mark.parametrize("version", ["2.0", f"2.{MAX.minor + 1}", "3.1"])
def test_out_of_range_is_406(version: str) -> None:
    with pytest.raises(MicroversionNotAcceptable) as err:
        negotiate({"openstack-api-version": f"compute {version}"})
    assert err.value.code == 406


def test_garbage_is_400() -> None:
    with pytest.raises(InvalidMicroversion):
        negotiate({"openstack-api-version": "compute two"})


def test_history_is_ordered_and_documented() -> None:
    versions = [APIVersion.parse(v) for v, _ in HISTORY]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert all(text for _, text in HISTORY)
    assert APIVersion(2, 10) > APIVersion(2, 9)
