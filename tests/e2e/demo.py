"""``make demo``: publish ``examples/hello`` as octo-org/app's package, the way a workflow
step ``uses: ./`` would, and show what GitHub would show.

1. Brings the test bed up (idempotent; ``make demo`` already did): a Docker daemon, a
   token-auth registry and the GitHub stand-in (``tests/testbed``).
2. Sets up the scenario in the stand-in: organization octo-org, its public repository
   octo-org/app, and that repository's workflow ``GITHUB_TOKEN`` (packages: write).
3. Builds the action image from this repository's Dockerfile and runs it through the
   runner harness (``tests/harness/runner.py``) with the inputs and variables a runner passes,
   exactly as the end-to-end tests do (``tests/e2e/product.py``).
4. Prints the step's log (groups folded), its outputs, the job summary rendered for a
   terminal, the annotations, and a ``docker pull`` command, which it then runs.
5. Publishes the same commit again and counts blob uploads for the package's repository in
   the registry's access log: ``0 new blobs uploaded``.

Exit status 0 only if both runs succeeded, the pull worked and the second run uploaded
nothing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.rule import Rule

from tests.e2e import product
from tests.harness.runner import RunResult
from tests.testbed import bed as bed_module
from tests.testbed.fixtures import GitHub, RegistryReader

OWNER = "octo-org"
REPOSITORY = "octo-org/app"
IMAGE = "hello"
PACKAGE = f"{OWNER}/{IMAGE}"  # the registry repository that receives the blobs
PULL_TIMEOUT = 300

WIDTH = max(shutil.get_terminal_size((120, 24)).columns, 120)
console = Console(width=WIDTH, highlight=False, soft_wrap=True)


def heading(text: str) -> None:
    console.print()
    console.print(Rule(f"[bold]{text}", align="left"))


def setup_scenario(github: GitHub) -> str:
    """octo-org with octocat as admin, its public repo app; returns app's GITHUB_TOKEN."""
    github.reset()
    github.org(OWNER, members={"octocat": "admin"})
    # Public: a package first pushed by a repository's GITHUB_TOKEN inherits the
    # repository's visibility, so anyone can pull it without logging in.
    github.repo(REPOSITORY, private=False, description="Demo app", license_spdx="MIT")
    return github.github_token(REPOSITORY, packages="write")


def render_markdown(markdown: str) -> str:
    """The job summary as plain terminal text: rich lays out headings, tables and code
    blocks (HTML such as ``<details>`` is dropped); padding and blank runs are trimmed."""
    renderer = Console(width=WIDTH, highlight=False, color_system=None, record=True)
    with renderer.capture() as captured:
        renderer.print(Markdown(markdown))
    lines = [line.rstrip() for line in captured.get().splitlines()]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(f"  {line}" if line else "")
    return "\n".join(kept).strip("\n")


def print_log(result: RunResult) -> None:
    """The step's log as the run page shows it with every group folded."""
    folded = {g.start: g for g in result.groups if g.end is not None}
    index = 0
    while index < len(result.log):
        group = folded.get(index + 1) if result.log[index].startswith("##[group]") else None
        if group is not None and group.end is not None:
            inside = group.end - group.start
            console.print(f"  > {group.title}  [dim]({inside} lines folded)[/dim]")
            index = group.end + 1
            continue
        console.print(f"  {result.log[index]}", markup=False)
        index += 1


def print_outputs(result: RunResult) -> None:
    width = max((len(k) for k in result.outputs), default=0)
    for key, value in result.outputs.items():
        if key in ("metadata", "report", "json"):
            value = f"{value[:60]}... ({len(value)} characters of JSON)"
        lines = value.splitlines() or [""]
        console.print(f"  {key.ljust(width)}  {lines[0]}", markup=False)
        for more in lines[1:]:
            console.print(f"  {' ' * width}  {more}", markup=False)


def print_annotations(result: RunResult) -> None:
    if not result.annotations:
        console.print("  (none)")
    for note in result.annotations:
        title = f"{note.title}: " if note.title else ""
        console.print(f"  {note.level}: {title}{note.message}", markup=False)


def pull(bed: Any, client: Any, ref: str) -> bool:
    """Untag ``ref`` locally, then ``docker pull`` it anonymously from the bed's registry."""
    env_prefix = f"DOCKER_HOST={shlex.quote(bed.docker_host)}"
    command = ["docker", "pull", ref]
    console.print(f"  $ {env_prefix} {shlex.join(command)}", markup=False)
    client.images.remove(ref)  # only the tag: layers stay, so the pull checks the registry
    docker = shutil.which("docker")
    if docker is None:
        console.print("  (no docker CLI on PATH; pulling through the SDK instead)")
        repo, tag = ref.rsplit(":", 1)
        image = client.images.pull(repo, tag=tag)
        console.print(f"  pulled {image.id}", markup=False)
        return True
    # An empty DOCKER_CONFIG: no stored credentials, so the pull is really anonymous.
    with tempfile.TemporaryDirectory(prefix="ghdp-demo-config-") as config:
        env = {**os.environ, "DOCKER_HOST": bed.docker_host, "DOCKER_CONFIG": config}
        done = subprocess.run(
            [docker, "pull", ref],
            env=env,
            capture_output=True,
            text=True,
            timeout=PULL_TIMEOUT,
            check=False,
        )
    for line in (done.stdout + done.stderr).splitlines():
        console.print(f"  {line}", markup=False)
    return done.returncode == 0


def main(bed: bed_module.Bed | None = None) -> int:
    """``bed``: the bed on the engine to use (a test's ``testbed``); default the first one."""
    bed = bed or bed_module.up()
    client = bed_module.docker_client(bed.docker_host)
    github = GitHub(bed.github_url)
    reader = RegistryReader(bed)
    token = setup_scenario(github)
    harness = product.harness_for(client, bed)

    heading("Action image (the runner builds it in every job)")
    built = harness.build(product.ROOT)
    how = "reused (unchanged since the last build)" if built.cached else f"{built.seconds:.1f} s"
    console.print(f"  {built.tag}  {built.size / 1e6:.0f} MB  built: {how}", markup=False)

    with tempfile.TemporaryDirectory(prefix="ghdp-demo-") as tmp:
        workspace = product.hello_workspace(Path(tmp) / "app")
        inputs = {"image": IMAGE}
        mark = reader.since()
        first = product.publish(harness, bed, inputs, github_token=token, workspace=workspace)
        first_uploads = reader.access_log(since=mark).uploads[PACKAGE]

        heading(f"Step log: uses ./ with image: {IMAGE} ({first.conclusion})")
        print_log(first)
        heading("Outputs")
        print_outputs(first)
        heading("Job summary")
        console.print(render_markdown(first.summary or "(empty)"), markup=False)
        heading("Annotations")
        print_annotations(first)
        if first.failed:
            console.print(f"[bold red]The publish step failed (exit {first.exit_code}).")
            return 1
        console.print(f"\n  {first_uploads} new blobs uploaded to {PACKAGE}")

        refs = first.outputs["tags"].splitlines()
        heading("Pull it (anonymously: the package is public)")
        pulled = pull(bed, client, refs[0])

        heading("Publish the same commit again")
        mark = reader.since()
        again = product.publish(harness, bed, inputs, github_token=token, workspace=workspace)
        uploads = reader.access_log(since=mark).uploads[PACKAGE]
        same = again.outputs.get("digest") == first.outputs["digest"]
        console.print(f"  conclusion: {again.conclusion}")
        console.print(
            f"  digest: {again.outputs.get('digest', '')} ({'unchanged' if same else 'CHANGED'})",
            markup=False,
        )
        console.print(f"  [bold]{uploads} new blobs uploaded[/bold] to {PACKAGE}")

    ok = pulled and not again.failed and same and uploads == 0
    console.print()
    console.print("[bold green]Demo done." if ok else "[bold red]Demo found a problem (above).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
