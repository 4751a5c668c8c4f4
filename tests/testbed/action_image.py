"""The action's Dockerfile as the test bed builds it.

The Dockerfile names its base as a plain, digest-pinned ``FROM python:3.13-slim@sha256:...``
so that Dependabot can read and bump it (it skips ``ARG`` + ``FROM ${IMAGE}``). That image
cannot be pulled here (no registry on the internet), and no local image can be tagged with a
digest, so the bed builds a *copy* of the Dockerfile whose ``FROM python:...`` lines name the
bed's own Debian trixie base (``testbed/python:3``, Python 3.13 like the real base). Every other
line is the file the runner builds, with the classic builder, as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

#: ``FROM python:TAG[@sha256:...]`` (optionally ``docker.io/library/``), not a stage name.
PYTHON_FROM = re.compile(r"^(FROM\s+)(?:docker\.io/)?(?:library/)?python[:@]\S+", re.M | re.I)
#: Build arguments the bed passes: its Debian mirror is a frozen snapshot whose sid Release
#: file has expired (the Dockerfile's comment on APT_CHECK_VALID_UNTIL).
BUILD_ARGS: Mapping[str, str] = {"APT_CHECK_VALID_UNTIL": "false"}


def for_bed(dockerfile_text: str, base_image: str) -> str:
    """The Dockerfile with each ``FROM python:...`` naming ``base_image`` instead."""
    rewritten, count = PYTHON_FROM.subn(lambda m: m.group(1) + base_image, dockerfile_text)
    if count == 0:
        raise ValueError("no `FROM python:...` line in the Dockerfile: nothing to point at the bed")
    return rewritten


def write_for_bed(dockerfile: Path, base_image: str, out: Path) -> Path:
    """Write :func:`for_bed` of ``dockerfile`` to ``out`` and return ``out``."""
    out.write_text(for_bed(dockerfile.read_text(encoding="utf-8"), base_image), encoding="utf-8")
    return out
