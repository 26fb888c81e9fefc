"""URLs as they may be shown (in logs, errors and banners) and as they are built."""


def without_password(url: str) -> str:
    """scheme://user:***@host/… for scheme://user:secret@host/…; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    creds, at, where = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':')[0]}:***@{where}"


def url_host(listen: str) -> str:
    """The host part of a URL for a server listening on `listen`: a wildcard means
    this machine's loopback, an IPv6 address is bracketed."""
    host = "127.0.0.1" if listen in ("", "0.0.0.0", "::") else listen
    return f"[{host}]" if ":" in host else host
