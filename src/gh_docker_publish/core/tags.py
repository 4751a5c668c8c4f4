"""Which tags an image gets: defaults by event, or the ``tags`` input's rules.

The rule language is docker/metadata-action's ``type=`` lines (one rule per line,
comma-separated ``key=value`` attributes, double quotes allowed) so existing
workflows can move their ``tags:`` block over. Where we differ, and why:

- Lines keep their order; there is no ``priority=`` attribute (it is refused with a hint).
- No ``flavor``: an explicit ``tags`` input never adds ``latest`` by itself; write
  ``latest`` (or ``type=raw,value=latest``) where you want it. The defaults (empty
  ``tags`` input) do add it, see :func:`default_tags`.
- Templates are not Handlebars: only the placeholders listed in ``_GLOBALS`` and, in a
  semver ``pattern``, ``{{raw}} {{version}} {{major}} {{minor}} {{patch}}``. ``{{date}}``
  supports the moment.js tokens ``YYYY YY MM DD HH mm ss`` and ``tz='Area/City'``.
- ``type=match`` and ``type=pep440`` and the ``match=`` attribute are not supported.
- A semver pattern that uses only ``{{major}}`` produces nothing for ``0.x`` versions:
  semver gives no stability promise below 1.0, so a floating ``0`` tag would jump across
  breaking changes.
- ``type=ref,event=branch`` and ``type=edge`` never fire on ``pull_request`` /
  ``pull_request_target``: there GITHUB_REF can be the *base* branch, and a pull request
  must never overwrite the base branch's tag.
- Unknown types, attributes or placeholders are errors, not warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import semver

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.errors import InputError

MAX_TAG_LENGTH = 128  # Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
SHORT_SHA_LENGTH = 7  # metadata-action's DOCKER_METADATA_SHORT_SHA_LENGTH default

# Events whose payload is a pull request: GITHUB_REF is refs/pull/N/merge, or the
# base branch for pull_request_target.
PR_EVENTS = frozenset(
    {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"}
)

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
_DIGEST_RE = re.compile(r"(?:sha256|sha512):[0-9a-fA-F]*|[0-9a-fA-F]{64}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*((?:[^{}]*?))\s*\}\}")
_PULL_REF = re.compile(r"refs/pull/(\d+)/")
_ENABLE_RE = re.compile(
    r"true|false|\{\{\s*(?:is_default_branch|is_not_default_branch)\s*\}\}", re.IGNORECASE
)


# ---------------------------------------------------------------------------
# Context


@dataclass(frozen=True)
class GitContext:
    """The few facts about the run that decide tags (a slice of the shared RunContext)."""

    event_name: str
    ref: str
    sha: str
    default_branch: str | None = None
    pr_number: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    now: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)

    @classmethod
    def from_run(cls, run: RunContext, *, now: datetime | None = None) -> GitContext:
        """The slice of the run's context that decides tags."""
        return cls(
            event_name=run.event_name,
            ref=run.ref,
            sha=run.sha,
            default_branch=run.default_branch or None,
            pr_number=run.pr_number,
            payload=run.event,
            now=now or datetime.now(UTC),
        )

    @property
    def branch(self) -> str | None:
        """The branch GITHUB_REF names, if it names one."""
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        """The git tag being built: from GITHUB_REF, or the release's tag_name."""
        if self.ref.startswith("refs/tags/"):
            return self.ref.removeprefix("refs/tags/")
        if self.event_name == "release":
            return _str(_dig(self.payload, "release", "tag_name")) or None
        return None

    @property
    def is_pull_request(self) -> bool:
        return self.event_name in PR_EVENTS or self.ref.startswith("refs/pull/")

    @property
    def is_default_branch(self) -> bool:
        return (
            not self.is_pull_request
            and self.branch is not None
            and self.branch == self.default_branch
        )

    @property
    def is_marked_prerelease(self) -> bool:
        """A release the author flagged as pre-release on GitHub."""
        return self.event_name == "release" and _dig(self.payload, "release", "prerelease") is True

    @property
    def short_sha(self) -> str:
        return self.sha[:SHORT_SHA_LENGTH]


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------
# Tag text


def sanitize_tag(text: str) -> str:
    """Make any text a valid tag: invalid runs become ``-``, no leading ``.``/``-``, ≤128.

    Case is kept: tags are case-sensitive, only image names must be lowercase.
    Runs of invalid characters collapse into one ``-`` (as metadata-action does).
    """
    return _INVALID_RUN.sub("-", text).lstrip(".-")[:MAX_TAG_LENGTH]


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a valid Docker tag, in words the user can act on; None if it is."""
    if not tag:
        return "is empty"
    if "@" in tag or _DIGEST_RE.fullmatch(tag):
        return "looks like a digest; registries take tags here (IMAGE:VERSION), not digests"
    if "/" in tag or ":" in tag:
        return "looks like an image reference; give only the tag (the image goes in 'image')"
    if len(tag) > MAX_TAG_LENGTH:
        return f"is {len(tag)} characters long; a tag has at most {MAX_TAG_LENGTH}"
    if tag[0] in ".-":
        return "starts with '.' or '-'; a tag must start with a letter, digit or '_'"
    if not _TAG_RE.fullmatch(tag):
        bad = _INVALID_RUN.search(tag)
        char = bad.group(0)[0] if bad else tag[0]
        return f"contains {char!r}; a tag may contain only letters, digits, '_', '.' and '-'"
    return None


def parse_version(text: str) -> semver.Version | None:
    """Parse a semver version, accepting one leading ``v``/``V`` (git tags usually have one)."""
    candidate = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(candidate)
    except (ValueError, TypeError):
        return None


def semver_tags(text: str, *, prerelease: bool = False) -> list[str]:
    """The default expansion of a version tag: ``1.2.3 1.2 1 latest``.

    Pre-releases (by semver, or flagged on a GitHub release) get only their version:
    a release candidate must never move ``latest`` or the floating ``1.2``/``1``.
    Build metadata is dropped (``1.2.3+b7`` → ``1.2.3``) as metadata-action's
    ``{{version}}`` does; ``+`` is not a tag character. For ``0.x`` there is no ``0``.
    Non-semver text yields just the sanitized text.
    """
    version = parse_version(text)
    if version is None:
        return _nonempty([sanitize_tag(text)])
    full = _version_text(version)
    if version.prerelease is not None or prerelease:
        return [full]
    tags = [full, f"{version.major}.{version.minor}"]
    if version.major > 0:
        tags.append(str(version.major))
    tags.append("latest")
    return tags


def _version_text(version: semver.Version) -> str:
    return str(version.replace(build=None))


def _nonempty(tags: Iterable[str]) -> list[str]:
    return [t for t in tags if t]


def _dedupe(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t for t in tags if t))


# ---------------------------------------------------------------------------
# Defaults


def default_tags(git: GitContext) -> list[str]:
    """Tags when the ``tags`` input is empty (the table in docs and the issue).

    The branch, version or PR tag comes first so it can serve as the image version.
    ``latest`` on the default branch needs the default branch from the payload; the
    schedule payload has none, and then no branch push gets ``latest``.
    """
    event = git.event_name
    if event == "schedule":
        return ["nightly"]
    if git.is_pull_request:
        return [f"pr-{git.pr_number}"] if git.pr_number is not None else _sha_tags(git)
    if event == "merge_group":
        return _sha_tags(git)
    if git.tag is not None:
        return _dedupe(semver_tags(git.tag, prerelease=git.is_marked_prerelease))
    if git.branch is not None:
        tags = [sanitize_tag(git.branch), *_sha_tags(git)]
        if git.is_default_branch:
            tags.append("latest")
        return _dedupe(tags)
    return _sha_tags(git)


def _sha_tags(git: GitContext) -> list[str]:
    return [f"sha-{git.short_sha}"] if git.sha else []


# ---------------------------------------------------------------------------
# The rule language


@dataclass(frozen=True)
class Rule:
    """One parsed line of the ``tags`` input; ``type`` is ``plain`` for a bare tag."""

    type: str
    attrs: Mapping[str, str]
    line: str

    def get(self, key: str, default: str = "") -> str:
        return self.attrs.get(key, default)


_COMMON = frozenset({"type", "enable", "prefix", "suffix"})
_ATTRS: dict[str, frozenset[str]] = {
    "semver": _COMMON | {"pattern", "value"},
    "ref": _COMMON | {"event"},
    "sha": _COMMON | {"format"},
    "raw": _COMMON | {"value"},
    "schedule": _COMMON | {"pattern"},
    "edge": _COMMON | {"branch"},
}
_SEMVER_NAMES = frozenset({"raw", "version", "major", "minor", "patch"})
_GLOBALS = frozenset(
    {"branch", "tag", "sha", "base_ref", "is_default_branch", "is_not_default_branch", "date"}
)


def _error(line: str, problem: str, fix: str) -> InputError:
    return InputError("tags", f"{problem} in line {line!r}.", hint=fix)


def split_attributes(line: str) -> list[str]:
    """Split ``a=1,"b=x,y",c="p,q"`` on commas outside double quotes (``""`` is a quote)."""
    fields: list[str] = []
    buf: list[str] = []
    quoted = False
    i = 0
    while i < len(line):
        char = line[i]
        if char == '"':
            if quoted and line[i + 1 : i + 2] == '"':
                buf.append('"')
                i += 1
            else:
                quoted = not quoted
        elif char == "," and not quoted:
            fields.append("".join(buf).strip())
            buf = []
        else:
            buf.append(char)
        i += 1
    if quoted:
        raise _error(line, "Unclosed double quote", 'Close the quote: type=raw,"value=a,b".')
    fields.append("".join(buf).strip())
    return fields


def parse_rule(line: str) -> Rule:
    """Parse and check one non-empty line, so mistakes fail before any build."""
    line = line.strip()
    if "=" not in line:
        problem = tag_problem(line)
        if problem:
            fix = "Write a plain tag such as v1 or edge."
            if "{{" in line:
                fix = "Placeholders need a rule: type=raw,value=" + line + "."
            raise _error(line, f"The tag {problem}", fix)
        return Rule("plain", {}, line)

    attrs: dict[str, str] = {}
    for item in split_attributes(line):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise _error(line, f"Attribute {item!r} has no '='", "Write key=value, e.g. type=sha.")
        if key in attrs:
            raise _error(line, f"Attribute {key!r} is given twice", "Keep one of them.")
        attrs[key] = value.strip()

    kind = attrs.get("type", "").lower()
    if not kind:
        raise _error(line, "No type=", "Start the rule with type=semver|ref|sha|raw|schedule|edge.")
    if kind not in _ATTRS:
        fix = "Use one of type=semver, ref, sha, raw, schedule, edge"
        if kind in ("match", "pep440"):
            fix += f" (type={kind} is not supported; use type=semver or type=raw)"
        raise _error(line, f"Unknown type {kind!r}", fix + ".")
    attrs["type"] = kind
    for key in attrs:
        if key not in _ATTRS[kind]:
            if key == "priority":
                fix = "Remove priority=: tags keep the order of the lines."
            else:
                allowed = ", ".join(sorted(_ATTRS[kind]))
                fix = f"type={kind} takes: {allowed}."
            raise _error(line, f"Unknown attribute {key!r} for type={kind}", fix)
    rule = Rule(kind, attrs, line)
    _check_rule(rule)
    return rule


def _check_rule(rule: Rule) -> None:
    kind, line = rule.type, rule.line
    enable = rule.get("enable", "true")
    if not _ENABLE_RE.fullmatch(enable):
        raise _error(
            line,
            f"enable={enable!r} is not true or false",
            "Write enable=true|false|{{is_default_branch}}|{{is_not_default_branch}}.",
        )
    if kind == "semver" and not rule.get("pattern"):
        raise _error(
            line, "type=semver needs a pattern", "Add pattern={{version}} (or {{major}}.{{minor}})."
        )
    if kind == "raw" and not rule.get("value"):
        raise _error(line, "type=raw needs a value", "Add value=TAG, e.g. type=raw,value=edge.")
    if kind == "ref":
        event = rule.get("event")
        if event not in ("branch", "tag", "pr"):
            raise _error(
                line, f"event={event!r} is not branch, tag or pr", "Write event=branch|tag|pr."
            )
    if kind == "sha" and rule.get("format", "short") not in ("short", "long"):
        raise _error(line, f"format={rule.get('format')!r} is unknown", "Write format=short|long.")

    for key in ("prefix", "suffix", "value", "pattern"):
        text = rule.get(key)
        names = _SEMVER_NAMES if (kind, key) == ("semver", "pattern") else _GLOBALS
        for match in _PLACEHOLDER.finditer(text):
            name, args = match.group(1), match.group(2)
            if name not in names:
                allowed = " ".join(f"{{{{{n}}}}}" for n in sorted(names))
                raise _error(
                    line,
                    f"Unknown placeholder {match.group(0)!r} in {key}=",
                    f"Use one of {allowed}.",
                )
            if name == "date":
                _date_args(args, line)
            elif args:
                raise _error(line, f"{{{{{name}}}}} takes no arguments", f"Write {{{{{name}}}}}.")
        literal = _PLACEHOLDER.sub("", text)
        if "{{" in literal or "}}" in literal:
            raise _error(line, f"Unbalanced braces in {key}=", "Write placeholders as {{name}}.")
        bad = _INVALID_RUN.search(literal)
        if bad:
            raise _error(
                line,
                f"{key}= contains {bad.group(0)!r}",
                "Tags may contain only letters, digits, '_', '.' and '-'.",
            )
    head = rule.get("prefix") or rule.get("value") or rule.get("pattern")
    if head[:1] in (".", "-"):
        raise _error(line, "The tag would start with '.' or '-'", "Start with a letter or digit.")


def _date_args(args: str, line: str) -> tuple[str, str | None]:
    """``'YYYYMMDD' tz='Europe/Paris'`` → (format, tz)."""
    match = re.fullmatch(r"""(['"])(.*?)\1(?:\s+tz=(['"])(.*?)\3)?""", args.strip())
    if not match:
        raise _error(
            line, "{{date}} needs a quoted format", "Write {{date 'YYYYMMDD'}} (tz='Area/City')."
        )
    return match.group(2), match.group(4)


def parse_rules(spec_lines: Sequence[str]) -> list[Rule]:
    """Parse the ``tags`` input; blank lines and ``#`` comments are skipped."""
    return [
        parse_rule(line)
        for line in (raw.strip() for raw in spec_lines)
        if line and not line.startswith("#")
    ]


# ---------------------------------------------------------------------------
# Evaluation


def compute_tags(spec_lines: Sequence[str], git: GitContext) -> list[str]:
    """The tags for this run, deduplicated, in the order the rules give them.

    An empty spec means :func:`default_tags`. The list can be empty (e.g. only
    ``type=semver`` on a branch push): building without tags is the caller's call.
    """
    rules = parse_rules(spec_lines)
    if not rules:
        return default_tags(git)
    tags: list[str] = []
    for rule in rules:
        if rule.type == "plain":
            tags.append(rule.line)
            continue
        if _render(rule.get("enable", "true"), git, rule.line).lower() != "true":
            continue
        # type=sha's prefix defaults to "sha-"; prefix= (even empty) overrides it.
        prefix = rule.attrs.get("prefix", "sha-" if rule.type == "sha" else "")
        for body in _RULES[rule.type](rule, git):
            if body:  # an empty value (e.g. {{tag}} on a branch) gives no tag at all
                tag = _render(prefix, git, rule.line) + body
                tag += _render(rule.get("suffix"), git, rule.line)
                tags.append(sanitize_tag(tag))
    return _dedupe(tags)


def _eval_semver(rule: Rule, git: GitContext) -> list[str]:
    raw = _render(rule.get("value"), git, rule.line) if rule.get("value") else git.tag
    if not raw:
        return []
    version = parse_version(raw)
    if version is None:
        return []  # like metadata-action: a non-semver tag skips semver rules
    pattern = rule.get("pattern")
    values = {
        "raw": sanitize_tag(raw),
        "version": _version_text(version),
        "major": str(version.major),
        "minor": str(version.minor),
        "patch": str(version.patch),
    }
    used = {m.group(1) for m in _PLACEHOLDER.finditer(pattern)}
    if version.prerelease is not None:
        # metadata-action: a pre-release only ever yields {{version}} (or {{raw}}).
        pattern = "{{raw}}" if used == {"raw"} else "{{version}}"
    elif version.major == 0 and used == {"major"}:
        return []
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], pattern)]


def _eval_ref(rule: Rule, git: GitContext) -> list[str]:
    event = rule.get("event")
    if event == "branch" and git.branch is not None and not git.is_pull_request:
        return [sanitize_tag(git.branch)]
    if event == "tag" and git.tag is not None:
        return [sanitize_tag(git.tag)]
    if event == "pr" and git.is_pull_request and git.pr_number is not None:
        return [f"pr-{git.pr_number}"]
    return []


def _eval_sha(rule: Rule, git: GitContext) -> list[str]:
    if not git.sha:
        return []
    sha = git.sha if rule.get("format", "short") == "long" else git.short_sha
    return [sha]


def _eval_raw(rule: Rule, git: GitContext) -> list[str]:
    return [_render(rule.get("value"), git, rule.line)]


def _eval_schedule(rule: Rule, git: GitContext) -> list[str]:
    if git.event_name != "schedule":
        return []
    return [_render(rule.get("pattern", "nightly") or "nightly", git, rule.line)]


def _eval_edge(rule: Rule, git: GitContext) -> list[str]:
    wanted = rule.get("branch") or git.default_branch
    if wanted and git.branch == wanted and not git.is_pull_request:
        return ["edge"]
    return []


_RULES: dict[str, Callable[[Rule, GitContext], list[str]]] = {
    "semver": _eval_semver,
    "ref": _eval_ref,
    "sha": _eval_sha,
    "raw": _eval_raw,
    "schedule": _eval_schedule,
    "edge": _eval_edge,
}


def _render(text: str, git: GitContext, line: str) -> str:
    """Fill the global placeholders; context values are sanitized as they go in."""

    def value(match: re.Match[str]) -> str:
        name, args = match.group(1), match.group(2)
        if name == "date":
            fmt, tz = _date_args(args, line)
            return _format_date(git.now, fmt, tz, line)
        if name == "branch":
            head_ref = _str(_dig(git.payload, "pull_request", "head", "ref"))
            return sanitize_tag((head_ref if git.is_pull_request else git.branch) or "")
        if name == "tag":
            return sanitize_tag(git.tag or "")
        if name == "sha":
            return git.short_sha
        if name == "base_ref":
            base = _dig(git.payload, "pull_request", "base", "ref") or git.payload.get("base_ref")
            return sanitize_tag(_str(base).removeprefix("refs/heads/"))
        if name == "is_default_branch":
            return str(git.is_default_branch).lower()
        if name == "is_not_default_branch":
            return str(not git.is_default_branch).lower()
        raise _error(line, f"Unknown placeholder {match.group(0)!r}", "See the tags input docs.")

    return _PLACEHOLDER.sub(value, text)


_DATE_TOKENS = {
    "YYYY": "%Y",
    "YY": "%y",
    "MM": "%m",
    "DD": "%d",
    "HH": "%H",
    "mm": "%M",
    "ss": "%S",
}
_DATE_TOKEN_RE = re.compile("|".join(sorted(_DATE_TOKENS, key=len, reverse=True)))


def _format_date(now: datetime, fmt: str, tz: str | None, line: str) -> str:
    """moment.js-style tokens (the subset metadata-action users write), UTC unless tz."""
    when = now if now.tzinfo else now.replace(tzinfo=UTC)
    if tz:
        try:
            when = when.astimezone(ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _error(
                line, f"Unknown time zone {tz!r}", "Use an IANA name: tz='Europe/Paris'."
            ) from exc
    else:
        when = when.astimezone(UTC)
    return _DATE_TOKEN_RE.sub(lambda m: when.strftime(_DATE_TOKENS[m.group(0)]), fmt)


# ---------------------------------------------------------------------------
# Push or not


class PushDecision(NamedTuple):
    push: bool
    reason: str


def push_decision(push_input: str, event_name: str, is_fork_pr: bool) -> PushDecision:
    """Resolve ``push: true|false|auto``; the reason is shown in the log and summary.

    ``auto`` builds without pushing on pull requests from forks: there GITHUB_TOKEN is
    read-only (``pull_request``), or the code is untrusted while the token can write
    (``pull_request_target``), so a push would fail or be unsafe.
    """
    value = push_input.strip().lower()
    if value == "true":
        return PushDecision(True, "push is 'true'")
    if value == "false":
        return PushDecision(False, "push is 'false': the image is built, not pushed")
    if value != "auto":
        raise InputError(
            "push", f"{push_input!r} is not true, false or auto.", hint="Write push: auto."
        )
    if is_fork_pr and event_name == "pull_request_target":
        return PushDecision(
            False,
            "push is 'auto' and this pull_request_target run comes from a fork: its code is "
            "untrusted, so the image is built, not pushed. Set push: true to override.",
        )
    if is_fork_pr and event_name in PR_EVENTS:
        return PushDecision(
            False,
            "push is 'auto' and this pull request comes from a fork: GITHUB_TOKEN is read-only "
            "there, so the image is built, not pushed.",
        )
    return PushDecision(True, f"push is 'auto' and {event_name or 'this'} event pushes")
