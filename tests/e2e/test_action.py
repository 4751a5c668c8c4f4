"""The action as users meet it: the repository's own image, built and run the way the
Actions runner runs a Docker action (``tests/harness/runner.py``), against the test bed.

Each run builds the repository's Dockerfile with the bed's Python base (its ``FROM python``
lines retargeted, tests/testbed/action_image.py; the locked ``pip install`` runs inside that
build), passes ``INPUT_*`` exactly as the
runner does (defaults from action.yml, ``github-token`` from ``${{ github.token }}``) and
reads the log as the runner reads it. The action container shares the host network so it
reaches the bed's registry and stand-in on loopback; ``GITHUB_API_URL`` is the stand-in,
``GITHUB_SERVER_URL`` is https://github.com.

Scenario numbers are the publish issue's. ``test_action_image_facts`` writes
``bench/action-image.json`` (size, build time from a warm base, start-to-first-line) and
the e2e conftest prints it in pytest's terminal summary.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import product
from tests.e2e.conftest import IMAGE_FACTS_KEY
from tests.e2e.product import ROOT
from tests.harness.runner import (
    REGISTERED_COMMANDS,
    ActionHarness,
    RunResult,
    StepResult,
    load_action,
    parse_action_command,
)
from tests.reliability import secret_forms

IMAGE_FACTS = ROOT / "bench" / "action-image.json"

Publish = Callable[..., RunResult]


@pytest.fixture
def octo(github: Any) -> Any:
    """octo-org (octocat admin) and its public repository app, whose workflow runs."""
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app", description="The app", license_spdx="MIT")
    return github


@pytest.fixture
def publish(runner: ActionHarness, testbed: Any, tmp_path: Path) -> Publish:
    """Run the action from the repository root through the harness; ``inputs`` is ``with:``."""

    def run(
        inputs: Mapping[str, str],
        *,
        github_token: str,
        secrets: Iterable[str] = (),
        workspace: Path | None = None,
    ) -> RunResult:
        ws = workspace or product.hello_workspace(tmp_path / f"ws-{len(list(tmp_path.iterdir()))}")
        return product.publish(
            runner, testbed, inputs, github_token=github_token, workspace=ws, secrets=secrets
        )

    return run


def steps(result: RunResult) -> list[StepResult]:
    return [s for s in (result.pre, result, result.post) if s is not None]


def assert_never_leaked(result: RunResult, secret: str) -> None:
    """No form of ``secret`` (raw, per line, base64(user:token), X-Registry-Auth/-Config,
    JSON-escaped, URL-encoded: tests/reliability/secret_forms.py) is anywhere a runner keeps
    or shows: the raw (unmasked) output, except inside the ``::add-mask::`` commands that
    hide it, the interpreted log, outputs, env, state, summary or annotations."""
    username = result.outputs.get("username") or "octocat"
    registry = result.outputs.get("registry") or ""
    hunted = secret_forms.forms(username, secret, registry)
    for step in steps(result):
        found: list[str] = []
        for line in step.raw_log:
            cmd = parse_action_command(line, REGISTERED_COMMANDS)
            if cmd is not None and cmd.command == "add-mask":
                continue
            found += secret_forms.scan_text("raw log", line, hunted)
        found += secret_forms.scan_text("interpreted log", step.text, hunted)
        for kind, values in (("output", step.outputs), ("env", step.env), ("state", step.state)):
            for key, value in values.items():
                found += secret_forms.scan_text(f"{kind} {key}", value, hunted)
        found += secret_forms.scan_text("summary", step.raw_summary, hunted)
        for note in step.annotations:
            found += secret_forms.scan_text("annotation", note.message, hunted)
        assert not found, f"{step.stage}: {found}"


def assert_post_step_as_declared(result: RunResult) -> None:
    """The post entrypoint (cleanup) runs and succeeds when action.yml declares one."""
    if load_action(ROOT).post_entrypoint:
        assert result.post is not None and result.post.conclusion == "success", result.post
    else:
        assert result.post is None


# --- publish scenarios -------------------------------------------------------------------


def test_own_repository_with_github_token(
    octo: Any, publish: Publish, registry_reader: Any, unique_name: Callable[[str], str]
) -> None:
    """Scenario 1: the digest output is the registry's Docker-Content-Digest."""
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    result = publish({"image": image, "tags": "v1"}, github_token=token)
    assert result.conclusion == "success", result.text
    name = f"octo-org/{image}"
    assert result.outputs["digest"] == registry_reader.manifest_digest(name, "v1")
    assert result.outputs["digest"].startswith("sha256:")
    assert result.outputs["token-source"] == "github-token"
    assert result.outputs["image"] == f"{registry_reader.bed.registry}/{name}"
    assert result.inputs["github-token"] == token  # the default ${{ github.token }} applied
    assert not result.annotations_of("error")
    assert result.outputs["digest"] in result.summary
    assert_never_leaked(result, token)
    assert_post_step_as_declared(result)


def test_another_repository_with_a_pat(
    octo: Any, publish: Publish, registry_reader: Any, unique_name: Callable[[str], str]
) -> None:
    """Scenario 2: token-source=token and the username is the PAT's owner (GET /user)."""
    octo.org("other-org", members={"octocat": "member"})
    octo.repo("other-org/lib")
    image = unique_name("lib")
    pat = octo.pat("octocat", ["write:packages"])
    result = publish(
        {"image": image, "repository": "other-org/lib", "token": pat, "tags": "1.0"},
        github_token=octo.github_token("octo-org/app"),
        secrets=[pat],
    )
    assert result.conclusion == "success", result.text
    assert result.outputs["token-source"] == "token"
    assert result.outputs["username"] == "octocat"
    assert result.outputs["digest"] == registry_reader.manifest_digest(f"other-org/{image}", "1.0")
    assert_never_leaked(result, pat)


def test_another_repository_without_a_pat_fails_before_the_build(
    octo: Any, publish: Publish, docker_client: Any, unique_name: Callable[[str], str]
) -> None:
    """Scenario 3: one error annotation naming the missing PAT; no build started."""
    image = unique_name("lib")
    token = octo.github_token("octo-org/app")
    result = publish({"image": image, "repository": "other-org/lib"}, github_token=token)
    assert result.conclusion == "failure"
    assert result.exit_code == 1
    errors = result.annotations_of("error")
    assert len(errors) == 1, result.text
    assert "write:packages" in errors[0].message and "token" in errors[0].message
    assert not any(g.title.startswith("Build") for g in result.groups), result.text
    assert "Step 1/" not in result.text
    assert not docker_client.images.list(name=f"*/other-org/{image}")
    assert result.outputs == {}
    assert_never_leaked(result, token)


def test_a_denied_token_shows_the_github_hint(
    octo: Any, publish: Publish, unique_name: Callable[[str], str]
) -> None:
    """Scenario 5: a read-only GITHUB_TOKEN is refused; the annotation says where to fix it.

    The preflight probe meets the refusal right after login, before the build; a refusal
    inside the push stream itself is tests/integration/test_publish.py (partial push)."""
    read_only = octo.github_token("octo-org/app", packages="read")
    result = publish({"image": unique_name("hello"), "tags": "v1"}, github_token=read_only)
    assert result.conclusion == "failure"
    errors = result.annotations_of("error")
    assert errors, result.text
    message = "\n".join(a.message for a in errors)
    assert "Manage Actions access" in message, message
    assert "installation not allowed to" in result.text
    assert_never_leaked(result, read_only)


def test_three_tags_one_digest_all_pullable(
    octo: Any,
    publish: Publish,
    registry_reader: Any,
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    """Scenario 7: three tags point at one manifest, and each pulls by tag."""
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    result = publish({"image": image, "tags": "a\nb,c"}, github_token=token)
    assert result.conclusion == "success", result.text
    refs = result.outputs["tags"].splitlines()
    assert [r.rsplit(":", 1)[1] for r in refs] == ["a", "b", "c"]
    assert result.outputs["tag-names"].splitlines() == ["a", "b", "c"]
    digests = {registry_reader.manifest_digest(f"octo-org/{image}", t) for t in "abc"}
    assert digests == {result.outputs["digest"]}
    auth = {"username": "octocat", "password": token}
    for ref in refs:
        docker_client.images.remove(ref, force=True)
        repo, tag = ref.rsplit(":", 1)
        pulled = docker_client.images.pull(repo, tag=tag, auth_config=auth)
        assert result.outputs["digest"] in " ".join(pulled.attrs["RepoDigests"])


# --- the log as an attack surface ----------------------------------------------------------

INJECTING_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo '::error::pwned' \\
 && echo '::add-mask::x' \\
 && echo '::set-output name=digest::evil' \\
 && echo '::warning title=t::pwned too' \\
 && echo '::group::fake group'
"""


@pytest.mark.parametrize("builder", ["classic", "auto"])
def test_build_output_cannot_issue_workflow_commands(
    builder: str,
    octo: Any,
    publish: Publish,
    registry_reader: Any,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """A RUN that prints workflow commands: no annotation, no mask, no output change.

    The product fences build output with ``::stop-commands::``; without the fence the
    harness (like a runner) would obey each line. The classic builder prints RUN output
    as bare lines (the dangerous case); BuildKit (``auto`` on the bed) prefixes them with
    ``#5 0.28``. ``no-cache`` makes the RUN print again on every run.
    """
    workspace = tmp_path / "injecting"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text(INJECTING_DOCKERFILE)
    image = unique_name("inject")
    result = publish(
        {"image": image, "tags": "v1", "no-cache": "true", "builder": builder},
        github_token=octo.github_token("octo-org/app"),
        workspace=workspace,
    )
    assert result.conclusion == "success", result.text
    if builder == "classic":
        assert result.outputs["builder"] == "classic"  # bare RUN lines: the dangerous case
    # The lines are shown as text, unmasked (a mask of "x" would also hit "x" elsewhere).
    for line in ("::error::pwned", "::add-mask::x", "::set-output name=digest::evil"):
        assert any(entry.strip().endswith(line) for entry in result.log), (line, result.text)
    assert not any("pwned" in a.message for a in result.annotations), result.annotations
    assert not any("set-output" in a.message for a in result.annotations)  # no deprecation
    assert "fake group" not in [g.title for g in result.groups]
    assert result.outputs["digest"] != "evil"
    assert result.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")


def test_a_secret_the_action_masks_never_reaches_the_log(
    octo: Any, publish: Publish, unique_name: Callable[[str], str]
) -> None:
    """A PAT the runner does not know is a secret (not from ``secrets.*``): the action masks
    it before anything prints it, and it appears nowhere a runner keeps."""
    octo.org("other-org", members={"octocat": "member"})
    octo.repo("other-org/lib")
    pat = octo.pat("octocat", ["write:packages"])
    result = publish(
        {"image": unique_name("lib"), "repository": "other-org/lib", "token": pat, "tags": "v1"},
        github_token=octo.github_token("octo-org/app"),
        secrets=[],  # deliberately unregistered: only the action's own ::add-mask:: hides it
    )
    assert result.conclusion == "success", result.text
    masks = [
        i
        for i, line in enumerate(result.raw_log)
        if (cmd := parse_action_command(line, REGISTERED_COMMANDS)) is not None
        and cmd.command == "add-mask"
        and cmd.data == pat
    ]
    assert masks, "the action never masked the PAT"
    assert_never_leaked(result, pat)


# --- facts about the image -----------------------------------------------------------------


def test_action_image_facts(
    request: pytest.FixtureRequest,
    runner: ActionHarness,
    octo: Any,
    publish: Publish,
    unique_name: Callable[[str], str],
    testbed: Any,
) -> None:
    """Record the action image's size, its build time from a warm base (base image present,
    no layer cache: a fresh runner after the pull) and the time from container start to its
    first log line. Written to bench/action-image.json; no assertion on any time."""
    built = runner.build(ROOT, no_cache=True)
    assert not built.cached
    cached_rebuild = runner.build(ROOT, rebuild=True)
    result = publish(
        {"image": unique_name("hello"), "tags": "v1"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert result.conclusion == "success", result.text
    assert result.start_to_first_line_seconds is not None
    facts = {
        "image_size_bytes": built.size,
        "image_size_mb": round(built.size / 1e6, 1),
        "build_seconds_warm_base_no_layer_cache": round(built.seconds, 2),
        "build_seconds_layer_cache": round(cached_rebuild.seconds, 2),
        "start_to_first_line_seconds": round(result.start_to_first_line_seconds, 3),
        "publish_run_seconds": round(result.run_seconds, 2),
        "base_image": testbed.python_image,
        "docker_server": daemon_version(runner),
        "machine": platform.machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    IMAGE_FACTS.parent.mkdir(exist_ok=True)
    IMAGE_FACTS.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    request.config.stash[IMAGE_FACTS_KEY] = facts
    assert built.size > 0


def daemon_version(runner: ActionHarness) -> str:
    return str(runner.client.version().get("Version", ""))


#: Run inside the action image: the standard-library modules the action imports at start,
#: each with bytecode the interpreter loads as it is (PEP 552 flags 0b01: hash-based,
#: unchecked). The real base ships its stdlib without any (python:3.13-slim deletes every
#: *.pyc) and the image runs with PYTHONDONTWRITEBYTECODE, so without the Dockerfile's
#: compile step every job would compile them before its first line; the bed's Debian base
#: has timestamp-based ones (flags 0), which this check also refuses.
STDLIB_BYTECODE_CHECK = """
import importlib.util, sys
import gh_docker_publish.cli, gh_docker_publish.flows.post_step
lib = sys.base_prefix + "/lib/"
sources = sorted({m.__file__ for m in list(sys.modules.values())
                  if (getattr(m, "__file__", None) or "").startswith(lib)
                  and m.__file__.endswith(".py")})
bad = []
for source in sources:
    try:
        with open(importlib.util.cache_from_source(source), "rb") as pyc:
            flags = int.from_bytes(pyc.read(8)[4:8], "little")
    except OSError:
        flags = None
    if flags != 0b01:
        bad.append(f"{source} {flags}")
print(len(sources))
print("\\n".join(bad))
"""


def test_the_stdlib_the_action_imports_has_bytecode_in_the_image(runner: ActionHarness) -> None:
    built = runner.build(ROOT)
    out = runner.client.containers.run(
        built.tag, ["-c", STDLIB_BYTECODE_CHECK], entrypoint="/opt/venv/bin/python",
        environment={"PYTHONPATH": "/opt"}, remove=True,
    ).decode()
    count, *bad = out.strip().splitlines()
    assert int(count) > 50, out  # the check saw the action's imports
    assert not bad, f"{len(bad)} stdlib modules without unchecked-hash bytecode:\n{out[:3000]}"
