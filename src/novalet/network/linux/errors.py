"""The base of every error the Linux host networking driver raises."""

from __future__ import annotations

from novalet.exceptions import NovaletError


class LinuxNetError(NovaletError):
    """Host networking could not be made to match the desired state."""

    msg_fmt = "Host networking failed: %(reason)s"
