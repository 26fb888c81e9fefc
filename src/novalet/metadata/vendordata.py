"""The operator's static vendor data: a JSON file given to every guest as vendor_data.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from novalet.config import Config, ConfigError


def load(path: str | Path) -> dict[str, Any]:
    """The JSON object in the file `path`; {} for an empty path. ConfigError says
    what is wrong when the file can't be read or holds no JSON object."""
    if not str(path):
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"[metadata] vendordata_json: cannot read {path}: "
                          f"{exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"[metadata] vendordata_json: {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"[metadata] vendordata_json: {path} holds a JSON "
                          f"{type(data).__name__}, not an object")
    return data


def from_conf(conf: Config) -> dict[str, Any]:
    """The vendor data the configuration names ([metadata] vendordata_json)."""
    return load(conf.get("metadata", "vendordata_json"))
