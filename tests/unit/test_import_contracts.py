"""The import contracts of .importlinter (run by `make lint`): the tree keeps them,
and a deliberate bad import breaks the contract it crosses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of src/novalet and .importlinter to break imports in."""
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "src" / "novalet", root / "src" / "novalet",
                    ignore=shutil.ignore_patterns("__pycache__", "testimage"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


BAD_IMPORTS = [
    # (module that gets the bad import, the import, the contract that must break)
    ("virt/fake.py", "from novalet.db import instances",
     "The compute host side and virt/ never import db/"),
    ("compute/power_sync.py", "import novalet.db.engine",
     "The compute host side and virt/ never import db/"),
    # indirect: the host side imports a module that imports the database
    ("compute/manager.py", "from novalet.compute import quotas",
     "The compute host side and virt/ never import db/"),
    ("api/compute/servers.py", "from novalet.virt import loader",
     "api/ (and the domain layer it calls) never imports virt/ or network/linux"),
    # indirect: the domain layer the API calls imports a driver
    ("compute/api.py", "from novalet.virt.qemu import driver",
     "api/ (and the domain layer it calls) never imports virt/ or network/linux"),
    ("api/compute/servers.py", "from novalet.network.linux import firewall",
     "api/ (and the domain layer it calls) never imports virt/ or network/linux"),
    ("db/instances.py", "import starlette.requests",
     "db/ imports no web framework"),
    ("conductor/manager.py", "from novalet.network.linux import driver",
     "network/linux is imported only by the network service"),
    ("virt/qemu/driver.py", "from novalet.network import manager",
     "The compute host side never reaches network/linux (it asks the network service)"),
    ("metadata/service.py", "from novalet.api import edge",
     "metadata/ (guests' service) never imports api/ (the tenants' API)"),
]


@pytest.mark.parametrize(("module", "line", "contract"), BAD_IMPORTS,
                         ids=[f"{m}:{line.split()[-1]}" for m, line, _ in BAD_IMPORTS])
def test_a_bad_import_breaks_its_contract(tree_copy: Path, module: str, line: str,
                                          contract: str) -> None:
    path = tree_copy / "src" / "novalet" / module
    original = path.read_text()
    # inside a function: the tool sees imports anywhere, not only at the top
    path.write_text(original + f"\n\ndef _bad_import() -> None:\n    {line}  # noqa\n")
    try:
        result = lint_imports(tree_copy, tree_copy / "src")
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout, result.stdout


def test_a_type_checking_import_counts_too(tree_copy: Path) -> None:
    path = tree_copy / "src" / "novalet" / "virt" / "fake.py"
    original = path.read_text()
    path.write_text(original + "\nfrom typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from novalet.db.models import Instance  # noqa\n")
    try:
        result = lint_imports(tree_copy, tree_copy / "src")
    finally:
        path.write_text(original)
    assert "The compute host side and virt/ never import db/ BROKEN" in result.stdout
