"""docker/metadata-action's language: ``tags`` rules, ``flavor``, ``labels``, ``annotations``.

A workflow moving from metadata-action pastes its blocks here and gets the same tags, version,
labels and annotations as metadata-action v6 (its README is the spec; the cases are in
tests/unit/test_metadata.py). :func:`compute_metadata` is the one place the final values are
made. Where we differ on purpose (README, "Where we differ from docker/metadata-action"):

- an empty ``tags`` input gives our defaults (``tags.default_tags``), not metadata-action's;
- ``org.opencontainers.image.created`` is the commit's time when the event has it, so a
  rebuild of the same commit is the same image;
- inputs that cannot be meant are errors, not silently empty: unknown types, attributes
  and expressions, a bare tag that is an image reference or digest, a tag that would start
  with ``.`` or ``-``, a ``labels`` line written as YAML (``key: value``).

Rules are sorted by ``priority`` (stable: equal priorities keep their lines' order). The
first tag produced is the ``version``; the first rule that produces a tag also decides
whether ``latest`` is added (``flavor: latest=auto``: yes for ``type=ref,event=tag``,
``semver``, ``pep440`` and ``match`` on a release version).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from gh_docker_publish.core import labels as oci
from gh_docker_publish.core import refs, templates
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.tags import (
    SHORT_SHA_LENGTH,
    GitContext,
    default_tags,
    parse_version,
    tag_problem,
)
from gh_docker_publish.errors import InputError

# metadata-action README, "priority attribute".
DEFAULT_PRIORITY = {
    "schedule": 1000, "semver": 900, "pep440": 900, "match": 800, "edge": 700, "ref": 600,
    "raw": 200, "sha": 100,
}
_COMMON = frozenset({"type", "enable", "priority", "prefix", "suffix"})
_ATTRS: dict[str, frozenset[str]] = {
    "schedule": _COMMON | {"pattern"},
    "semver": _COMMON | {"pattern", "value", "match"},
    "pep440": _COMMON | {"pattern", "value", "match"},
    "match": _COMMON | {"pattern", "group", "value"},
    "edge": _COMMON | {"branch"},
    "ref": _COMMON | {"event"},
    "raw": _COMMON | {"value"},
    "sha": _COMMON | {"format"},
}
_VERSION_NAMES = frozenset({"raw", "version", "major", "minor", "patch"})
_RAW_ONLY = re.compile(r"\{\{\s*raw\s*\}\}")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")  # metadata-action's tag sanitizing
_JS_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_JS_REGEX_LITERAL = re.compile(r"/(.+)/([a-z]*)")
_YAML_PAIR = re.compile(r"[A-Za-z0-9_.-]+:\s")
# BuildKit's annotation levels (docs/annotations.md in moby/buildkit).
ANNOTATION_LEVELS = ("manifest", "index", "manifest-descriptor", "index-descriptor")
# The labels metadata-action always sets (empty when unknown), in its JSON output too.
OCI_KEYS = tuple(
    oci.OCI + key
    for key in ("created", "description", "licenses", "revision", "source", "title", "url",
                "version")
)
FlavorLatest = Literal["auto", "true", "false"]


# -- parsing ---------------------------------------------------------------------------------


def split_attributes(line: str, input_name: str = "tags") -> list[str]:
    """Split ``a=1,"b=x,y",c="p,q"`` on commas outside double quotes (``""`` is a quote),
    as the CSV parser metadata-action reads each line with."""
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
        raise InputError.in_line(
            input_name, line, "Unclosed double quote", 'Close the quote: type=raw,"value=a,b".'
        )
    fields.append("".join(buf).strip())
    return fields


@dataclass(frozen=True)
class Rule:
    """One line of the ``tags`` input with metadata-action's defaults filled in."""

    type: str
    attrs: Mapping[str, str]
    line: str
    priority: int

    def get(self, key: str, default: str = "") -> str:
        return self.attrs.get(key, default)


def parse_rules(lines: Sequence[str]) -> list[Rule]:
    """The ``tags`` input's rules; blank lines and ``#`` comments are skipped."""
    return [parse_rule(line) for line in (raw.strip() for raw in lines)
            if line and not line.startswith("#")]


def parse_rule(line: str) -> Rule:
    """One line: ``type=...,key=value``; a field without ``=`` is the value, so
    ``type=raw,my-tag`` and a bare ``my-tag`` are both ``type=raw,value=my-tag``."""
    attrs: dict[str, str] = {}
    for item in split_attributes(line):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            key, value = "value", item
        if key in attrs:
            raise InputError.in_line("tags", line, f"Attribute {key!r} is given twice", "Keep one.")
        attrs[key] = value.strip()
    kind = attrs.setdefault("type", "raw").lower()
    attrs["type"] = kind
    if kind not in _ATTRS:
        raise InputError.in_line(
            "tags", line, f"Unknown type {kind!r}",
            "Use type=schedule, semver, pep440, match, edge, ref, raw or sha.",
        )
    for key in attrs:
        if key not in _ATTRS[kind]:
            allowed = ", ".join(sorted(_ATTRS[kind] - {"type"}))
            raise InputError.in_line(
                "tags", line, f"Unknown attribute {key!r} for type={kind}",
                f"type={kind} takes: {allowed}.",
            )
    _fill_defaults(kind, attrs, line)
    priority = attrs.get("priority", str(DEFAULT_PRIORITY[kind]))
    if not re.fullmatch(r"-?[0-9]+", priority):
        raise InputError.in_line(
            "tags", line, f"priority={priority!r} is not a whole number",
            f"Write priority=<number>; type={kind}'s default is {DEFAULT_PRIORITY[kind]}.",
        )
    rule = Rule(kind, attrs, line, int(priority))
    _check_expressions(rule)
    return rule


def _fill_defaults(kind: str, attrs: dict[str, str], line: str) -> None:
    """metadata-action's defaults per type, and the attributes a type cannot go without."""
    if kind == "schedule":
        attrs.setdefault("pattern", "nightly")
    elif kind in ("semver", "pep440", "match") and not attrs.get("pattern"):
        example = "\\d.\\d.\\d" if kind == "match" else "{{version}}"
        raise InputError.in_line(
            "tags", line, f"type={kind} needs a pattern", f"Add pattern={example}."
        )
    elif kind == "ref":
        event = attrs.get("event", "")
        if event not in ("branch", "tag", "pr"):
            raise InputError.in_line(
                "tags", line, f"event={event!r} is not branch, tag or pr",
                "Write type=ref,event=branch|tag|pr.",
            )
        if event == "pr":
            attrs.setdefault("prefix", "pr-")
    elif kind == "raw" and not attrs.get("value"):
        raise InputError.in_line(
            "tags", line, "type=raw needs a value", "Add value=TAG, e.g. type=raw,value=edge."
        )
    elif kind == "sha":
        attrs.setdefault("prefix", "sha-")
        if attrs.setdefault("format", "short") not in ("short", "long"):
            raise InputError.in_line(
                "tags", line, f"format={attrs['format']!r} is unknown", "Write format=short|long."
            )
    if kind == "match":
        _match_regex(attrs, line)
    if kind in ("semver", "pep440") and attrs.get("match"):
        _js_regex(attrs["match"], line)


def _check_expressions(rule: Rule) -> None:
    for key in ("prefix", "suffix", "value", "enable", "pattern"):
        text = rule.get(key)
        names = _VERSION_NAMES if key == "pattern" and rule.type in ("semver", "pep440") \
            else templates.GLOBALS
        if key == "pattern" and rule.type == "match":
            continue  # a regular expression, not a template
        try:
            templates.check(text, names)
        except templates.TemplateError as exc:
            problem = f"{exc.problem} in {key}="
            raise InputError.in_line("tags", rule.line, problem, exc.fix) from None
    enable = rule.get("enable", "true")
    if not templates.EXPRESSION.search(enable) and enable.lower() not in ("true", "false"):
        raise InputError.in_line(
            "tags", rule.line, f"enable={enable!r} is not true or false",
            "Write enable=true|false or enable={{is_default_branch}}.",
        )
    if rule.type == "raw":
        literal = templates.EXPRESSION.sub("", rule.get("value"))
        if refs.is_digest(literal):
            raise refs.digest_error("tags", rule.line)
        if "@" in literal or ":" in literal:
            raise InputError.in_line(
                "tags", rule.line,
                "The tag looks like an image reference or digest",
                "Give only the tag (the image goes in 'image'); registries take tags "
                "(IMAGE:VERSION), not digests.",
            )


def _js_regex(text: str, line: str) -> re.Pattern[str]:
    """A JavaScript regular expression (``\\d+``, or ``/v(.*)/i``) as Python's ``re``."""
    flags = 0
    literal = _JS_REGEX_LITERAL.fullmatch(text)
    if literal:
        text = literal.group(1)
        for flag in literal.group(2):
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(flag, 0)
    try:
        return re.compile(_JS_NAMED_GROUP.sub("(?P<", text), flags)
    except re.error as exc:
        raise InputError.in_line(
            "tags", line, f"{text!r} is not a regular expression ({exc})",
            "Write a JavaScript-style pattern such as v(\\d+\\.\\d+\\.\\d+).",
        ) from None


def _match_regex(attrs: dict[str, str], line: str) -> None:
    regex = _js_regex(attrs["pattern"], line)
    group = attrs.setdefault("group", "0")
    if not group.isdecimal() or int(group) > regex.groups:
        raise InputError.in_line(
            "tags", line, f"group={group!r} is not a group of the pattern",
            f"Write group=0 (the whole match) up to group={regex.groups}.",
        )


@dataclass(frozen=True)
class Flavor:
    """The ``flavor`` input: ``latest=auto|true|false``, a global ``prefix``/``suffix``."""

    latest: FlavorLatest = "auto"
    prefix: str = ""
    suffix: str = ""
    prefix_latest: bool = False  # onlatest=true after prefix=
    suffix_latest: bool = False  # onlatest=true after suffix=


def parse_flavor(lines: Sequence[str]) -> Flavor:
    """``latest=auto``, ``prefix=app-,onlatest=true``...; ``onlatest`` goes with the
    ``prefix``/``suffix`` before it on the same line."""
    values: dict[str, Any] = {}
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        last_affix = ""
        for item in split_attributes(line, "flavor"):
            if not item:
                continue
            key, sep, value = (part.strip() for part in item.partition("="))
            key = key.lower()
            if not sep:
                raise InputError.in_line(
                    "flavor", line, f"Entry {item!r} has no '='",
                    "Write latest=auto|true|false, prefix=TEXT or suffix=TEXT "
                    "(each may add ,onlatest=true).",
                )
            if key == "latest":
                if value not in ("auto", "true", "false"):
                    raise InputError.in_line(
                        "flavor", line, f"latest={value!r} is not auto, true or false",
                        "Write latest=auto (the default), latest=true or latest=false.",
                    )
                values["latest"] = value
            elif key in ("prefix", "suffix"):
                try:
                    templates.check(value)
                except templates.TemplateError as exc:
                    raise InputError.in_line("flavor", line, exc.problem, exc.fix) from None
                values[key] = value
                last_affix = key
            elif key == "onlatest":
                if value not in ("true", "false") or not last_affix:
                    raise InputError.in_line(
                        "flavor", line, f"onlatest={value!r} must be true or false, after "
                        "prefix= or suffix= on the same line",
                        "Write prefix=app-,onlatest=true.",
                    )
                values[f"{last_affix}_latest"] = value == "true"
            else:
                raise InputError.in_line(
                    "flavor", line, f"Unknown entry {key!r}",
                    "The flavor takes latest=, prefix=, suffix= and onlatest=.",
                )
    return Flavor(**values)


def parse_key_values(lines: Sequence[str], input_name: str) -> tuple[
    tuple[tuple[str, str], ...], tuple[str, ...]
]:
    """``labels`` / ``annotations``: ``KEY=VALUE`` lines that may use expressions.

    A line without ``=`` is ignored, as metadata-action ignores it (a notice says so),
    unless it cannot be meant that way: ``key: value`` (YAML where ``=`` was meant) and
    ``=value`` (no key) are errors. Returns the pairs and the notices.
    """
    pairs: list[tuple[str, str]] = []
    notices: list[str] = []
    for line in lines:
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            if _YAML_PAIR.match(line):
                name = line.partition(":")[0]
                raise InputError.in_line(
                    input_name, line, "A 'key: value' pair where KEY=VALUE was meant",
                    f"Write {name}={line.partition(':')[2].strip()}.",
                )
            notices.append(
                f"{input_name}: the line {line!r} has no '=' and is ignored "
                "(as docker/metadata-action ignores it)."
            )
            continue
        if not key:
            raise InputError.in_line(input_name, line, "No key before '='", "Write KEY=VALUE.")
        try:
            templates.check(line)  # metadata-action renders the whole line, key too
        except templates.TemplateError as exc:
            raise InputError.in_line(input_name, line, exc.problem, exc.fix) from None
        pairs.append((key, value))
    return tuple(pairs), tuple(notices)


@dataclass(frozen=True)
class MetadataEnv:
    """metadata-action's ``DOCKER_METADATA_*`` variables (its README, "environment variables")."""

    pr_head_sha: bool = False
    short_sha_length: int = SHORT_SHA_LENGTH
    annotation_levels: tuple[str, ...] = ("manifest",)
    set_output_env: bool = True


def metadata_env(env: Mapping[str, str]) -> MetadataEnv:
    """Read and check the variables; a bad value names the variable and the fix."""

    def flag(name: str, default: bool) -> bool:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        if raw.lower() not in ("true", "false"):
            raise InputError.bad_variable(name, raw, "true or false")
        return raw.lower() == "true"

    length_raw = env.get("DOCKER_METADATA_SHORT_SHA_LENGTH", "").strip()
    length = SHORT_SHA_LENGTH
    if length_raw:
        if not length_raw.isdecimal() or not 1 <= int(length_raw) <= 64:
            raise InputError.bad_variable(
                "DOCKER_METADATA_SHORT_SHA_LENGTH", length_raw, "a number from 1 to 64 (e.g. 12)"
            )
        length = int(length_raw)
    levels_raw = env.get("DOCKER_METADATA_ANNOTATIONS_LEVELS", "").strip()
    levels = tuple(level.strip() for level in levels_raw.split(",") if level.strip())
    for level in levels:
        if level not in ANNOTATION_LEVELS:
            raise InputError.bad_variable(
                "DOCKER_METADATA_ANNOTATIONS_LEVELS", levels_raw,
                f"a comma-separated list of {', '.join(ANNOTATION_LEVELS)} (e.g. manifest,index)",
            )
    return MetadataEnv(
        pr_head_sha=flag("DOCKER_METADATA_PR_HEAD_SHA", False),
        short_sha_length=length,
        annotation_levels=levels or ("manifest",),
        set_output_env=flag("DOCKER_METADATA_SET_OUTPUT_ENV", True),
    )


# -- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    """The final tags, version, labels and annotations of a run."""

    tags: tuple[str, ...]
    version: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: tuple[str, ...] = ()
    #: KEY -> VALUE of ``annotations`` (every level), for an index we assemble ourselves.
    annotation_values: Mapping[str, str] = field(default_factory=dict)


class MetadataInputs(Protocol):
    """What ``compute_metadata`` reads of the settings (``core.settings.Settings`` has it):
    metadata needs no import of settings, so the two do not import each other."""

    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def flavor(self) -> Flavor: ...
    @property
    def metadata_env(self) -> MetadataEnv: ...
    @property
    def repository(self) -> str: ...
    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def annotations(self) -> tuple[tuple[str, str], ...]: ...


def compute_metadata(
    settings: MetadataInputs,
    ctx: RunContext,
    *,
    now: datetime,
    repository: str | None = None,
    repo_info: Mapping[str, Any] | None = None,
) -> Metadata:
    """The one place the final tags, version, labels and annotations are made (pure).

    ``repository``: OWNER/REPO for the source label (default: the settings'); ``repo_info``:
    the REST repository body for title, description, license (None: the run's facts only).

    Raises:
        InputError: a rule, expression or resulting tag is wrong; nothing was contacted.
    """
    env = settings.metadata_env
    git = GitContext.from_run(
        ctx, now=now, short_sha_length=env.short_sha_length, pr_head_sha=env.pr_head_sha
    )
    tag_list = compute_tags(settings.tags, git, settings.flavor)
    version = tag_list[0] if tag_list else ""
    ours = oci.compute_labels(
        server_url=ctx.server_url,
        repository=repository or settings.repository or ctx.repository,
        sha=git.sha,
        created=git.commit_time or now,  # we differ: the commit's time (reproducible)
        version=version,
        repo_info=repo_info,
        user_labels={},
    )
    base = {key: "" for key in OCI_KEYS} | ours
    image_labels = _with_user(base, settings.labels, git)
    image_annotations = _with_user(base, settings.annotations, git)
    return Metadata(
        tags=tuple(tag_list),
        version=version,
        labels=image_labels,
        annotations=tuple(
            key if _LEVELLED.match(key) else f"{level}:{key}"
            for level, key in _levels_once(env.annotation_levels, image_annotations)
        ),
        annotation_values=image_annotations,
    )


# build-push-action's `annotations` lines may name their level (`index:KEY=VALUE`,
# `manifest[linux/amd64]:KEY=VALUE`, buildx --annotation syntax): kept as written.
_LEVELLED = re.compile(rf"(?:{'|'.join(ANNOTATION_LEVELS)})(?:\[[^\]]*\])?(?:,[a-z-]+)*:")


def _levels_once(
    levels: Sequence[str], annotations: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(level, KEY=VALUE) per level, except that a line naming its own level comes once."""
    out: list[tuple[str, str]] = []
    for level in levels:
        for key, value in annotations.items():
            if _LEVELLED.match(key) and level != levels[0]:
                continue
            out.append((level, f"{key}={value}"))
    return out


def compute_tags(lines: Sequence[str], git: GitContext, flavor: Flavor | None = None) -> list[str]:
    """The tags of the ``tags`` input's lines; no rules means our defaults (flavored)."""
    flavor = flavor or Flavor()
    rules = parse_rules(lines)
    if rules:
        return evaluate_tags(rules, git, flavor)
    return flavored_defaults(default_tags(git), git, flavor)


def _with_user(
    base: Mapping[str, str], user: Sequence[tuple[str, str]], git: GitContext
) -> dict[str, str]:
    """Ours, then the user's on top (expressions rendered), sorted by key as metadata-action."""
    merged = dict(base)
    for key, value in user:
        merged[templates.render(key, git)] = templates.render(value, git)
    return dict(sorted(merged.items()))


@dataclass
class _Version:
    main: str = ""
    partial: list[str] = field(default_factory=list)
    latest: bool | None = None


def evaluate_tags(rules: Sequence[Rule], git: GitContext, flavor: Flavor) -> list[str]:
    """The tags the rules give for this run, by priority; ``latest`` last when it applies."""
    found = _Version()
    for rule in sorted(rules, key=lambda r: -r.priority):
        if not _enabled(rule, git):
            continue
        body, release = _EVALUATORS[rule.type](rule, git)
        if not body:
            continue
        tag = _final_tag(rule.line, _affixed(body, rule, git, flavor))
        if not found.main:
            found.main = tag
        elif tag != found.main and tag not in found.partial:
            found.partial.append(tag)
        if found.latest is None:
            found.latest = release if flavor.latest == "auto" else flavor.latest == "true"
    if not found.main:
        return []
    tag_list = [found.main, *found.partial]
    if found.latest:
        tag_list.append(_latest_tag(git, flavor))
    return list(dict.fromkeys(tag_list))


def flavored_defaults(tag_list: Sequence[str], git: GitContext, flavor: Flavor) -> list[str]:
    """Our default tags with the ``flavor`` applied: affixes on each, ``latest`` as it says."""
    prefix, suffix = templates.render(flavor.prefix, git), templates.render(flavor.suffix, git)
    out = [_final_tag(flavor.prefix or flavor.suffix, f"{prefix}{tag}{suffix}", "flavor")
           for tag in tag_list if tag != "latest"]
    wants_latest = "latest" in tag_list if flavor.latest == "auto" else flavor.latest == "true"
    if out and wants_latest:
        out.append(_latest_tag(git, flavor))
    return list(dict.fromkeys(out))


def _latest_tag(git: GitContext, flavor: Flavor) -> str:
    prefix = templates.render(flavor.prefix, git) if flavor.prefix_latest else ""
    suffix = templates.render(flavor.suffix, git) if flavor.suffix_latest else ""
    return _final_tag(f"{flavor.prefix},onlatest=true", f"{prefix}latest{suffix}", "flavor")


def _enabled(rule: Rule, git: GitContext) -> bool:
    value = templates.render(rule.get("enable", "true"), git).strip().lower()
    if value not in ("true", "false"):
        raise InputError.in_line(
            "tags", rule.line, f"enable= gives {value!r}, which is not true or false",
            "Use {{is_default_branch}}, {{is_not_default_branch}}, true or false.",
        )
    return value == "true"


def _affixed(body: str, rule: Rule, git: GitContext, flavor: Flavor) -> str:
    """The rule's own prefix/suffix (even empty) replace the flavor's."""
    prefix = rule.attrs.get("prefix", flavor.prefix)
    suffix = rule.attrs.get("suffix", flavor.suffix)
    return templates.render(prefix, git) + body + templates.render(suffix, git)


def _final_tag(line: str, text: str, input_name: str = "tags") -> str:
    """metadata-action's sanitizing (runs of invalid characters become ``-``); a tag that
    Docker would still refuse is an error here rather than at push time."""
    tag = _INVALID_RUN.sub("-", text)
    problem = tag_problem(tag)
    if problem:
        raise InputError.in_line(
            input_name, line, f"The tag {tag!r} {problem}",
            "Change the rule's value, prefix or suffix (or the flavor's).",
        )
    return tag


# Each evaluator gives (tag body or "", whether it is a release that gets latest=auto).
Evaluator = Callable[[Rule, GitContext], tuple[str, bool]]


def _schedule(rule: Rule, git: GitContext) -> tuple[str, bool]:
    if git.event_name != "schedule":
        return "", False
    return templates.render(rule.get("pattern"), git), False


def _version_source(rule: Rule, git: GitContext) -> str:
    """The text a version rule reads: ``value=`` (rendered) or the pushed tag, ``/`` -> ``-``."""
    text = templates.render(rule.get("value"), git) if rule.get("value") else git.ref_tag
    return text.replace("/", "-")


def _matched(rule: Rule, text: str) -> str:
    """``match=``'s first group (or the whole match) in ``text``; ``""`` when it misses."""
    if not rule.get("match") or not text:
        return text
    found = _js_regex(rule.get("match"), rule.line).search(text)
    if not found:
        return ""
    return (found.group(1) if found.re.groups else found.group(0)) or ""


def _semver(rule: Rule, git: GitContext) -> tuple[str, bool]:
    raw = _matched(rule, _version_source(rule, git))
    version = parse_version(raw) if raw else None
    if version is None:
        return "", False
    full = str(version.replace(build=None))
    if version.prerelease is not None:
        return (raw if _RAW_ONLY.fullmatch(rule.get("pattern").strip()) else full), False
    parts = {"raw": raw, "version": full, "major": str(version.major),
             "minor": str(version.minor), "patch": str(version.patch)}
    return templates.render(rule.get("pattern"), git, parts), True


def _pep440(rule: Rule, git: GitContext) -> tuple[str, bool]:
    # Imported here: only type=pep440 rules need it, and every run's start time counts.
    from packaging.version import InvalidVersion
    from packaging.version import Version as Pep440Version

    raw = _matched(rule, _version_source(rule, git))
    try:
        version = Pep440Version(raw)
    except InvalidVersion:
        return "", False
    if version.is_prerelease or version.is_postrelease or version.is_devrelease:
        return (raw if _RAW_ONLY.fullmatch(rule.get("pattern").strip()) else str(version)), False
    release = (*version.release, 0, 0)
    parts = {"raw": raw, "version": str(version), "major": str(release[0]),
             "minor": str(release[1]), "patch": str(release[2])}
    return templates.render(rule.get("pattern"), git, parts), True


def _match(rule: Rule, git: GitContext) -> tuple[str, bool]:
    text = templates.render(rule.get("value"), git) if rule.get("value") else git.ref_tag
    found = _js_regex(rule.get("pattern"), rule.line).search(text) if text else None
    if not found:
        return "", False
    return found.group(int(rule.get("group", "0"))) or "", True


def _edge(rule: Rule, git: GitContext) -> tuple[str, bool]:
    wanted = rule.get("branch") or git.default_branch
    return ("edge" if git.ref_branch and git.ref_branch == wanted else ""), False


def _ref(rule: Rule, git: GitContext) -> tuple[str, bool]:
    event = rule.get("event")
    if event == "branch":
        return git.ref_branch, False
    if event == "tag":
        return git.ref_tag, True
    if git.event_name in ("pull_request", "pull_request_target") and git.pr_number is not None:
        return str(git.pr_number), False
    return "", False


def _raw(rule: Rule, git: GitContext) -> tuple[str, bool]:
    return templates.render(rule.get("value"), git), False


def _sha(rule: Rule, git: GitContext) -> tuple[str, bool]:
    return (git.sha if rule.get("format") == "long" else git.short_sha), False


_EVALUATORS: dict[str, Evaluator] = {
    "schedule": _schedule, "semver": _semver, "pep440": _pep440, "match": _match,
    "edge": _edge, "ref": _ref, "raw": _raw, "sha": _sha,
}
