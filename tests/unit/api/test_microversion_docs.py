"""docs/microversions.md lists exactly the versions the code claims."""

from pathlib import Path

from novalet.api.compute.microversions import HISTORY

DOC = Path(__file__).parents[3] / "docs" / "microversions.md"


def test_doc_lists_every_version_with_its_change() -> None:
    text = DOC.read_text()
    for version, change in HISTORY:
        assert f"| {version} | {change} |" in text, f"docs/microversions.md lacks {version}"
    assert f"**{HISTORY[-1][0]}**" in text
