"""Where a run stops or warns on the size and reach of what it was asked (issue 17).

- **At most ``MAX_TAGS`` tags.** Each tag is one manifest PUT, and every tag is repeated in
  the ``tags``, ``refs`` and ``metadata`` outputs and in the job summary. GitHub caps a
  job's outputs at 1 MB (approximated as UTF-16) and a step summary at 1 MiB
  (docs.github.com "Passing information between jobs", "Workflow commands"); 10,000 tags
  took 142 s and wrote a 1 MB ``metadata``. 100 tags keep the outputs under a tenth of the
  cap even with 255-character names, and no tagging scheme we know needs more: more is a
  rule gone wrong (a loop over branches, a list pasted twice).
- **A warning for ``context`` or ``file`` outside the workspace.** The docker CLIs build
  any directory, and a monorepo may keep its Dockerfiles elsewhere, so it is not refused;
  but on a runner everything under the context is sent to the builder and ``COPY . ``
  can publish it, so a ``../`` or absolute path that leaves ``GITHUB_WORKSPACE`` is said.
"""

from __future__ import annotations

from pathlib import Path

from gh_docker_publish.errors import InputError

MAX_TAGS = 100


def check_tag_count(tags: tuple[str, ...]) -> None:
    """Raises InputError when the final tag list is longer than ``MAX_TAGS``."""
    if len(tags) > MAX_TAGS:
        raise InputError.too_many_tags(len(tags), MAX_TAGS)


def outside_workspace(workspace: str, **paths: str) -> list[str]:
    """One warning per path input (name -> value as given) that resolves outside
    ``workspace`` (symlinks followed; relative paths from the current directory, where the
    runner starts the action). No workspace (the CLI): no warnings."""
    if not workspace:
        return []
    root = Path(workspace).resolve()
    warnings = []
    for name, value in paths.items():
        real = Path(value).resolve()
        if real != root and root not in real.parents:
            warnings.append(
                f"Input '{name}': '{value}' is outside the workspace ({workspace}). "
                + ("Every file under it is sent to the builder, and COPY can put them in the "
                   "published image." if name == "context" else
                   "The Dockerfile does not come from the checkout.")
                + " Keep it inside the checkout unless that is what you meant."
            )
    return warnings
