"""The layering contract in pyproject.toml holds, and it can fail (issue 12).

`make lint` runs `lint-imports` on the real tree; this test proves the contract has teeth:
a copy of the package where a pure core module imports an edge must be refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_the_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_core_module_importing_an_edge_is_refused(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    refs = tree / "src/gh_docker_publish/core/refs.py"
    refs.write_text(refs.read_text() + "\nfrom gh_docker_publish.edges import engine  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "gh_docker_publish.core.refs -> gh_docker_publish.edges.engine" in result.stdout


def test_a_core_module_importing_the_docker_sdk_is_refused(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    tags = tree / "src/gh_docker_publish/core/tags.py"
    tags.write_text(tags.read_text() + "\nimport docker  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "gh_docker_publish.core is not allowed to import docker" in result.stdout


def test_no_module_imports_one_that_imports_it_back() -> None:
    """No import cycles, not even for type hints only (issue 12: refs <-> settings was one):
    a pure module takes a Protocol of what it reads instead."""
    import grimp

    graph = grimp.build_graph("gh_docker_publish")
    cycles = [
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.find_shortest_chain(importer=imported, imported=module)
    ]
    assert cycles == []
