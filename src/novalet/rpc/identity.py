"""Who a bus user is: the naming convention of compute hosts' own bus users.

Each compute host connects to the broker as a user of its own, `compute-<host>`
(or any name `[conductor] host_users` maps to a host); RabbitMQ stamps nothing
but refuses a message whose AMQP user-id is not the connection's user, so a
receiver knows which host sent a message. Users that are not hosts' (the API,
scheduler, conductor and console proxies share one) are the cloud's services.
"""

from __future__ import annotations

HOST_USER_PREFIX = "compute-"


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
