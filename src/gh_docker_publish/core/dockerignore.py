"""BuildKit's ``.dockerignore`` rules, so the classic builder sends the context BuildKit would.

Issue 17 (items 5-9): docker-py's own context tar matched case-insensitively, read the file
in the locale's encoding, lost a first pattern behind a UTF-8 BOM, took ``[^x]`` literally
and re-included whole directories; each put excluded files into published images. The
reference is BuildKit's behaviour as documented and tested upstream:

- reading (moby/patternmatcher ``ignorefile.ReadAll``): lines split at ``\\n`` with a
  trailing ``\\r`` dropped; a UTF-8 BOM stripped from the first line only; a line starting
  with ``#`` *in column 0* is a comment (`` #x`` is the pattern ``#x``); surrounding
  whitespace trimmed, blank lines skipped; ``!`` marks an exception; each pattern cleaned
  like Go's ``filepath.Clean`` and a leading ``/`` removed;
- matching (moby/patternmatcher): case-sensitive; a pattern without wildcards compares
  exactly; ``prefix**`` and ``**suffix`` are prefix and suffix tests (``**/foo`` also
  matches ``foo``); otherwise the pattern becomes a regular expression where ``*`` and
  ``?`` stop at ``/``, ``**`` spans directories, ``[...]`` is copied as a regexp class (so
  ``[^x]`` negates, and may match ``/``) and ``\\`` escapes the next character. The last
  pattern that matches a path decides; a pattern matches a path when it matches the path
  or (through the parent's result) one of its parent directories;
- walking (tonistiigi/fsutil, the walker buildx sends the context with): an excluded
  directory is skipped unless an exception could match inside it, then only its included
  descendants (and the directories leading to them) are sent.

Paths are ``/``-separated, relative to the context, as ``str`` decoded with
``surrogateescape`` (``os.fsdecode``) so that any bytes compare as bytes. Pure: no I/O.
"""

from __future__ import annotations

import posixpath
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

_BOM = b"\xef\xbb\xbf"
#: Go's ``bufio.Scanner`` refuses a line longer than its 64 KiB buffer.
MAX_LINE_BYTES = 64 * 1024
#: ``unicode.IsSpace`` (what Go's ``strings.TrimSpace`` trims), not Python's ``str.isspace``
#: (which also counts \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: Characters that mean nothing in a path pattern but something in a regexp.
_REGEXP_ONLY = frozenset(".+()|{}$")
_REPLACEMENT = "\ufffd"
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


class PatternError(ValueError):
    """A ``.dockerignore`` BuildKit would refuse (the build fails with this reason)."""


def _shown(pattern: str) -> str:
    """A pattern for an error message: quoted, and short (a line may be 64 KiB)."""
    return repr(pattern if len(pattern) <= 60 else pattern[:60] + "...")


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` on Linux: like ``normpath`` but ``//x`` becomes ``/x``."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def read_patterns(data: bytes) -> list[str]:
    """The patterns of a ``.dockerignore`` file's bytes, in order, ``!`` kept as a prefix.

    Raises:
        PatternError: a line too long for BuildKit's reader.
    """
    patterns: list[str] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a final newline ends the last line, it opens no new one
    for number, raw in enumerate(lines, start=1):
        if len(raw) >= MAX_LINE_BYTES:
            raise PatternError(f"line {number} is longer than {MAX_LINE_BYTES} bytes")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        line = raw.decode("utf-8", "surrogateescape")
        if line.startswith("#"):
            continue
        pattern = line.strip(_GO_SPACE)
        if not pattern:
            continue
        exception = pattern.startswith("!")
        if exception:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if exception else pattern)
    return patterns


def as_buildkit_sends(patterns: Iterable[str]) -> list[str]:
    """The patterns as they reach BuildKit's walker: they travel as JSON in the build
    definition, and Go's JSON encoder turns each byte that is not UTF-8 into U+FFFD.

    Found on the bed (buildx 0.13, Engine 20.10): the Latin-1 pattern ``caf\\xe9`` does not
    exclude the file ``caf\\xe9`` but does exclude ``caf\\ufffd``; ``caf\\xe9*`` excludes
    both (Go's regexp reads an undecodable byte as U+FFFD). They then travel in an HTTP/2
    header, which may hold no control character but tab: the build fails ("stream
    terminated by RST_STREAM with error code: PROTOCOL_ERROR"), e.g. for a UTF-16 file.

    Raises:
        PatternError: a pattern with such a character.
    """
    sent = [_as_go_runes(p) for p in patterns]
    for pattern in sent:
        bad = _CONTROL.search(pattern)
        if bad:
            raise PatternError(
                f"the pattern {_shown(pattern)} holds the control character {bad.group()!r}, "
                "which BuildKit cannot send (is the file UTF-16?)"
            )
    return sent


def _check_syntax(pattern: str) -> None:
    """Refuse what Go's ``filepath.Match`` calls a bad pattern (BuildKit checks the same)."""

    def bad(why: str) -> PatternError:
        return PatternError(f"syntax error in pattern {_shown(pattern)}: {why}")

    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise bad("a trailing backslash")
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            ranges = 0
            while True:
                if i >= n:
                    raise bad("an unclosed [")
                if pattern[i] == "]" and ranges:
                    break
                for end in (False, True):
                    if i >= n or pattern[i] in "-]":
                        raise bad("a bad range in [...]")
                    if pattern[i] == "\\":
                        i += 1
                        if i >= n:
                            raise bad("an unclosed [")
                    i += 1
                    if end or i >= n or pattern[i] != "-":
                        break
                    i += 1  # the '-' of lo-hi
                ranges += 1
        i += 1


MatchKind = Literal["exact", "prefix", "suffix", "regexp"]


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern (without its ``!``) and the cheapest test that decides it."""

    text: str
    exception: bool
    kind: MatchKind
    regexp: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, line: str) -> Pattern:
        """A pattern as ``read_patterns`` returns it (``!`` prefix for an exception).

        Raises:
            PatternError: ``!`` alone, or a pattern Go's ``filepath.Match`` rejects.
        """
        text = go_clean(line.strip(_GO_SPACE))
        exception = text.startswith("!")
        if exception:
            if len(text) == 1:
                raise PatternError('illegal exclusion pattern: "!"')
            text = text[1:]
        _check_syntax(text)
        kind, source = _translate(text)
        regexp = None
        if kind == "regexp":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "possible nested set"
                try:
                    regexp = re.compile(source)
                except re.error as exc:
                    raise PatternError(f"syntax error in pattern {_shown(text)}: {exc}") from exc
        return cls(text, exception, kind, regexp)

    def matches(self, path: str) -> bool:
        """Whether this pattern matches ``path`` itself (no parent directories)."""
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regexp is not None
        # Go's regexp reads invalid UTF-8 as U+FFFD: undecodable bytes compare the same way.
        return self.regexp.match(_as_go_runes(path)) is not None


def _as_go_runes(text: str) -> str:
    if text.isascii():
        return text
    return "".join(_REPLACEMENT if "\udc80" <= ch <= "\udcff" else ch for ch in text)


def _translate(pattern: str) -> tuple[MatchKind, str]:
    """The match kind and, for ``regexp``, the expression, the way patternmatcher decides."""
    out = [r"\A"]
    kind: MatchKind = "exact"
    i, n, token = 0, len(pattern), 0
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*" and i < n and pattern[i] == "*":
            i += 1
            if i < n and pattern[i] == "/":
                i += 1
            if i >= n:  # "**" at the end: everything below
                if kind == "exact":
                    kind = "prefix"
                else:
                    out.append(".*")
                    kind = "regexp"
            else:
                out.append("(?:.*/)?")
                kind = "regexp"
            if token == 0:
                kind = "suffix"
        elif ch == "*":
            out.append("[^/]*")
            kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _REGEXP_ONLY:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + _as_go_runes(pattern[i]))
                i += 1
                kind = "regexp"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(_as_go_runes(ch))  # "^" too: Go copies it, an anchor
        token += 1
    out.append(r"\Z")
    return kind, "".join(out)


#: Per pattern, whether it matched a directory: what its children inherit.
MatchInfo = tuple[bool, ...]


@dataclass(frozen=True)
class Matcher:
    """An ordered list of patterns; the last one matching a path decides."""

    patterns: tuple[Pattern, ...]

    @classmethod
    def of(cls, lines: Iterable[str]) -> Matcher:
        """Raises ``PatternError`` for the first bad pattern, like BuildKit does."""
        return cls(tuple(Pattern.parse(line) for line in lines if line.strip(_GO_SPACE)))

    def excludes(self, path: str, parent: MatchInfo = ()) -> tuple[bool, MatchInfo]:
        """Whether ``path`` is excluded, given its parent directory's ``MatchInfo``.

        With no parent result (a top-level path, or a single lookup), parent directories
        are tested one by one (patternmatcher ``MatchesUsingParentResults``).
        """
        excluded = False
        info = [False] * len(self.patterns)
        parents: Sequence[str] | None = None
        for index, pattern in enumerate(self.patterns):
            hit = bool(parent) and parent[index]
            if not hit:
                if pattern.exception != excluded:
                    continue
                hit = pattern.matches(path)
                if not hit and not parent:
                    if parents is None:
                        parents = _parent_dirs(path)
                    hit = any(pattern.matches(p) for p in parents)
            info[index] = hit
            if hit:
                excluded = not pattern.exception
        return excluded, tuple(info)

    def may_include_below(self, directory: str) -> bool:
        """Whether the walk must enter an excluded ``directory`` (fsutil's rule): always
        when an exception has wildcards, else when an exception names a path inside it."""
        exceptions = [p.text for p in self.patterns if p.exception]
        if not exceptions:
            return False
        if any(_has_wildcards(text) for text in exceptions):
            return True
        prefix = directory + "/"
        return any((text + "/").startswith(prefix) for text in exceptions)


def _parent_dirs(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _has_wildcards(text: str) -> bool:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in "*?[":
            return True
        i += 1
    return False


def escape(path: str) -> str:
    """A pattern line that matches exactly ``path`` (for a ``.dockerignore`` we write)."""
    escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in path)
    if escaped.startswith("!"):
        escaped = "\\" + escaped
    return "/" + escaped
