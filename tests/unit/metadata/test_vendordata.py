"""The operator's vendor data file."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalet import config
from novalet.metadata import vendordata


def test_empty_path_is_no_vendor_data() -> None:
    assert vendordata.from_conf(config.Config()) == {}


def test_a_json_object_is_the_vendor_data(tmp_path: Path) -> None:
    path = tmp_path / "vendor.json"
    path.write_text('{"cloud": "novalet", "n": [1, 2]}')
    conf = config.Config()
    conf.set("metadata", "vendordata_json", str(path))
    assert vendordata.from_conf(conf) == {"cloud": "novalet", "n": [1, 2]}


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "holds a JSON list, not an object"), ("{nope", "is not JSON")])
def test_what_is_not_an_object_is_a_config_error(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = tmp_path / "vendor.json"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        vendordata.load(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="cannot read"):
        vendordata.load(tmp_path / "absent.json")
