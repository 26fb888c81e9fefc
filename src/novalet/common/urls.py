"""URLs as they may be shown: in logs, errors and banners."""


def without_password(url: str) -> str:
    """scheme://user:***@host/… for scheme://user:secret@host/…; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    creds, at, where = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':')[0]}:***@{where}"
