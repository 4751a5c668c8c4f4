"""Secret hunting over end-to-end runs of the action (through the runner harness): four
tokens (a GITHUB_TOKEN, a PAT, one with a newline, one with a space), every form of each
(``secret_forms.py``), searched in everything a run leaves or shows: raw stdout/stderr with
RUNNER_DEBUG=1, the GITHUB_OUTPUT/ENV/STATE and summary files, every file left under the
runner's HOME, workspace and temp, and /proc/*/cmdline sampled while the action runs."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import product
from tests.harness.runner import ActionHarness, RunResult
from tests.reliability.secret_forms import cmdlines, forms, scan_text, scan_tree


class CmdlineSampler:
    """Reads every process's command line from the host's /proc every 20 ms (the action's
    container processes are visible from the host here)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.update(cmdlines())
            self._stop.wait(0.02)

    def __enter__(self) -> CmdlineSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def org(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    return github


@pytest.fixture
def runner_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The harness makes its runner directories (HOME, temp, file commands) in here."""
    root = tmp_path / "runner"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root


def hunt(result: RunResult, secret_forms: dict[str, str], sampler: CmdlineSampler,
         *trees: Path) -> list[str]:
    found: list[str] = []
    for step in (s for s in (result.pre, result, result.post) if s is not None):
        raw = "\n".join(line for line in step.raw_log if not line.startswith("::add-mask::"))
        found += scan_text(f"{step.stage} stdout/stderr", raw, secret_forms)
        found += scan_text(f"{step.stage} log", step.text, secret_forms)
        found += scan_text(f"{step.stage} GITHUB_OUTPUT", repr(step.outputs), secret_forms)
        found += scan_text(f"{step.stage} GITHUB_ENV", repr(step.env), secret_forms)
        found += scan_text(f"{step.stage} GITHUB_STATE", repr(step.state), secret_forms)
        found += scan_text(f"{step.stage} summary", step.raw_summary + step.summary,
                           secret_forms)
        found += scan_text(f"{step.stage} annotations",
                           repr([a.message for a in step.annotations]), secret_forms)
    found += scan_text("/proc/*/cmdline", "\n".join(sampler.seen), secret_forms)
    for tree in trees:
        found += scan_tree(tree, secret_forms)
    return found


CASES = {
    "github-token": ("github_token", None),
    "pat": ("pat", None),
    "token-with-newline": ("github_token", "ghs_firstLine0123456789\nsecondLine0123456789"),
    "token-with-space": ("pat", "ghp_with space 0123456789abcdef"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_form_of_the_token_is_left_anywhere(
    case: str, org: Any, runner: ActionHarness, testbed: Any, tmp_path: Path,
    runner_dirs: Path, unique_name: Callable[[str], str],
    record_property: Callable[[str, object], None],
) -> None:
    kind, value = CASES[case]
    workflow_token = org.github_token("octo-org/app")
    inputs = {"image": unique_name("secret"), "tags": "v1"}
    if kind == "pat":
        token = org.pat("octocat", ["write:packages", "read:packages"], value=value)
        inputs.update(token=token, auth="token")
    else:
        token = org.github_token("octo-org/app", value=value) if value else workflow_token
        workflow_token = token
    workspace = product.hello_workspace(tmp_path / "ws")
    with CmdlineSampler() as sampler:
        result = runner.run(
            product.ROOT,
            inputs={"registry": testbed.registry,
                    "build-args": f"BASE_IMAGE={testbed.busybox_image}", **inputs},
            github=product.github_context(testbed, workflow_token),
            workspace=workspace, debug=True, keep_dirs=True,
        )
    assert result.conclusion == "success", result.text
    assert len(sampler.seen) > 10  # the sampler really sampled
    secret_forms = forms("octocat", token, testbed.registry)
    found = hunt(result, secret_forms, sampler, runner_dirs, workspace)
    places = 7 * len([s for s in (result.pre, result, result.post) if s]) + 1 + 2
    # The hunt can fail: the one place the raw value must appear, ::add-mask::, is found.
    masks = "\n".join(line for line in result.raw_log if line.startswith("::add-mask::"))
    assert scan_text("add-mask", masks, {"raw": token.split("\n")[0]})
    record_property("forms_searched", len(secret_forms) * places)
    record_property("forms_found", len(found))
    assert found == [], found
