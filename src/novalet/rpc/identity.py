"""Who a bus user is: the naming convention of compute hosts' own bus users.

Each compute host connects to the broker as a user of its own, `compute-<host>`
(or any name `[conductor] host_users` maps to a host); RabbitMQ stamps nothing
but refuses a message whose AMQP user-id is not the connection's user, so a
receiver knows which host sent a message. Users that are not hosts' (the API,
scheduler, conductor and console proxies share one) are the cloud's services.

`Senders` is the one place a message's sender becomes a host: every bus
resolves each message with it once (rpc/bus.CallInfo.host), and the AMQP bus
asks it whether its own user is a host's.
"""

from __future__ import annotations

from novalet import config

HOST_USER_PREFIX = "compute-"
# The sender of a message that arrived without an identity over a broker (an
# AMQP message without the user-id property). In-process messages from a
# service's own process have sender None instead.
UNIDENTIFIED = ""
# The host such a message is taken for unless unidentified senders are trusted:
# it names no host, so nothing a host may do is served to it.
UNIDENTIFIED_HOST = "(unidentified)"


def user_for_host(host: str) -> str:
    """The bus user the convention gives compute host `host`."""
    return f"{HOST_USER_PREFIX}{host}"


def parse_host_users(value: str) -> dict[str, str]:
    """`[conductor] host_users` ("user:host, user:host") as {user: host}."""
    users: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        user, sep, host = item.strip().partition(":")
        if not sep or not user.strip() or not host.strip():
            raise ValueError(f"host_users: expected user:host, got {item.strip()!r}")
        users[user.strip()] = host.strip()
    return users


def host_of_user(user: str, host_users: dict[str, str]) -> str | None:
    """The compute host bus user `user` stands for, or None for a service user."""
    if user in host_users:
        return host_users[user]
    if user.startswith(HOST_USER_PREFIX) and len(user) > len(HOST_USER_PREFIX):
        return user[len(HOST_USER_PREFIX):]
    return None


class Senders:
    """The sender -> host rule of this process, from its configuration, read once
    (a malformed `[conductor] host_users` fails the start, not each message)."""

    def __init__(self, host_users: dict[str, str] | None = None,
                 trust_unidentified: bool = False) -> None:
        self.host_users = dict(host_users or {})
        self.trust_unidentified = trust_unidentified

    @classmethod
    def from_conf(cls, conf: config.Config) -> Senders:
        try:
            host_users = parse_host_users(conf.get("conductor", "host_users"))
        except ValueError as exc:
            raise config.ConfigError(f"[conductor] {exc}") from None
        return cls(host_users, bool(conf.get("conductor", "trust_unidentified_senders")))

    def host_of(self, sender: str | None) -> str | None:
        """The compute host a message's sender is (UNIDENTIFIED_HOST for a broker
        message without user-id, unless those are trusted), or None for the cloud's
        services and in-process messages (sender None: the process trusts itself)."""
        if sender is None:
            return None
        if sender == UNIDENTIFIED:
            return None if self.trust_unidentified else UNIDENTIFIED_HOST
        return host_of_user(sender, self.host_users)
