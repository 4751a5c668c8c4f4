"""metadata-action's global expressions: ``{{branch}}``, ``{{date 'YYYYMMDD' tz='Asia/Tokyo'}}``...

They fill the ``prefix``, ``suffix``, ``value`` and ``enable`` attributes of the ``tags``
rules, the ``flavor`` prefix and suffix, and the ``labels`` and ``annotations`` values
(metadata-action README, "Global expressions"). What each one gives:

- ``{{branch}}``: the branch of a ``refs/heads/`` ref with ``/`` as ``-``, else empty (so
  empty on a pull request).
- ``{{tag}}``: the tag of a ``refs/tags/`` ref, else empty.
- ``{{sha}}``: the short commit SHA (``DOCKER_METADATA_SHORT_SHA_LENGTH``, default 7).
- ``{{base_ref}}``: a pull request's base branch, or the push payload's ``base_ref`` on a tag.
- ``{{is_default_branch}}`` / ``{{is_not_default_branch}}``: ``true``/``false``; a
  ``schedule`` run counts as the default branch.
- ``{{date 'FORMAT' tz='ZONE'}}`` / ``{{commit_date ...}}``: now, or the commit's time (now
  when the event does not carry it), in moment.js format, UTC unless ``tz=`` (IANA names).

Unlike Handlebars, an unknown expression is an error: a typo must not become an empty tag.
The moment.js tokens are translated by hand (:func:`format_moment`): no maintained Python
library formats them exactly (arrow's look alike, but its ``Z``/``ZZ`` and ``d`` differ).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gh_docker_publish.core.tags import GitContext

EXPRESSION = re.compile(r"\{\{\s*([A-Za-z_]+)\s*([^{}]*?)\s*\}\}")
GLOBALS = frozenset(
    {
        "branch", "tag", "sha", "base_ref", "is_default_branch", "is_not_default_branch",
        "date", "commit_date",
    }
)
_DATES = frozenset({"date", "commit_date"})
_DATE_ARGS = re.compile(r"""(['"])(.*?)\1(?:\s+tz=(['"])(.*?)\3)?""")


class TemplateError(ValueError):
    """An expression that cannot be rendered; the caller names the input and the line."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def check(text: str, names: frozenset[str] = GLOBALS) -> None:
    """Refuse unknown expressions, bad arguments and stray braces, before any rendering."""
    for match in EXPRESSION.finditer(text):
        name, args = match.group(1), match.group(2)
        if name not in names:
            allowed = " ".join(f"{{{{{n}}}}}" for n in sorted(names))
            raise TemplateError(f"Unknown expression {match.group(0)!r}", f"Use one of {allowed}.")
        if name in _DATES:
            _date_args(name, args)
        elif args:
            raise TemplateError(f"{{{{{name}}}}} takes no arguments", f"Write {{{{{name}}}}}.")
    literal = EXPRESSION.sub("", text)
    if "{{" in literal or "}}" in literal:
        raise TemplateError("Unbalanced braces", "Write expressions as {{name}}.")


def render(text: str, git: GitContext, extra: Mapping[str, str] | None = None) -> str:
    """Fill every expression in ``text`` (``extra``: more names, e.g. semver's ``{{major}}``)."""
    values = extra or {}

    def one(match: re.Match[str]) -> str:
        name, args = match.group(1), match.group(2)
        if name in values:
            return values[name]
        if name in _DATES:
            fmt, zone = _date_args(name, args)
            when = git.now if name == "date" else (git.commit_time or git.now)
            return format_moment(_in_zone(when, zone), fmt)
        return _GLOBAL_VALUES[name](git)

    return EXPRESSION.sub(one, text)


def _base_ref(git: GitContext) -> str:
    if git.ref.startswith("refs/tags/"):
        base = git.payload.get("base_ref")
        return base.removeprefix("refs/heads/") if isinstance(base, str) else ""
    if git.ref.startswith("refs/pull/"):
        pull = git.payload.get("pull_request")
        base = pull.get("base") if isinstance(pull, Mapping) else None
        ref = base.get("ref") if isinstance(base, Mapping) else None
        return ref if isinstance(ref, str) else ""
    return ""


_GLOBAL_VALUES: dict[str, Callable[[GitContext], str]] = {
    "branch": lambda git: git.ref_branch.replace("/", "-"),  # README: my/branch -> my-branch
    "tag": lambda git: git.ref_tag,
    "sha": lambda git: git.short_sha,
    "base_ref": _base_ref,
    "is_default_branch": lambda git: str(git.is_default_branch).lower(),
    "is_not_default_branch": lambda git: str(not git.is_default_branch).lower(),
}


def _date_args(name: str, args: str) -> tuple[str, str | None]:
    """``'YYYYMMDD' tz='Europe/Paris'`` -> (format, zone); the zone is checked here."""
    match = _DATE_ARGS.fullmatch(args.strip())
    if not match:
        raise TemplateError(
            f"{{{{{name}}}}} needs a quoted format",
            f"Write {{{{{name} 'YYYYMMDD'}}}} or {{{{{name} 'YYYYMMDD' tz='Asia/Tokyo'}}}}.",
        )
    zone = match.group(4)
    if zone is not None:
        _zone(zone)
    return match.group(2), zone


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TemplateError(
            f"Unknown time zone {name!r}", "Use an IANA name such as tz='Europe/Paris'."
        ) from None


def _in_zone(when: datetime, zone: str | None) -> datetime:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(_zone(zone) if zone else UTC)


# -- moment.js format ------------------------------------------------------------------------
# https://momentjs.com/docs/#/displaying/format/ ; [text] is literal, unknown letters pass.

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}" + {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")


def _offset(when: datetime, sep: str) -> str:
    minutes = int((when.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{sep}{mins:02d}"


def _hour12(when: datetime) -> int:
    return when.hour % 12 or 12


def _weekday(when: datetime) -> int:
    return (when.weekday() + 1) % 7  # moment: Sunday is 0


_TOKENS: dict[str, Callable[[datetime], str]] = {
    "YYYY": lambda w: f"{w.year:04d}",
    "YY": lambda w: f"{w.year % 100:02d}",
    "Q": lambda w: str((w.month - 1) // 3 + 1),
    "MMMM": lambda w: _MONTHS[w.month - 1],
    "MMM": lambda w: _MONTHS[w.month - 1][:3],
    "MM": lambda w: f"{w.month:02d}",
    "Mo": lambda w: _ordinal(w.month),
    "M": lambda w: str(w.month),
    "DDDD": lambda w: f"{w.timetuple().tm_yday:03d}",
    "DDD": lambda w: str(w.timetuple().tm_yday),
    "DD": lambda w: f"{w.day:02d}",
    "Do": lambda w: _ordinal(w.day),
    "D": lambda w: str(w.day),
    "dddd": lambda w: _DAYS[_weekday(w)],
    "ddd": lambda w: _DAYS[_weekday(w)][:3],
    "dd": lambda w: _DAYS[_weekday(w)][:2],
    "d": lambda w: str(_weekday(w)),
    "E": lambda w: str(w.isoweekday()),
    "WW": lambda w: f"{w.isocalendar()[1]:02d}",
    "W": lambda w: str(w.isocalendar()[1]),
    "GGGG": lambda w: f"{w.isocalendar()[0]:04d}",
    "HH": lambda w: f"{w.hour:02d}",
    "H": lambda w: str(w.hour),
    "hh": lambda w: f"{_hour12(w):02d}",
    "h": lambda w: str(_hour12(w)),
    "kk": lambda w: f"{w.hour or 24:02d}",
    "k": lambda w: str(w.hour or 24),
    "mm": lambda w: f"{w.minute:02d}",
    "m": lambda w: str(w.minute),
    "ss": lambda w: f"{w.second:02d}",
    "s": lambda w: str(w.second),
    "SSS": lambda w: f"{w.microsecond // 1000:03d}",
    "SS": lambda w: f"{w.microsecond // 10000:02d}",
    "S": lambda w: str(w.microsecond // 100000),
    "A": lambda w: "PM" if w.hour >= 12 else "AM",
    "a": lambda w: "pm" if w.hour >= 12 else "am",
    "ZZ": lambda w: _offset(w, ""),
    "Z": lambda w: _offset(w, ":"),
    "X": lambda w: str(int(w.timestamp())),
    "x": lambda w: str(int(w.timestamp() * 1000)),
}
_TOKEN_RE = re.compile(
    r"\[[^\]]*\]|" + "|".join(sorted(map(re.escape, _TOKENS), key=len, reverse=True))
)


def format_moment(when: datetime, fmt: str) -> str:
    """``when`` in a moment.js format string (``YYYYMMDD-HHmmss``, ``Do MMMM``, ``[at] h a``)."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("["):
            return token[1:-1]
        return _TOKENS[token](when)

    return _TOKEN_RE.sub(one, fmt)
