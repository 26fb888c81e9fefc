"""Every error the network API's domain services raise leaves with a Neutron type
of its own (its class name in api/errors.NEUTRON_NAMES, or a `neutron_type`), not
the status code's generic one."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from novalet import exceptions
from novalet.api import errors
from novalet.network import neutron_rule_checks, neutron_security_groups, routers, subnets

# Ours alone, no Neutron name to give: the generic type of the status code is honest.
OWN = {"SecurityGroupStatelessNotSupported"}


@pytest.mark.parametrize("module", [subnets, neutron_security_groups, neutron_rule_checks,
                                    routers],
                         ids=lambda m: m.__name__)
def test_each_domain_error_has_a_neutron_type(module: ModuleType) -> None:
    found = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
             if issubclass(cls, exceptions.NovaletError)
             and cls.__module__ == module.__name__ and cls.__name__ not in OWN]
    assert found
    for cls in found:
        named = getattr(cls, "neutron_type", None) or (
            cls.__name__ if cls.__name__ in errors.NEUTRON_NAMES else None)
        assert named, f"{cls.__name__}: add it to api/errors.NEUTRON_NAMES or set neutron_type"


def test_the_body_carries_the_name() -> None:
    exc = subnets.SubnetInUse(subnet_id="s1", reason="busy")
    assert errors.neutron_error(exc)["NeutronError"]["type"] == "SubnetInUse"
    exc2 = neutron_rule_checks.SecurityGroupRuleInvalidDirection(direction="up")
    assert errors.neutron_error(exc2)["NeutronError"]["type"] == "InvalidInput"
