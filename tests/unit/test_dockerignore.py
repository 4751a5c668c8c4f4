"""BuildKit's .dockerignore rules (core.dockerignore), cases from moby/patternmatcher's
documented behaviour (its README, the Dockerfile reference's ".dockerignore file" section,
the behaviour its test tables pin) and from builds on the bed (issue 17)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from gh_docker_publish.core.dockerignore import (
    Matcher,
    PatternError,
    as_buildkit_sends,
    escape,
    go_clean,
    read_patterns,
)
from gh_docker_publish.edges import build_context
from gh_docker_publish.errors import BuildError


def excluded(patterns: list[str], path: str) -> bool:
    """One lookup with parents tested one by one (what the walker does at the top)."""
    return Matcher.of(patterns).excludes(path)[0]


def walked(patterns: list[str], path: str) -> bool:
    """The walker's way: each parent directory first, its result handed down."""
    matcher = Matcher.of(patterns)
    info: tuple[bool, ...] = ()
    parts = path.split("/")
    for i in range(1, len(parts)):
        _, info = matcher.excludes("/".join(parts[:i]), info)
    return matcher.excludes(path, info)[0]


# (pattern, path, whether the pattern excludes the path or one of its parent directories)
SINGLE = [
    ("**", "file", True), ("**", "dir/file", True), ("**/", "file", True),
    ("**/**", "dir/file", True), ("dir/**", "dir/file", True), ("dir/**", "dir/a/b", True),
    ("abc/**", "abc", False), ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir", "a/b/dir", True), ("**/dir", "xdir", False),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True), ("**file", "dir/dir/file", True), ("**/file*", "a/b/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True),
    ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[b-d]e", "ae", False),
    ("a[^b-d]e", "aze", True), ("a[^b-d]e", "ace", False),
    ("a[^x]b", "a/b", True),  # a regexp class: it may match "/" (not filepath.Match's rule)
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False), ("a?b", "a/b", False),
    ("a*b", "a/b", False), ("a*", "ab/c", True), ("a*/b", "a/c/b", False),
    ("a(b)c/def", "a(b)c/def", True), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True), ("a\\*b", "axb", False), ("a\\\\", "a\\", True),
    ("[\\]a]", "]", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("a?b", "a\u263ab", True), ("a???b", "a\u263ab", False), ("[a-\u03b6]*", "\u03b1", True),
    ("secret.txt", "Secret.txt", False), ("Secret.txt", "Secret.txt", True),  # case matters
    ("docs", "docs/README.md", True), ("docs/", "docs/README.md", True),
    ("/abs", "abs", True), ("./sub/../x", "x", True),
]


@pytest.mark.parametrize(("pattern", "path", "hit"), SINGLE)
def test_one_pattern(pattern: str, path: str, hit: bool) -> None:
    lines = read_patterns(pattern.encode())
    assert excluded(lines, path) is hit
    assert walked(lines, path) is hit


# (patterns, path, excluded) — the last matching pattern decides; "!" is an exception
MULTI = [
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/x.whl", False),
    (["**/dir", "!dir/one-file"], "dir/one-file", False),  # issue 17 item 7
    (["**/dir", "!dir/one-file"], "dir/other", True),
    (["**/dir", "!dir/one-file"], "dir", True),
]


@pytest.mark.parametrize(("patterns", "path", "hit"), MULTI)
def test_pattern_lists(patterns: list[str], path: str, hit: bool) -> None:
    assert excluded(patterns, path) is hit
    assert walked(patterns, path) is hit


@pytest.mark.parametrize(
    "bad", ["[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "!"]
)
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        Matcher.of([bad])


def test_reading_the_file() -> None:
    text = b"test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n"
    assert read_patterns(text) == ["test1", "test2", "a/file/here", "lastfile",
                                   "!inverted/abs/path"]


def test_a_bom_is_stripped_from_the_first_line_only() -> None:  # item 6
    bom = b"\xef\xbb\xbf"
    assert read_patterns(bom + b"secret\n" + bom + b"x\n") == ["secret", "\ufeffx"]


def test_only_column_zero_starts_a_comment() -> None:  # item 8
    assert read_patterns(b"#c\n #x\n\t# y\n") == ["#x", "# y"]


def test_crlf_and_go_whitespace() -> None:
    assert read_patterns(b"a \r\n\r\n\x0bb\x0c\r\n") == ["a", "b"]
    assert read_patterns(b"\x1ca\n") == ["\x1ca"]  # not space to Go's TrimSpace


def test_exception_marks() -> None:
    assert read_patterns(b"!\n! \n!a\n") == ["!", "!", "!a"]
    with pytest.raises(PatternError):
        Matcher.of(read_patterns(b"! \n"))


def test_latin1_is_read_as_bytes() -> None:  # item 9
    lines = read_patterns(b"caf\xe9\n# \xff\n")
    assert lines == [os.fsdecode(b"caf\xe9")]
    sent = Matcher.of(as_buildkit_sends(lines))
    assert sent.excludes("caf\ufffd")[0] and not sent.excludes(os.fsdecode(b"caf\xe9"))[0]
    wildcard = Matcher.of(as_buildkit_sends(read_patterns(b"caf\xe9*\n")))
    assert wildcard.excludes(os.fsdecode(b"caf\xe8x"))[0]


def test_a_line_too_long_for_buildkit() -> None:
    with pytest.raises(PatternError):
        read_patterns(b"a" * (64 * 1024) + b"\n")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a//b", "a/b"), ("//a", "/a"), ("a/./b/", "a/b"), ("a/../..", ".."), ("", "."),
     ("/..", "/")],
)
def test_go_clean(raw: str, clean: str) -> None:
    assert go_clean(raw) == clean


@pytest.mark.parametrize("name", ["plain", "a*b", "#hash", "!bang", "[x]", "back\\slash"])
def test_escape_matches_exactly_that_name(name: str) -> None:
    matcher = Matcher.of(read_patterns(escape(name).encode()))
    assert matcher.excludes(name)[0]
    assert not matcher.excludes(name + "x")[0]


def test_may_include_below() -> None:
    prefix = Matcher.of(["dir", "!dir/sub/file"])
    assert prefix.may_include_below("dir") and prefix.may_include_below("dir/sub")
    assert not prefix.may_include_below("other")
    assert Matcher.of(["dir", "!*.txt"]).may_include_below("other")
    assert not Matcher.of(["dir"]).may_include_below("dir")


# --- the walk and the tar (edges.build_context) on a real directory ------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _tar_names(context: Path, dockerfile: Path) -> tuple[str, list[str], bytes]:
    out = context.parent / "ctx.tar"
    with open(out, "wb") as fh:
        name = build_context.write_context_tar(context, dockerfile, fh)
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        ignore = [m for m in members if m.name == ".dockerignore"]
        data = tar.extractfile(ignore[-1]).read() if ignore else b""  # type: ignore[union-attr]
    return name, [m.name for m in members], data


def test_walk_sends_excluded_parents_only_before_an_included_child(tmp_path: Path) -> None:
    ctx = _tree(tmp_path / "c", {"Dockerfile": "FROM scratch\n", ".dockerignore": "a\n!a/b/keep\n",
                                 "a/b/keep": "k", "a/b/drop": "d", "a/c/drop": "d"})
    name, names, _ = _tar_names(ctx, ctx / "Dockerfile")
    assert name == "Dockerfile"
    assert names == [".dockerignore", "Dockerfile", "a", "a/b", "a/b/keep"]


def test_the_tar_is_the_same_for_the_same_tree(tmp_path: Path) -> None:
    ctx = _tree(tmp_path / "c", {"Dockerfile": "FROM scratch\n", "z": "1", "a/b": "2"})
    first = tmp_path / "1.tar"
    second = tmp_path / "2.tar"
    for out in (first, second):
        with open(out, "wb") as fh:
            build_context.write_context_tar(ctx, ctx / "Dockerfile", fh)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert {(m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()} == {(0, 0, "", "")}


def test_the_daemon_is_told_to_drop_what_buildkit_would_not_send(tmp_path: Path) -> None:
    """The classic daemon deletes .dockerignore and the Dockerfile when the tar's
    .dockerignore matches them; the Dockerfile-specific file's verdict must win."""
    ctx = _tree(tmp_path / "c", {"app.Dockerfile": "FROM scratch\n",
                                 "app.Dockerfile.dockerignore": "app.Dockerfile\n",
                                 ".dockerignore": "other\n", "keep": "k"})
    name, names, ignore = _tar_names(ctx, ctx / "app.Dockerfile")
    assert name.startswith(".dockerfile.") and "app.Dockerfile" not in names
    assert names[-1] == ".dockerignore" and names.count(".dockerignore") == 2
    assert ignore.startswith(b"other\n")  # the context's own lines first
    assert Matcher.of(read_patterns(ignore)).excludes(name)[0]
    assert not Matcher.of(read_patterns(ignore)).excludes(".dockerignore")[0]


def test_an_ignore_file_link_the_daemon_would_misread_is_refused(tmp_path: Path) -> None:
    ctx = _tree(tmp_path / "c", {"real-ignore": "keep\n", "keep": "k"})
    (ctx / ".dockerignore").symlink_to("real-ignore")
    outside = _tree(tmp_path, {"Dockerfile": "FROM scratch\n"}) / "Dockerfile"
    with pytest.raises(BuildError, match="cannot send this context"):
        _tar_names(ctx, outside)


def test_a_dockerfile_outside_goes_in_under_a_digest_name(tmp_path: Path) -> None:
    ctx = _tree(tmp_path / "c", {"keep": "k"})
    outside = _tree(tmp_path, {"Dockerfile": "FROM scratch\n"}) / "Dockerfile"
    name, names, ignore = _tar_names(ctx, outside)
    assert name.startswith(".dockerfile.") and names == ["keep", name, ".dockerignore"]
    assert Matcher.of(read_patterns(ignore)).excludes(name)[0]


@pytest.mark.parametrize("target", ["/proc/self/environ", "../secret", "sub/../../secret"])
def test_a_dockerfile_link_out_of_its_directory_is_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "secret").write_text("SECRET-WORD")
    ctx = tmp_path / "c"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").symlink_to(target)
    with pytest.raises(BuildError, match="symbolic link"):
        build_context.read_dockerfile(ctx / "Dockerfile")


def test_a_dockerfile_link_inside_its_directory_is_read(tmp_path: Path) -> None:
    ctx = _tree(tmp_path / "c", {"sub/real": "FROM scratch\n"})
    (ctx / "sub" / "up").symlink_to("../sub/real")
    (ctx / "Dockerfile").symlink_to("sub/up")
    assert build_context.read_dockerfile(ctx / "Dockerfile") == "FROM scratch\n"


def test_a_latin1_dockerfile_reads_without_a_crash(tmp_path: Path) -> None:  # item 9
    (tmp_path / "Dockerfile").write_bytes(b"# r\xe9sum\xe9\nFROM scratch\n")
    assert build_context.read_dockerfile(tmp_path / "Dockerfile").endswith("FROM scratch\n")


def test_a_link_through_a_sibling_directory_stays_inside(tmp_path: Path) -> None:
    ctx = _tree(tmp_path / "c", {"real": "FROM scratch\n", "sub/x": ""})
    (ctx / "Dockerfile").symlink_to("sub/../real")
    assert build_context.read_dockerfile(ctx / "Dockerfile") == "FROM scratch\n"


def test_control_characters_cannot_reach_buildkit() -> None:
    with pytest.raises(PatternError, match="control character"):
        as_buildkit_sends(read_patterns("secret\n".encode("utf-16")))
    assert as_buildkit_sends(["a\tb"]) == ["a\tb"]
