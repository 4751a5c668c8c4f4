#!/usr/bin/env python3
"""`make lint`: build the sdist and wheel and fail on any build warning; check what the
wheel carries (LICENSE, py.typed, action.yml for the CLI's help, the version from
``gh_docker_publish.__version__``); fail when pyroma scores the metadata below MIN_SCORE.

Warnings matter: setuptools' deprecation warnings (``project.license`` as a table) turn
into build failures on a fixed date, and the action's image used to build the wheel in
every user's job.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_SCORE = 8  # of 10; the missing point: no author e-mail (the authors have none to give)
WARNING = re.compile(r"warning|deprecat", re.I)


def main() -> int:
    problems: list[str] = []
    # byte-compiling off (PYTHONDONTWRITEBYTECODE) makes setuptools warn about itself.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", out, str(ROOT)],
            capture_output=True, text=True, env=env, check=False,
        )
        log = done.stdout + done.stderr
        if done.returncode != 0:
            print(log, file=sys.stderr)
            return 1
        problems += [f"build: {line.strip()}" for line in log.splitlines() if WARNING.search(line)]
        version = _version()
        wheels = list(Path(out).glob(f"gh_docker_publish-{version}-*.whl"))
        if len(wheels) != 1:
            problems.append(f"expected one wheel for version {version}, got {wheels}")
        else:
            names = set(zipfile.ZipFile(wheels[0]).namelist())
            for wanted in ("gh_docker_publish/py.typed", "gh_docker_publish/action.yml",
                           f"gh_docker_publish-{version}.dist-info/licenses/LICENSE"):
                if wanted not in names:
                    problems.append(f"wheel lacks {wanted}")
    score = _pyroma_score()
    if score < MIN_SCORE:
        problems.append(f"pyroma scores the metadata {score}/10 (< {MIN_SCORE})")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"dist: {'FAILED' if problems else 'ok'} (pyroma {score}/10)")
    return 1 if problems else 0


def _version() -> str:
    text = (ROOT / "src" / "gh_docker_publish" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if match is None:
        raise SystemExit("no __version__ in gh_docker_publish/__init__.py")
    return match.group(1)


def _pyroma_score() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pyroma", "--directory", "--quiet", str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    match = re.search(r"(\d+)", done.stdout.strip().splitlines()[-1] if done.stdout else "")
    return int(match.group(1)) if match else 0


if __name__ == "__main__":
    sys.exit(main())
