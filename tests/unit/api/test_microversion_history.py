"""Every microversion the code branches on is in the history (and so in
docs/microversions.md, which test_microversion_docs keeps in step with it).

The code names compute microversions as string constants: `at_least("2.50")`,
`require_version(req, "2.x")`, module constants (`AGGREGATE_UUID = "2.41"`) and
(first version, schema) tables. Any string constant of the form 2.N under
src/novalet is taken for one; nothing else in the tree looks like that.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from novalet.api.compute.microversions import HISTORY

SRC = Path(__file__).resolve().parents[3] / "src" / "novalet"
MICROVERSION = re.compile(r"2\.[0-9]+")


def versions_in_code(root: Path) -> dict[str, list[str]]:
    """version -> where it appears ("path:line"), from string constants."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if '"2.' not in text and "'2." not in text:  # parse only files that may have one
            continue
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and MICROVERSION.fullmatch(node.value)):
                found.setdefault(node.value, []).append(
                    f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_every_microversion_the_code_branches_on_is_in_the_history() -> None:
    listed = {version for version, _ in HISTORY}
    missing = {v: where for v, where in versions_in_code(SRC).items() if v not in listed}
    assert not missing, f"add these to HISTORY and docs/microversions.md: {missing}"


def test_the_scan_finds_the_branches_it_is_meant_to(tmp_path: Path) -> None:
    module = tmp_path / "novalet" / "handler.py"
    module.parent.mkdir()
    module.write_text('SHOWN_FROM = "2.41"\n'
                      'def view(req):\n'
                      '    if req.at_least("2.83"):\n'
                      '        return require_version(req, "2.74")\n'
                      'TABLE = [("2.1", {}), ("2.50", {})]\n'
                      'RPC_VERSION = "1.2"\n')
    assert set(versions_in_code(tmp_path / "novalet")) == {"2.41", "2.83", "2.74", "2.1",
                                                            "2.50"}
