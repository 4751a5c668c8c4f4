"""The classic builder sends the context BuildKit sends (issue 17, items 1 and 5-9).

A table of contexts: each is built with the plain ``docker buildx build`` CLI and with our
classic builder (``FROM scratch`` + ``COPY . /``, one layer), and the files in both images
must equal the list written here from the ``.dockerignore`` documentation
(docs.docker.com/build/concepts/context/#dockerignore-files) and moby/patternmatcher's
documented rules. Before the fix the classic builder (docker-py's tar) failed items 5-9.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.edges import builders
from gh_docker_publish.errors import BuildError
from tests.integration.conftest import Outcome

COPY_ALL = b"FROM scratch\nCOPY . /\n"
BOM = b"\xef\xbb\xbf"
LATIN1 = os.fsdecode(b"caf\xe9")


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, bytes]  # relative path -> content; a value "->x" makes a symlink to x
    expected: list[str]  # every path in the image (directories too), sorted
    dockerfile: str = "ctx/Dockerfile"  # relative to the case directory; the context is ctx/


def _case(name: str, files: dict[str, bytes], expected: list[str], **kw: Any) -> Case:
    return Case(name, files, sorted(expected), **kw)


CASES = [
    _case(  # item 5: <Dockerfile>.dockerignore wins over the context's .dockerignore
        "dockerfile-specific-ignore",
        {"app.Dockerfile": COPY_ALL, "app.Dockerfile.dockerignore": b"secret\n",
         ".dockerignore": b"other\n", "secret": b"s", "other": b"o", "keep": b"k"},
        [".dockerignore", "app.Dockerfile", "app.Dockerfile.dockerignore", "keep", "other"],
        dockerfile="ctx/app.Dockerfile",
    ),
    _case(  # item 6: a UTF-8 BOM does not eat the first pattern
        "bom",
        {"Dockerfile": COPY_ALL, ".dockerignore": BOM + b"secret\nother\n",
         "secret": b"s", "other": b"o", "keep": b"k"},
        [".dockerignore", "Dockerfile", "keep"],
    ),
    _case(  # item 7: an exception re-includes one file, not its whole directory
        "exception-in-excluded-dir",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"**/dir\n!dir/one-file\n",
         "dir/one-file": b"1", "dir/secret": b"s", "dir/sub/deep": b"d", "keep": b"k"},
        [".dockerignore", "Dockerfile", "dir", "dir/one-file", "keep"],
    ),
    _case(  # item 8: case-sensitive
        "case-sensitive",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"secret.txt\n",
         "secret.txt": b"s", "Secret.txt": b"S"},
        [".dockerignore", "Dockerfile", "Secret.txt"],
    ),
    _case(  # item 8: [^x] negates
        "negated-class",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"[^k]ecret\n",
         "secret": b"s", "kecret": b"k"},
        [".dockerignore", "Dockerfile", "kecret"],
    ),
    _case(  # item 8: only a '#' in column 0 starts a comment
        "indented-hash-is-a-pattern",
        {"Dockerfile": COPY_ALL, ".dockerignore": b" #x\n# keep\n", "#x": b"s", "keep": b"k"},
        [".dockerignore", "Dockerfile", "keep"],
    ),
    _case(  # item 9: a Latin-1 .dockerignore and Dockerfile; BuildKit gets its patterns
        # with each non-UTF-8 byte made U+FFFD, so "caf\xe9" excludes "caf\ufffd" only
        "latin-1",
        {"Dockerfile": b"# r\xe9sum\xe9\n" + COPY_ALL, ".dockerignore": b"# \xe9\ncaf\xe9\n",
         LATIN1: b"s", "caf\ufffd": b"r", "cafe": b"k"},
        [".dockerignore", "Dockerfile", LATIN1, "cafe"],
    ),
    _case(  # ... and in a wildcard pattern U+FFFD matches any byte that is not UTF-8
        "latin-1-wildcard",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"x\xe9*\n",
         os.fsdecode(b"x\xe9a"): b"1", os.fsdecode(b"x\xe8b"): b"2", "x\ufffdc": b"3",
         "xed": b"k"},
        [".dockerignore", "Dockerfile", "xed"],
    ),
    _case(
        "crlf-and-whitespace",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"secret  \r\n\r\n  other\r\n",
         "secret": b"s", "other": b"o", "keep": b"k"},
        [".dockerignore", "Dockerfile", "keep"],
    ),
    _case(
        "dockerfile-and-ignore-file-excluded",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"Dockerfile\n.dockerignore\n", "keep": b"k"},
        ["keep"],
    ),
    _case(
        "everything-but-one",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"*\n!keep\n", "keep": b"k", "dir/x": b"x"},
        ["keep"],
    ),
    _case(
        "exception-for-a-missing-file",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"dir\n!dir/nothing\n", "dir/a": b"a"},
        [".dockerignore", "Dockerfile"],
    ),
    _case(
        "wildcard-exception",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"dir\n!dir/*.txt\n",
         "dir/a.txt": b"a", "dir/b.bin": b"b", "dir/sub/c.txt": b"c"},
        [".dockerignore", "Dockerfile", "dir", "dir/a.txt"],
    ),
    _case(
        "double-star",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"**/*.log\n!important.log\n",
         "a.log": b"a", "x/b.log": b"b", "important.log": b"i", "x/important.log": b"i"},
        [".dockerignore", "Dockerfile", "important.log", "x"],
    ),
    _case(
        "trailing-double-star-keeps-the-directory",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"build/**\n",
         "build/a": b"a", "build/sub/b": b"b"},
        [".dockerignore", "Dockerfile", "build"],
    ),
    _case(
        "cleaned-patterns",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"/secret\n./sub/../other\nx/\n",
         "secret": b"s", "other": b"o", "x/y": b"y", "keep": b"k"},
        [".dockerignore", "Dockerfile", "keep"],
    ),
    _case(
        "question-mark-and-star-stop-at-slash",
        {"Dockerfile": COPY_ALL, ".dockerignore": b"a?c\n*/deep\n",
         "abc": b"1", "a/c": b"2", "x/deep": b"3", "x/y/deep": b"4"},
        [".dockerignore", "Dockerfile", "a", "a/c", "x", "x/y", "x/y/deep"],
    ),
    _case(  # a Dockerfile outside the context: no extra file lands in the image
        "dockerfile-outside-context",
        {"../Dockerfile": COPY_ALL, "keep": b"k"},
        ["keep"],
        dockerfile="Dockerfile",
    ),
    _case(  # a Dockerfile linked inside its directory; the link's own name for the ignore file
        "dockerfile-link-inside",
        {"Dockerfile": b"->sub/real.Dockerfile", "sub/real.Dockerfile": COPY_ALL,
         "sub/real.Dockerfile.dockerignore": b"keep\n", ".dockerignore": b"secret\n",
         "secret": b"s", "keep": b"k"},
        [".dockerignore", "Dockerfile", "keep", "sub", "sub/real.Dockerfile",
         "sub/real.Dockerfile.dockerignore"],
    ),
]


def write_tree(context: Path, files: dict[str, bytes]) -> Path:
    """Files under ``context``; a value ``b"->target"`` makes a symlink to ``target``."""
    context.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = context / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data.startswith(b"->"):
            path.symlink_to(data[2:].decode())
        else:
            path.write_bytes(data)
    return context


def _make(root: Path, case: Case) -> tuple[Path, Path]:
    return write_tree(root / "ctx", case.files), root / case.dockerfile


def image_files(client: Any, image_id: str) -> list[str]:
    """Every path in the image's layers, as ``COPY . /`` put them there."""
    names: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(b"".join(client.images.get(image_id).save()))) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=saved.extractfile(layer)) as inner:
                names.update(m.name.rstrip("/") for m in inner.getmembers())
    return sorted(n for n in names if n not in ("", "."))


def buildx_files(
    testbed: Any, client: Any, context: Path, dockerfile: Path, tmp: Path
) -> list[str]:
    """The same context built by the plain ``docker buildx build`` CLI."""
    iid = tmp / "buildx.iid"
    env = dict(os.environ, DOCKER_HOST=testbed.docker_host, DOCKER_CONFIG=str(tmp / "cfg"))
    done = subprocess.run(
        [str(builders.buildx_plugin() or "docker-buildx"), "build", "--load", "--quiet",
         "--iidfile", str(iid), "-f", str(dockerfile), str(context)],
        env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    return image_files(client, iid.read_text().strip())


class Quiet:
    """A build log that keeps nothing."""

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass


def classic_files(client: Any, context: Path, dockerfile: Path) -> list[str]:
    request = builders.BuildRequest(context=context, dockerfile=dockerfile)
    built = builders.ClassicBuilder(client.api).build(request, Quiet())
    return image_files(client, built.image_id)


#: Found by the bed's Engine 28.5 (issue 13): its BuildKit refuses a context holding a file
#: name that is not UTF-8 ("grpc: failed to unmarshal the received message: string field
#: contains invalid UTF-8"); 20.10's BuildKit takes it. For issue 17 to decide the fix.
NON_UTF8_NAME_ON_28 = pytest.mark.engines(
    exclude=dict.fromkeys(
        ("e28-classic", "e28-containerd"),
        "Engine 28's BuildKit refuses a non-UTF-8 file name in the context (grpc: invalid "
        "UTF-8)",
    )
)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=NON_UTF8_NAME_ON_28 if c.name == "latin-1" else ())
     for c in CASES],
)
def test_classic_context_equals_buildkit(
    case: Case, testbed: Any, docker_client: Any, tmp_path: Path
) -> None:
    context, dockerfile = _make(tmp_path / "case", case)
    assert buildx_files(testbed, docker_client, context, dockerfile, tmp_path) == case.expected
    assert classic_files(docker_client, context, dockerfile) == case.expected


LINKS_OUT = {"absolute": "/proc/self/environ", "above": "../outside/Dockerfile"}


@pytest.mark.parametrize("target", LINKS_OUT.values(), ids=list(LINKS_OUT))
def test_a_dockerfile_linked_out_of_its_directory_is_not_read(
    target: str, testbed: Any, docker_client: Any, tmp_path: Path
) -> None:
    """Item 1: buildx refuses it ("failed to read dockerfile"); so do we, without reading."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("OUTSIDE-SECRET-WORD\n")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").symlink_to(target)
    env = dict(os.environ, DOCKER_HOST=testbed.docker_host, DOCKER_CONFIG=str(tmp_path / "cfg"))
    done = subprocess.run(
        [str(builders.buildx_plugin() or "docker-buildx"), "build", str(context)],
        env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode != 0 and "failed to read dockerfile" in done.stderr
    with pytest.raises(BuildError) as caught:
        classic_files(docker_client, context, context / "Dockerfile")
    assert "symbolic link" in str(caught.value)
    assert "OUTSIDE-SECRET-WORD" not in str(caught.value)


def test_publish_refuses_a_dockerfile_linked_to_the_environment(
    octo: Any, publish: Callable[..., Outcome], tmp_path: Path, unique_name: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Item 1 end to end: the environment (GITHUB_TOKEN) never reaches the log."""
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile").symlink_to("/proc/self/environ")
    token = octo.github_token("octo-org/app")
    monkeypatch.setenv("LEAK_CANARY", "canary-value-in-the-environment")
    for builder in ("buildkit", "classic"):
        out = publish(
            {"image": unique_name("link"), "context": str(context), "builder": builder},
            github_token=token,
        )
        assert out.code != 0
        assert "Input 'file'" in out.log and "symbolic link" in out.log
        log = "\n".join(ln for ln in out.log.splitlines() if not ln.startswith("::add-mask::"))
        for secret in ("canary-value-in-the-environment", token, token.upper()):
            assert secret not in log and secret not in out.summary


def test_buildkit_gets_the_dockerfile_path_as_given(
    octo: Any, publish: Callable[..., Outcome], docker_client: Any, testbed: Any,
    tmp_path: Path, unique_name: Any,
) -> None:
    """BuildKit finding: a resolved link made BuildKit use the target's own ignore file."""
    case = next(c for c in CASES if c.name == "dockerfile-link-inside")
    context, dockerfile = _make(tmp_path / "case", case)
    out = publish(
        {"image": unique_name("given"), "context": str(context), "file": str(dockerfile),
         "builder": "buildkit", "push": "false"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert image_files(docker_client, out.outputs["imageid"]) == case.expected


@pytest.mark.parametrize(
    "builder", [pytest.param("buildkit", marks=NON_UTF8_NAME_ON_28), "classic"]
)
def test_publish_builds_latin1_dockerfile_and_ignore_file(
    builder: str, octo: Any, publish: Callable[..., Outcome], docker_client: Any,
    tmp_path: Path, unique_name: Any,
) -> None:
    """Item 9 end to end: no traceback, the same files as buildx's table row."""
    case = next(c for c in CASES if c.name == "latin-1")
    context, dockerfile = _make(tmp_path / "case", case)
    out = publish(
        {"image": unique_name("latin"), "context": str(context), "file": str(dockerfile),
         "builder": builder, "push": "false"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert "Traceback" not in out.log
    assert image_files(docker_client, out.outputs["imageid"]) == case.expected
