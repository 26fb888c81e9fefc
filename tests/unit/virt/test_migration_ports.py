"""Ports an incoming guest is taken on: free ones of the range, never one another
incoming guest holds or a program listens on."""

from __future__ import annotations

import socket

import pytest

from novalet import config
from novalet.virt.qemu.migration_ports import (MigrationPorts, NoFreeMigrationPort,
                                               inbound_address)


def free_range(size: int) -> tuple[int, int]:
    """`size` consecutive ports that are free now (probed from a high base)."""
    for base in range(41000, 42000, size):
        ports = range(base, base + size)
        try:
            socks = []
            for port in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base, base + size - 1
    pytest.skip("no free port range")


def conf_with(first: int, last: int) -> config.Config:
    conf = config.Config()
    conf.set("qemu", "live_migration_port_range", f"{first}:{last}")
    return conf


def test_claims_skip_held_and_listening_ports() -> None:
    first, last = free_range(3)
    ports = MigrationPorts(conf_with(first, last))
    assert ports.claim("a", "127.0.0.1") == [first]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", first + 1))
        listener.listen()
        assert ports.claim("b", "127.0.0.1") == [first + 2]
    with pytest.raises(NoFreeMigrationPort, match="widen the range"):
        ports.claim("c", "127.0.0.1", 2)
    ports.release("a")
    assert ports.claim("c", "127.0.0.1", 2) == [first, first + 1]


def test_inbound_address_is_the_configured_one() -> None:
    conf = config.Config()
    conf.set("qemu", "live_migration_inbound_addr", " 192.0.2.9 ")
    assert inbound_address(conf) == "192.0.2.9"
