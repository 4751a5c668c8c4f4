"""README's workflow examples pass the project's own zizmor policy (issue 15): every
```yaml block that is a workflow, or a list of steps (wrapped into a minimal workflow), is
audited with ``zizmor --offline`` like .github/workflows in ``make lint``; any finding fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)


def zizmor() -> str:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert found, "zizmor is a dev dependency: `make venv`"
    return found


def workflow_snippets() -> list[tuple[int, str]]:
    """(line, workflow text) for every README yaml block that is a workflow or steps."""
    text = README.read_text(encoding="utf-8")
    snippets = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        body = match.group(1)
        doc: Any = yaml.safe_load(body)
        if isinstance(doc, dict) and "jobs" in doc:
            snippets.append((line, body))
        elif isinstance(doc, list) and all(isinstance(s, dict) for s in doc):
            steps = "\n".join("      " + row if row else row for row in body.splitlines())
            snippets.append((line, WRAPPER + steps + "\n"))
    return snippets


#: A step list from the README, as the steps of the smallest workflow zizmor accepts.
WRAPPER = """on: push
permissions: {}
jobs:
  example:
    runs-on: ubuntu-latest
    permissions:
      packages: write
    steps:
"""


def test_readme_has_workflow_snippets() -> None:
    lines = [line for line, _ in workflow_snippets()]
    assert len(lines) >= 2, lines  # "Use it" and the cleanup example at least


@pytest.mark.parametrize(("line", "workflow"), workflow_snippets(), ids=lambda v: str(v)[:12])
def test_readme_workflow_passes_zizmor(line: int, workflow: str, tmp_path: Path) -> None:
    target = tmp_path / ".github" / "workflows" / f"readme-line-{line}.yml"
    target.parent.mkdir(parents=True)
    target.write_text(workflow, encoding="utf-8")
    done = subprocess.run(
        [zizmor(), "--offline", "--no-progress", "--format", "plain",
         str(target)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    # zizmor exits non-zero on any finding its default persona reports (as in make lint).
    assert done.returncode == 0, f"README.md line {line}:\n{done.stdout}{done.stderr}"
