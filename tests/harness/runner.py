"""Run a Docker container action the way the GitHub Actions runner does, and read its log
the way the runner reads it.

Why: the product is a Docker action. Unit tests of ``gha.py`` prove what we *print*; this
harness proves what a runner *makes of it* (which lines become annotations, which values are
masked from which line on, which outputs survive the file-command parser). Every rule here
follows ``actions/runner`` (``src/Runner.Worker``): ``Handlers/ContainerActionHandler.cs``
(mounts, env, entrypoint, args), ``Container/DockerCommandManager.cs`` (``docker build`` /
``docker run`` flags), ``Handlers/Handler.cs`` (``INPUT_`` names), ``ActionCommandManager.cs``
and ``Runner.Common/ActionCommand.cs`` (``::cmd::`` and ``##[cmd]`` parsing, escapes,
stop-commands), ``FileCommandManager.cs`` (``name=value`` / heredoc files, summary limit).

Use (the ``runner`` fixture in ``conftest.py`` builds the harness on the test bed)::

    result = runner.run(ACTION_DIR, inputs={"image": "app"},
                        github=default_github_context(token=tok), secrets=[pat])
    assert result.conclusion == "success", result.text
    result.outputs, result.annotations, result.summary, result.post
    assert pat not in "\\n".join(result.raw_log)   # raw_log: unmasked, memory only

Where this harness differs from a real runner (each also said where it happens):

- Build: the docker SDK's classic ``/build`` API, not the docker CLI (which on hosted runners
  builds with BuildKit), and with ``build_args`` the runner never passes (the test bed gives
  ``BUSYBOX_IMAGE`` so that no internet registry is needed) and, with ``dockerfile_rewrite``,
  a copy of the Dockerfile whose ``FROM python:...`` names the bed's base. The image is
  reused while the build context (the action directory less ``.dockerignore``) is unchanged;
  the runner rebuilds every job.
- Network: ``network_mode="host"`` by default so that the action reaches loopback services
  of the test bed. A runner uses the default bridge, or the job network
  (``github_network_<id>``) when the job has a container or services.
- The daemon socket mounted at ``/var/run/docker.sock`` is the client's unix socket
  (a runner mounts its host's ``/var/run/docker.sock``); over TCP nothing is mounted.
- The run is ``create`` + ``attach`` + ``start`` + ``wait`` + ``remove`` through the SDK
  instead of ``docker run --rm``; arguments go as a list, so the .NET command-line quoting
  the runner applies (``"arg"`` with ``\\"`` escapes) cannot bite here. With no ``args:``
  in action.yml, an ``args`` input is split with ``shlex`` (the runner passes it raw).
- stdout and stderr are read from one multiplexed stream; their relative order is as
  unreliable as on a runner (which reads two pipes), so tests must not depend on it.
- Directory layout mimics a hosted runner (``work/_temp/_github_home`` ...,
  ``work/<repo>/<repo>``) under a temp dir removed after the run; host paths in env values
  are translated to container paths like ``TranslateToContainerPath`` (longest prefix
  first), ``RUNNER_WORKSPACE`` stays a host path as on a runner.
- Not set: ``ACTIONS_RUNTIME_URL``/``ACTIONS_RUNTIME_TOKEN``/``ACTIONS_CACHE_URL``/
  ``ACTIONS_RESULTS_URL``/``ACTIONS_ID_TOKEN_*`` (no Actions service here).
- Expressions: only ``${{ inputs.X }}`` and ``${{ github.<key> }}`` (the keys in
  ``SUPPORTED_GITHUB_KEYS``); anything else raises ``HarnessError`` instead of guessing.
- ``::set-output``/``::save-state``: github.com still *honours* them with a deprecation
  warning (runner flag ``DistributedTask.DeprecateStepOutputCommands``; GitHub postponed
  the removal). That is the default ``legacy_commands="warn"``. ``"disabled"`` treats them
  like ``set-env`` is treated today (error, step fails): what a runner will do once they go.
- The secret masker masks each value, its non-empty trimmed lines, and its base64, JSON
  and URL-escaped forms; the runner's masker has more encoders (shifted base64, XML, ...).
- Problem matchers (``::add-matcher::``) are not applied; ``::add-matcher::`` and
  ``::remove-matcher::`` lines are swallowed like a runner does but have no effect.
- ``stop-commands`` with an invalid token (empty, ``pause-logging`` or a command name):
  the runner throws ``UnsupportedStopCommandTokenDisabled``; here that is an error
  annotation and a failed step (how the runner surfaces the throw was not verified).
- Post steps run right after the main step (a runner runs them at the end of the job);
  state from ``pre`` and ``main`` reaches later stages as ``STATE_<name>``.
- Annotations keep the runner's caps (10 per level and step, 4096-character messages);
  ``file`` paths are not rewritten relative to the repository.
- Runner-side lines the harness does not reproduce: the "Run owner/action@ref" group with
  ``with:``/``env:``, the ``docker build``/``docker run`` command lines, "Post job cleanup.".
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "SUPPORTED_GITHUB_KEYS",
    "ActionCommand",
    "ActionHarness",
    "ActionSpec",
    "Annotation",
    "BuiltImage",
    "CommandError",
    "CommandProcessor",
    "FileCommandError",
    "Group",
    "HarnessError",
    "RunResult",
    "SecretMasker",
    "StepResult",
    "default_github_context",
    "evaluate",
    "load_action",
    "parse_action_command",
    "parse_env_file",
    "resolve_inputs",
]

# --- runner constants (quoted from actions/runner so tests can compare text) -------------

SET_OUTPUT_DEPRECATED = (
    "The `{0}` command is deprecated and will be disabled soon. Please upgrade to using "
    "Environment Files. For more information see: https://github.blog/changelog/"
    "2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
)
COMMAND_DISABLED = (
    "The `{0}` command is disabled. Please upgrade to using Environment Files or opt into "
    "unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment "
    "variable to `true`. For more information see: https://github.blog/changelog/"
    "2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
)
STOP_TOKEN_INVALID = (
    "You cannot use a endToken that is an empty string, the string 'pause-logging', or "
    "another workflow command. For more information see: https://docs.github.com/actions/"
    "learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-"
    "workflow-commands or opt into insecure command execution by setting the "
    "`ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`."
)
SUMMARY_TOO_LARGE = (
    "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of {0}k, got {1}k. "
    "For more information see: https://docs.github.com/actions/using-workflows/"
    "workflow-commands-for-github-actions#adding-a-markdown-summary"
)
SUMMARY_LIMIT = 1024 * 1024  # FileCommandManager.CreateStepSummaryCommand.AttachmentSizeLimit
MAX_ANNOTATIONS_PER_TYPE = 10  # ExecutionContext._maxIssueCount
MAX_ANNOTATION_MESSAGE = 4096  # ExecutionContext._maxIssueMessageLength

# Commands the runner registers (ActionCommandManager extensions + stop-commands). Only
# these parse as commands; ``::anything-else::`` is plain output.
REGISTERED_COMMANDS = frozenset(
    {
        "stop-commands",
        "set-env",
        "set-output",
        "save-state",
        "add-mask",
        "add-path",
        "add-matcher",
        "remove-matcher",
        "debug",
        "notice",
        "warning",
        "error",
        "group",
        "endgroup",
        "echo",
    }
)
# Commands whose line is not echoed even with ``::echo::on`` (OmitEcho => true).
_OMIT_ECHO = frozenset({"add-mask", "debug", "notice", "warning", "error"})

# Mirrors the runner's file prefixes (FileCommandManager: FilePrefix + Guid).
FILE_COMMANDS = {
    "GITHUB_PATH": "add_path_",
    "GITHUB_ENV": "set_env_",
    "GITHUB_STEP_SUMMARY": "step_summary_",
    "GITHUB_STATE": "save_state_",
    "GITHUB_OUTPUT": "set_output_",
}

# GitHubContext keys the runner exports as GITHUB_<KEY> (seen in hosted ``docker run`` logs).
_GITHUB_ENV_KEYS = [
    "job",
    "ref",
    "sha",
    "repository",
    "repository_owner",
    "repository_owner_id",
    "run_id",
    "run_number",
    "retention_days",
    "run_attempt",
    "actor_id",
    "actor",
    "workflow",
    "head_ref",
    "base_ref",
    "event_name",
    "server_url",
    "api_url",
    "graphql_url",
    "ref_name",
    "ref_protected",
    "ref_type",
    "workflow_ref",
    "workflow_sha",
    "repository_id",
    "triggering_actor",
    "workspace",
    "action",
    "event_path",
    "action_repository",
    "action_ref",
    "path",
    "env",
    "step_summary",
    "state",
    "output",
]

SUPPORTED_GITHUB_KEYS = frozenset(
    {"token", "repository", "actor", "repository_owner", "server_url", "sha", "ref"}
)

CONTAINER_WORKSPACE = "/github/workspace"
CONTAINER_HOME = "/github/home"
CONTAINER_WORKFLOW = "/github/workflow"
CONTAINER_FILE_COMMANDS = "/github/file_commands"
CONTAINER_RUNNER_TEMP = "/github/runner_temp"
DEFAULT_SOCKET = "/var/run/docker.sock"


class HarnessError(Exception):
    """The harness could not do what a runner would do (bad action.yml, build failed,
    an expression it does not support): a test bug or a product bug, never a step result."""


class CommandError(Exception):
    """A workflow command the runner would reject; the message is the runner's."""


class FileCommandError(CommandError):
    """A file command (GITHUB_OUTPUT, GITHUB_ENV, ...) the runner would reject."""


# --- workflow commands ---------------------------------------------------------------------


@dataclass(frozen=True)
class ActionCommand:
    """One parsed ``::name k=v::data`` (or legacy ``##[name k=v]data``) line."""

    command: str
    properties: Mapping[str, str]
    data: str


def _unescape(value: str, pairs: Sequence[tuple[str, str]]) -> str:
    for escaped, plain in pairs:
        value = value.replace(escaped, plain)
    return value


# ActionCommand.cs: order matters ("%25" last, so "%250A" stays "%0A").
_DATA_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))
_LEGACY_ESCAPES = (("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]"), ("%25", "%"))


def _lookup(registered: Iterable[str], name: str) -> str | None:
    lowered = name.lower()
    for known in registered:
        if known.lower() == lowered:
            return known
    return None


def _properties(text: str, sep: str, escapes: Sequence[tuple[str, str]]) -> dict[str, str]:
    props: dict[str, str] = {}
    for part in (p for p in text.split(sep) if p):
        pair = [p for p in part.split("=", 1) if p]
        if len(pair) == 2:
            # Keys are case-insensitive in the runner; keep the first spelling seen.
            key = next((k for k in props if k.lower() == pair[0].lower()), pair[0])
            props[key] = _unescape(pair[1], escapes)
    return props


def parse_action_command(line: str, registered: Iterable[str]) -> ActionCommand | None:
    """Parse like ``ActionCommand.TryParseV2`` then ``TryParse``; ``None`` if not a command.

    V2 needs ``::`` at the start (after leading whitespace); the legacy ``##[`` form is found
    *anywhere* in the line. Command names match registered ones case-insensitively.
    """
    registered = tuple(registered)
    stripped = line.lstrip()
    if stripped.startswith("::"):
        end = stripped.find("::", 2)
        if end >= 0:
            info = stripped[2:end]
            space = info.find(" ")
            name = info if space < 0 else info[:space]
            known = _lookup(registered, name)
            if known is not None:
                props = {}
                if space > 0:
                    props = _properties(info[space + 1 :].strip(), ",", _PROPERTY_ESCAPES)
                data = _unescape(stripped[end + 2 :], _DATA_ESCAPES)
                return ActionCommand(known.lower(), props, data)
    start = line.find("##[")
    if start < 0:
        return None
    close = line.find("]", start)
    if close < 0:
        return None
    info = line[start + 3 : close]
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    known = _lookup(registered, name)
    if known is None:
        return None
    props = _properties(info[space + 1 :], ";", _LEGACY_ESCAPES) if space > 0 else {}
    return ActionCommand(known.lower(), props, _unescape(line[close + 1 :], _LEGACY_ESCAPES))


class SecretMasker:
    """Replaces registered values with ``***`` in every line written *after* registration.

    Like the runner's ``SecretMasker``: overlapping hits merge into one ``***``; a value is
    also registered base64-, JSON- and URL-encoded (a subset of the runner's encoders).
    """

    def __init__(self) -> None:
        self._values: set[str] = set()

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    def add(self, value: str) -> None:
        if not value:
            return
        encoded = base64.b64encode(value.encode()).decode().rstrip("=")
        for variant in (
            value,
            encoded,
            json.dumps(value)[1:-1],
            urllib.parse.quote(value, safe=""),
        ):
            if variant:
                self._values.add(variant)

    def mask(self, text: str) -> str:
        if not self._values or not text:
            return text
        spans: list[tuple[int, int]] = []
        for value in self._values:
            start = text.find(value)
            while start >= 0:
                spans.append((start, start + len(value)))
                start = text.find(value, start + 1)
        if not spans:
            return text
        spans.sort()
        merged = [spans[0]]
        for lo, hi in spans[1:]:
            if lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        out, pos = [], 0
        for lo, hi in merged:
            out.append(text[pos:lo])
            out.append("***")
            pos = hi
        out.append(text[pos:])
        return "".join(out)


@dataclass(frozen=True)
class Annotation:
    """An issue the runner would show on the run page (masked, message capped at 4096)."""

    level: Literal["error", "warning", "notice"]
    message: str
    properties: Mapping[str, str] = field(default_factory=dict)

    def prop(self, name: str) -> str | None:
        """Property by case-insensitive name (``title``, ``file``, ``line``, ``col``...)."""
        return next((v for k, v in self.properties.items() if k.lower() == name.lower()), None)

    @property
    def title(self) -> str | None:
        return self.prop("title")


@dataclass
class Group:
    """A ``::group::`` fold: its title and the log lines inside (indices into ``log``)."""

    title: str
    start: int
    end: int | None = None


class CommandProcessor:
    """The runner's OutputManager + ActionCommandManager for one step, fed line by line.

    One instance per step, shared by stdout and stderr like the runner's (one stop-commands
    state for both streams). ``log`` is what the run page shows: masked, with ``##[group]``,
    ``##[error]``... markers where the runner writes them.
    """

    def __init__(
        self,
        masker: SecretMasker,
        *,
        debug: bool = False,
        legacy_commands: Literal["warn", "disabled"] = "warn",
        allow_unsecure_commands: bool = False,
        allow_unsecure_stop_tokens: bool = False,
    ) -> None:
        self.masker = masker
        self.debug = debug
        self.echo = debug  # EchoOnActionCommand defaults to step debug
        self.legacy_commands = legacy_commands
        self.allow_unsecure_commands = allow_unsecure_commands
        self.allow_unsecure_stop_tokens = allow_unsecure_stop_tokens
        self.registered: set[str] = set(REGISTERED_COMMANDS)
        self.stop_token: str | None = None
        self.log: list[str] = []
        self.annotations: list[Annotation] = []
        self.issue_counts: dict[str, int] = {"error": 0, "warning": 0, "notice": 0}
        self.groups: list[Group] = []
        self.outputs: dict[str, str] = {}
        self.state: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.path: list[str] = []
        self.command_failed = False

    # -- writing, as ExecutionContext does
    def output(self, line: str) -> None:
        self.log.append(self.masker.mask(line))

    def write_debug(self, message: str) -> None:
        if self.debug:
            for part in message.replace("\r\n", "\n").split("\n"):
                self.output(f"##[debug]{part}")

    def add_issue(
        self,
        level: Literal["error", "warning", "notice"],
        message: str,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        masked = self.masker.mask(message)[:MAX_ANNOTATION_MESSAGE]
        self.issue_counts[level] += 1
        if self.issue_counts[level] <= MAX_ANNOTATIONS_PER_TYPE:
            props = {k: self.masker.mask(v) for k, v in (properties or {}).items()}
            self.annotations.append(Annotation(level, masked, props))
        self.output(f"##[{level}]{masked}")

    def fail_command(self, line_or_name: str, reason: str) -> None:
        self.add_issue("error", f"Unable to process command '{line_or_name}' successfully.")
        self.add_issue("error", reason)
        self.command_failed = True

    # -- reading
    def feed(self, line: str) -> None:
        """One line of the action's stdout or stderr (no line terminator)."""
        if line and ("##[" in line or "::" in line) and self._try_command(line):
            return
        self.output(line)

    def _try_command(self, line: str) -> bool:
        cmd = parse_action_command(line, self.registered)
        if cmd is None:
            return False
        if self.stop_token is not None:
            if cmd.command == self.stop_token.lower():
                self.output(line)
                self.write_debug("Resume processing commands")
                self.registered.discard(self.stop_token)
                self.stop_token = None
                return True
            self.write_debug(
                f"Process commands has been stopped and waiting for '##[{self.stop_token}]' "
                "to resume."
            )
            return False
        if cmd.command == "stop-commands":
            return self._stop(line, cmd)
        if self.echo and cmd.command not in _OMIT_ECHO:
            self.output(line)
        handler = getattr(self, "_cmd_" + cmd.command.replace("-", "_"), None)
        if handler is None:  # a registered stop token seen while not stopped
            self.add_issue(
                "warning", f"Can't find command extension for ##[{cmd.command}.command]."
            )
            return True
        try:
            handler(cmd)
        except CommandError as exc:
            self.fail_command(cmd.command if cmd.command in _OMIT_ECHO else line, str(exc))
        return True

    def _stop(self, line: str, cmd: ActionCommand) -> bool:
        token = cmd.data
        invalid = (
            not token
            or token.lower() == "pause-logging"
            or _lookup(self.registered, token) is not None
        )
        if invalid and not self.allow_unsecure_stop_tokens:
            self.fail_command(line, STOP_TOKEN_INVALID)
            return True
        self.stop_token = token
        self.registered.add(token)
        if len(token) > 6:  # the runner masks long stop tokens so they cannot be replayed
            self.masker.add(token)
        self.output(line)
        self.write_debug(
            "Paused processing commands until the token you called ::stopCommands:: with "
            "is received"
        )
        return True

    def _cmd_add_mask(self, cmd: ActionCommand) -> None:
        if not cmd.data.strip():
            self.add_issue(
                "warning", "Can't add secret mask for empty string in ##[add-mask] command."
            )
            return
        if self.echo:
            self.output("::add-mask::***")
        self.masker.add(cmd.data)
        # The runner also registers each line: output reaches the log one line at a time.
        for part in re.split(r"[\r\n]", cmd.data):
            if part.strip():
                self.masker.add(part.strip())

    def _issue(self, level: Literal["error", "warning", "notice"], cmd: ActionCommand) -> None:
        self.add_issue(level, cmd.data, cmd.properties)

    def _cmd_error(self, cmd: ActionCommand) -> None:
        self._issue("error", cmd)

    def _cmd_warning(self, cmd: ActionCommand) -> None:
        self._issue("warning", cmd)

    def _cmd_notice(self, cmd: ActionCommand) -> None:
        self._issue("notice", cmd)

    def _cmd_debug(self, cmd: ActionCommand) -> None:
        self.write_debug(cmd.data)

    def _cmd_group(self, cmd: ActionCommand) -> None:
        self.output(f"##[group]{cmd.data}")
        self.groups.append(Group(self.masker.mask(cmd.data), len(self.log)))

    def _cmd_endgroup(self, cmd: ActionCommand) -> None:
        self.output("##[endgroup]")
        open_groups = [g for g in self.groups if g.end is None]
        if open_groups:
            open_groups[-1].end = len(self.log) - 1

    def _cmd_echo(self, cmd: ActionCommand) -> None:
        value = cmd.data.strip().upper()
        if value not in ("ON", "OFF"):
            raise CommandError(
                "Invalid echo command value. Possible values can be: 'on', 'off'. "
                f"Current value is: '{cmd.data}'."
            )
        self.echo = value == "ON"

    def _legacy(self, cmd: ActionCommand, target: dict[str, str]) -> None:
        if self.legacy_commands == "disabled":
            raise CommandError(COMMAND_DISABLED.format(cmd.command))
        self.add_issue("warning", SET_OUTPUT_DEPRECATED.format(cmd.command))
        name = next((v for k, v in cmd.properties.items() if k.lower() == "name"), "")
        if not name:
            raise CommandError(f"Required field 'name' is missing in ##[{cmd.command}] command.")
        target[name] = cmd.data

    def _cmd_set_output(self, cmd: ActionCommand) -> None:
        self._legacy(cmd, self.outputs)

    def _cmd_save_state(self, cmd: ActionCommand) -> None:
        self._legacy(cmd, self.state)

    def _cmd_set_env(self, cmd: ActionCommand) -> None:
        if not self.allow_unsecure_commands:
            raise CommandError(COMMAND_DISABLED.format(cmd.command))
        name = next((v for k, v in cmd.properties.items() if k.lower() == "name"), "")
        if not name:
            raise CommandError("Required field 'name' is missing in ##[set-env] command.")
        self.env[name] = cmd.data

    def _cmd_add_path(self, cmd: ActionCommand) -> None:
        if not self.allow_unsecure_commands:
            raise CommandError(COMMAND_DISABLED.format(cmd.command))
        self.path = [p for p in self.path if p != cmd.data] + [cmd.data]

    def _cmd_add_matcher(self, cmd: ActionCommand) -> None:
        """Swallowed: problem matchers are not emulated (see module docstring)."""

    def _cmd_remove_matcher(self, cmd: ActionCommand) -> None:
        """Swallowed, as ``_cmd_add_matcher``."""


# --- file commands -------------------------------------------------------------------------


def _read_line(text: str, index: int) -> tuple[str | None, int, str | None]:
    """``EnvFileKeyValuePairs.ReadLine`` on Linux: split on ``\\n`` only (``\\r`` stays)."""
    if index >= len(text):
        return None, index, None
    lf = text.find("\n", index)
    if lf < 0:
        return text[index:], len(text), None
    return text[index:lf], lf + 1, "\n"


def parse_env_file(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(name, value)`` from a GITHUB_OUTPUT/ENV/STATE file, lazily like the runner.

    Pairs before a bad line are yielded (the runner has applied them) before
    ``FileCommandError`` is raised with the runner's message.
    """
    line, index, _ = _read_line(text, 0)
    while line is not None:
        if line:
            eq = line.find("=")
            heredoc = line.find("<<")
            if eq >= 0 and (heredoc < 0 or eq < heredoc):
                key, value = line.split("=", 1)
                yield key, value
            elif heredoc >= 0 and (eq < 0 or heredoc < eq):
                key, delimiter = line.split("<<", 1)
                if not key or not delimiter:
                    raise FileCommandError(
                        f"Invalid format '{line}'. Name must not be empty and delimiter must "
                        "not be empty"
                    )
                start = end = index
                temp, index, newline = _read_line(text, index)
                while temp != delimiter:
                    if temp is None:
                        raise FileCommandError(
                            f"Invalid value. Matching delimiter not found '{delimiter}'"
                        )
                    if newline is None:
                        raise FileCommandError("Invalid value. EOF marker missing new line.")
                    end = index - len(newline)
                    temp, index, newline = _read_line(text, index)
                yield key, text[start:end] if end > start else ""
            else:
                raise FileCommandError(f"Invalid format '{line}'")
        line, index, _ = _read_line(text, index)


# --- action.yml and expressions ------------------------------------------------------------


@dataclass(frozen=True)
class ActionSpec:
    """The parts of a ``runs.using: docker`` action.yml the runner uses."""

    directory: Path
    image: str
    inputs: Mapping[str, Mapping[str, Any]]
    entrypoint: str | None = None
    pre_entrypoint: str | None = None
    post_entrypoint: str | None = None
    pre_if: str = "always()"
    post_if: str = "always()"
    args: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def load_action(directory: str | os.PathLike[str]) -> ActionSpec:
    """Read ``action.yml`` (or ``action.yaml``) and check it is a Dockerfile action."""
    root = Path(directory).resolve()
    meta = next((root / n for n in ("action.yml", "action.yaml") if (root / n).is_file()), None)
    if meta is None:
        raise HarnessError(f"no action.yml in {root}")
    doc = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
    runs = doc.get("runs") or {}
    if str(runs.get("using", "")).lower() != "docker":
        raise HarnessError(f"{meta}: runs.using must be 'docker', got {runs.get('using')!r}")
    image = str(runs.get("image", ""))
    if not (image.endswith("Dockerfile") or image.endswith("dockerfile")):
        raise HarnessError(f"{meta}: only 'image: Dockerfile' actions are supported, got {image!r}")
    args = runs.get("args")
    return ActionSpec(
        directory=root,
        image=image,
        inputs={str(k): (v or {}) for k, v in (doc.get("inputs") or {}).items()},
        entrypoint=runs.get("entrypoint"),
        pre_entrypoint=runs.get("pre-entrypoint"),
        post_entrypoint=runs.get("post-entrypoint"),
        pre_if=str(runs.get("pre-if", "always()")),
        post_if=str(runs.get("post-if", "always()")),
        args=None if args is None else ["" if a is None else str(a) for a in args],
        env={str(k): "" if v is None else str(v) for k, v in (runs.get("env") or {}).items()},
    )


_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_PATH = re.compile(r"^([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*)|\[\s*'([^']*)'\s*\])$")


def _ci_get(mapping: Mapping[str, Any], key: str) -> Any:
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return v
    return None


def evaluate(template: str, contexts: Mapping[str, Mapping[str, Any]]) -> str:
    """Substitute ``${{ ctx.key }}`` (or ``ctx['key']``) the way the runner formats a string
    with embedded expressions; a missing key is ``""`` (as in the runner). Anything beyond a
    property of an allowed context raises ``HarnessError``: better a loud test than a guess.
    """

    def one(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        m = _PATH.match(expr)
        if m is None:
            raise HarnessError(f"unsupported expression ${{{{ {expr} }}}}")
        ctx_name, key = m.group(1), m.group(2) or m.group(3)
        ctx = _ci_get(contexts, ctx_name)
        if ctx is None:
            raise HarnessError(f"context {ctx_name!r} is not available in ${{{{ {expr} }}}}")
        if ctx_name.lower() == "github" and key.lower() not in SUPPORTED_GITHUB_KEYS:
            raise HarnessError(
                f"github.{key} is not supported by the harness (supported: "
                f"{', '.join(sorted(SUPPORTED_GITHUB_KEYS))})"
            )
        value = _ci_get(ctx, key)
        return "" if value is None else str(value)

    return _EXPR.sub(one, template)


def resolve_inputs(
    spec: ActionSpec, with_: Mapping[str, str], github: Mapping[str, Any]
) -> tuple[dict[str, str], list[str]]:
    """The runner's step inputs: the ``with:`` value, else the input's ``default``
    (evaluated against ``github``). ``required:`` is *not* enforced (the runner does not).
    Returns the inputs and the runner's warning for unexpected ``with:`` keys.
    """
    declared = {name.lower(): name for name in spec.inputs}
    inputs: dict[str, str] = {}
    for name, meta in spec.inputs.items():
        if "default" in meta and meta["default"] is not None:
            default = meta["default"]
            if isinstance(default, bool):
                default = "true" if default else "false"
            inputs[name] = evaluate(str(default), {"github": github})
    unexpected = []
    for key, value in with_.items():
        if key.lower() not in declared:
            unexpected.append(key)
        inputs[declared.get(key.lower(), key)] = str(value)
    warnings = []
    if unexpected:
        valid = ", ".join(f"'{n}'" for n in spec.inputs)
        names = ", ".join(f"'{n}'" for n in unexpected)
        warnings.append(f"Unexpected input(s) {names}, valid inputs are [{valid}]")
    return inputs, warnings


def _if_allows(condition: str, main_failed: bool) -> bool:
    cond = condition.strip()
    if cond.startswith("${{") and cond.endswith("}}"):
        cond = cond[3:-2].strip()
    table = {
        "always()": True,
        "success()": not main_failed,
        "failure()": main_failed,
        "cancelled()": False,
    }
    if cond not in table:
        raise HarnessError(f"unsupported pre-if/post-if condition {condition!r}")
    return table[cond]


# --- contexts --------------------------------------------------------------------------------


def default_github_context(**overrides: Any) -> dict[str, Any]:
    """A plausible ``github`` context for a push to ``main``; override any key.

    ``token`` is used for ``${{ github.token }}`` defaults and masked from the start (the
    runner masks it); it is never exported as an env variable (neither does the runner).
    ``event`` is the payload written to ``GITHUB_EVENT_PATH``.
    """
    ctx: dict[str, Any] = {
        "repository": "Octo-Org/Hello-World",
        "actor": "octocat",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "ref": "refs/heads/main",
        "event_name": "push",
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "graphql_url": "https://api.github.com/graphql",
        "token": "ghs_harnessDefaultToken0000000000000000",
        "run_id": "4242",
        "run_number": "7",
        "run_attempt": "1",
        "retention_days": "90",
        "workflow": "Publish",
        "job": "publish",
        "action": "__octo-org_gh-docker-publish",
        "head_ref": "",
        "base_ref": "",
        "event": {},
    }
    ctx.update(overrides)
    repo = str(ctx["repository"])
    ctx.setdefault("repository_owner", repo.split("/", 1)[0])
    ctx.setdefault("triggering_actor", ctx["actor"])
    ref = str(ctx["ref"])
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            ctx.setdefault("ref_name", ref[len(prefix) :])
            ctx.setdefault("ref_type", kind)
    ctx.setdefault("ref_name", ref)
    ctx.setdefault("ref_protected", "false")
    ctx.setdefault("workflow_ref", f"{repo}/.github/workflows/publish.yml@{ref}")
    ctx.setdefault("workflow_sha", ctx["sha"])
    return ctx


# --- results -------------------------------------------------------------------------------


@dataclass
class StepResult:
    """What one step (pre, main or post) did, as the runner would record it."""

    stage: Literal["pre", "main", "post"]
    exit_code: int
    conclusion: Literal["success", "failure"]
    log: list[str]
    annotations: list[Annotation]
    groups: list[Group]
    outputs: dict[str, str]
    env: dict[str, str]
    path: list[str]
    state: dict[str, str]
    summary: str
    start_to_first_line_seconds: float | None
    run_seconds: float
    # Unmasked output, in memory only: for tests proving a secret never reached the log.
    raw_log: list[str] = field(repr=False, default_factory=list)
    raw_summary: str = field(repr=False, default="")

    @property
    def failed(self) -> bool:
        return self.conclusion == "failure"

    @property
    def text(self) -> str:
        return "\n".join(self.log)

    def annotations_of(self, level: str) -> list[Annotation]:
        return [a for a in self.annotations if a.level == level]


@dataclass
class RunResult(StepResult):
    """The main step's result plus the pre/post steps and the image facts."""

    pre: StepResult | None = None
    post: StepResult | None = None
    image: str = ""
    image_size: int = 0
    build_seconds: float = 0.0
    build_cached: bool = False
    build_log: list[str] = field(default_factory=list, repr=False)
    inputs: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    size: int
    seconds: float
    cached: bool
    log: tuple[str, ...] = ()


# --- the runner ----------------------------------------------------------------------------


def _content_hash(directory: Path, extra: Mapping[str, str], dockerfile: str) -> str:
    """Hash of what ``docker build`` would send: the files ``.dockerignore`` lets through
    (so a repository's ``.venv`` or ``.git`` neither slows the hash nor forces a rebuild)."""
    from docker.utils.build import exclude_paths

    ignore = directory / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else [])
        if line.strip() and not line.lstrip().startswith("#")
    ]
    digest = hashlib.sha256()
    for rel in sorted(exclude_paths(str(directory), patterns, dockerfile)):
        path = directory / rel
        if path.is_symlink():
            digest.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            digest.update(f"F {rel} {path.stat().st_mode & 0o777:o}\n".encode())
            digest.update(path.read_bytes())
    digest.update(json.dumps(dict(sorted(extra.items()))).encode())
    return digest.hexdigest()


class _LineSplitter:
    """Bytes to lines as the runner's process reader does (``\\r``, ``\\n``, ``\\r\\n``)."""

    def __init__(self) -> None:
        self._buf = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def push(self, data: bytes) -> list[str]:
        self._buf += self._decoder.decode(data)
        # Hold a trailing "\r" back: its "\n" may come in the next chunk.
        cut = len(self._buf) - 1 if self._buf.endswith("\r") else len(self._buf)
        parts = re.split(r"\r\n|\r|\n", self._buf[:cut])
        self._buf = parts.pop() + self._buf[cut:]
        return parts

    def close(self) -> list[str]:
        self._buf += self._decoder.decode(b"", final=True)
        lines = re.split(r"\r\n|\r|\n", self._buf)
        self._buf = ""
        if lines and lines[-1] == "":
            lines.pop()
        return lines


class ActionHarness:
    """Builds and runs one Docker action like ``ContainerActionHandler`` does.

    Args:
        client: a ``docker.DockerClient`` (created with ``version="auto"``).
        build_args: passed to the image build (the runner passes none; see module doc).
        dockerfile_rewrite: the test bed's edit of an action's Dockerfile (its own base
            image instead of one from the internet, tests/testbed/action_image.py); the
            edited copy is built, the action directory stays as it is.
        network_mode: ``"host"`` to reach the test bed on loopback (see module doc).
        extra_hosts: ``{"name": "ip"}``, like ``docker run --add-host``.
        docker_socket: host path of the daemon socket to mount at /var/run/docker.sock;
            defaults to the client's unix socket.
        legacy_commands: ``"warn"`` (github.com today) or ``"disabled"``.
        timeout: seconds before a step's container is killed.
    """

    def __init__(
        self,
        client: Any,
        *,
        build_args: Mapping[str, str] | None = None,
        dockerfile_rewrite: Callable[[str], str] | None = None,
        network_mode: str | None = "host",
        extra_hosts: Mapping[str, str] | None = None,
        docker_socket: str | None = None,
        legacy_commands: Literal["warn", "disabled"] = "warn",
        timeout: float = 900.0,
    ) -> None:
        self.client = client
        self.build_args = dict(build_args or {})
        self.dockerfile_rewrite = dockerfile_rewrite
        self.network_mode = network_mode
        self.extra_hosts = dict(extra_hosts or {})
        self.docker_socket = docker_socket if docker_socket is not None else self._socket_path()
        self.legacy_commands = legacy_commands
        self.timeout = timeout
        self._built: dict[str, BuiltImage] = {}
        # DockerInstanceLabel: the runner labels its containers with a 6-hex id.
        self.instance_label = uuid.uuid4().hex[:6]

    def _socket_path(self) -> str | None:
        """Host path of the client's unix socket (docker-py keeps it on its adapter, since
        ``base_url`` reads ``http+docker://localhost``); None for TCP daemons."""
        base = str(getattr(self.client.api, "base_url", ""))
        if base.startswith(("http://", "https://")):
            return None
        adapter = getattr(self.client.api, "_custom_adapter", None)
        path = getattr(adapter, "socket_path", None)
        return path if isinstance(path, str) and path else DEFAULT_SOCKET

    # -- build
    def build(
        self, action_dir: str | os.PathLike[str], *, rebuild: bool = False, no_cache: bool = False
    ) -> BuiltImage:
        """``docker build -t <tag> -f <dir>/Dockerfile <dir>``, reused by content hash.

        ``rebuild`` builds even when the tag exists (the daemon's layer cache still applies);
        ``no_cache`` also skips the layer cache: what a fresh runner does once the base image
        is pulled.
        """
        spec = load_action(action_dir)
        dockerfile = spec.directory / spec.image
        if not dockerfile.is_file():
            raise HarnessError(f"Dockerfile for action not found: {dockerfile}")
        text = dockerfile.read_text(encoding="utf-8")
        built_text = self.dockerfile_rewrite(text) if self.dockerfile_rewrite else text
        key = _content_hash(
            spec.directory,
            {"dockerfile": spec.image, "built_dockerfile": built_text, **self.build_args},
            spec.image,
        )
        tag = f"gh-docker-publish-harness/action:{key[:24]}"
        if not (rebuild or no_cache):
            cached = self._built.get(tag)
            if cached is None:
                try:
                    image = self.client.images.get(tag)
                    cached = BuiltImage(tag, int(image.attrs.get("Size", 0)), 0.0, True)
                except Exception:  # docker.errors.ImageNotFound and friends
                    cached = None
            if cached is not None:
                return BuiltImage(cached.tag, cached.size, 0.0, True)
        started = time.monotonic()
        log: list[str] = []
        scratch = Path(tempfile.mkdtemp(prefix="ghdp-dockerfile-"))
        if built_text != text:
            # docker-py sends a Dockerfile from outside the context inside the build tarball.
            dockerfile_arg = str(scratch / "Dockerfile")
            Path(dockerfile_arg).write_text(built_text, encoding="utf-8")
        else:
            dockerfile_arg = str(dockerfile.relative_to(spec.directory))
        try:
            built = self._build(spec, tag, dockerfile_arg, no_cache, log, started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._built[tag] = built
        return built

    def _build(
        self, spec: ActionSpec, tag: str, dockerfile: str, no_cache: bool, log: list[str],
        started: float,
    ) -> BuiltImage:
        stream = self.client.api.build(
            path=str(spec.directory),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=self.build_args or None,
            nocache=no_cache,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            # The classic builder reports failure inside the 200 stream (DESIGN §3).
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
                raise HarnessError(f"Docker build failed: {detail}\n" + "".join(log[-40:]))
            if "stream" in chunk:
                log.append(str(chunk["stream"]))
        seconds = time.monotonic() - started
        size = int(self.client.images.get(tag).attrs.get("Size", 0))
        return BuiltImage(tag, size, seconds, False, tuple(log))

    # -- run
    def run(
        self,
        action_dir: str | os.PathLike[str],
        *,
        inputs: Mapping[str, str] | None = None,
        github: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        debug: bool = False,
        workspace: str | os.PathLike[str] | None = None,
        keep_dirs: bool = False,
    ) -> RunResult:
        """Run pre (if any), main, then post (if any) and return what the runner would see.

        Args:
            inputs: the step's ``with:``.
            github: the github context (``default_github_context()`` when omitted).
            env: the step's ``env:`` (job + step level), applied before inputs.
            secrets: values masked from the start, as the runner masks secrets.
            debug: step debug logging (``ACTIONS_STEP_DEBUG``): shows ``::debug::``,
                echoes commands, sets ``RUNNER_DEBUG=1``.
            workspace: host directory mounted as /github/workspace (a temp dir if omitted).
            keep_dirs: leave the temp runner directories for inspection.
        """
        spec = load_action(action_dir)
        ctx = dict(github) if github is not None else default_github_context()
        built = self.build(action_dir)
        root = Path(tempfile.mkdtemp(prefix="ghdp-runner-"))
        try:
            return self._run_all(
                spec,
                built,
                root,
                ctx,
                dict(inputs or {}),
                dict(env or {}),
                list(secrets),
                debug,
                workspace,
            )
        finally:
            if not keep_dirs:
                shutil.rmtree(root, ignore_errors=True)

    def _run_all(
        self,
        spec: ActionSpec,
        built: BuiltImage,
        root: Path,
        ctx: dict[str, Any],
        with_: dict[str, str],
        step_env: dict[str, str],
        secrets: list[str],
        debug: bool,
        workspace: str | os.PathLike[str] | None,
    ) -> RunResult:
        repo_name = str(ctx.get("repository", "repo/repo")).split("/")[-1] or "repo"
        runner_workspace = root / "work" / repo_name
        ws = Path(workspace).resolve() if workspace else runner_workspace / repo_name
        temp = root / "work" / "_temp"
        dirs = {
            "home": temp / "_github_home",
            "workflow": temp / "_github_workflow",
            "file_commands": temp / "_runner_file_commands",
        }
        for d in (ws, temp, *dirs.values()):
            d.mkdir(parents=True, exist_ok=True)
        event_path = dirs["workflow"] / "event.json"
        event_path.write_text(json.dumps(ctx.get("event") or {}), encoding="utf-8")
        ctx.setdefault("workspace", str(ws))
        ctx["event_path"] = str(event_path)

        masker = SecretMasker()
        for value in (str(ctx.get("token") or ""), *secrets):
            masker.add(value)
        inputs, input_warnings = resolve_inputs(spec, with_, ctx)
        mounts = [
            (str(temp), CONTAINER_RUNNER_TEMP),
            (str(dirs["home"]), CONTAINER_HOME),
            (str(dirs["workflow"]), CONTAINER_WORKFLOW),
            (str(dirs["file_commands"]), CONTAINER_FILE_COMMANDS),
            (str(ws), CONTAINER_WORKSPACE),
        ]
        layout = {
            "runner_workspace": str(runner_workspace),
            "temp": str(temp),
            "home": str(dirs["home"]),
            "file_commands": dirs["file_commands"],
        }

        state: dict[str, str] = {}
        pre = None
        if spec.pre_entrypoint and _if_allows(spec.pre_if, False):
            pre = self._step(
                "pre", spec, built, ctx, inputs, step_env, state, masker, debug, mounts, layout, []
            )
            state.update(pre.state)
        if pre is not None and pre.failed:
            main = _skipped_main()
        else:
            main = self._step(
                "main",
                spec,
                built,
                ctx,
                inputs,
                step_env,
                state,
                masker,
                debug,
                mounts,
                layout,
                input_warnings,
            )
            state.update(main.state)
        post = None
        ran_main = pre is None or not pre.failed
        if ran_main and spec.post_entrypoint and _if_allows(spec.post_if, main.failed):
            post = self._step(
                "post", spec, built, ctx, inputs, step_env, state, masker, debug, mounts, layout, []
            )
        fields = {k: getattr(main, k) for k in StepResult.__dataclass_fields__}
        return RunResult(
            **fields,
            pre=pre,
            post=post,
            image=built.tag,
            image_size=built.size,
            build_seconds=built.seconds,
            build_cached=built.cached,
            build_log=list(built.log),
            inputs=inputs,
        )

    def _step(
        self,
        stage: Literal["pre", "main", "post"],
        spec: ActionSpec,
        built: BuiltImage,
        ctx: Mapping[str, Any],
        inputs: Mapping[str, str],
        step_env: Mapping[str, str],
        state: Mapping[str, str],
        masker: SecretMasker,
        debug: bool,
        mounts: list[tuple[str, str]],
        layout: Mapping[str, Any],
        warnings: list[str],
    ) -> StepResult:
        suffix = str(uuid.uuid4())
        fc_dir: Path = layout["file_commands"]
        files = {}
        for var, prefix in FILE_COMMANDS.items():
            path = fc_dir / (prefix + suffix)
            path.write_bytes(b"")
            files[var] = path

        # Environment, in the runner's order: step env, INPUT_*, runs.env (if absent),
        # HOME, then the github/runner contexts (which win), STATE_* (post/main).
        env: dict[str, str] = dict(step_env)
        for name, value in inputs.items():
            env[f"INPUT_{name.replace(' ', '_').upper()}"] = value
        contexts = {"inputs": inputs, "github": ctx}
        for key, value in spec.env.items():
            env.setdefault(key, evaluate(value, contexts))
        env["HOME"] = layout["home"]
        gh = dict(ctx)
        for var, path in files.items():
            gh[var.removeprefix("GITHUB_").lower()] = str(path)
        for key in _GITHUB_ENV_KEYS:
            if gh.get(key) is not None:
                env[f"GITHUB_{key.upper()}"] = str(gh[key])
        env.update(
            {
                "RUNNER_OS": "Linux",
                "RUNNER_ARCH": "X64",
                "RUNNER_NAME": "GitHub Actions 1",
                "RUNNER_ENVIRONMENT": "github-hosted",
                "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
                "RUNNER_TEMP": layout["temp"],
                "RUNNER_WORKSPACE": layout["runner_workspace"],
            }
        )
        if debug:
            env["RUNNER_DEBUG"] = "1"
        for key, value in state.items():
            env[f"STATE_{key}"] = value
        env = {k: _translate(v, mounts) for k, v in env.items()}
        env.setdefault("CI", "true")
        env["GITHUB_ACTIONS"] = "true"

        entrypoint = {
            "pre": spec.pre_entrypoint,
            "main": spec.entrypoint,
            "post": spec.post_entrypoint,
        }[stage]
        if stage == "main" and not entrypoint:
            entrypoint = inputs.get("entryPoint") or None
        if spec.args is not None:
            args: list[str] | None = [evaluate(a, contexts) for a in spec.args]
        elif inputs.get("args"):
            args = shlex.split(inputs["args"])
        else:
            args = None

        proc = CommandProcessor(
            masker,
            debug=debug,
            legacy_commands=self.legacy_commands,
            allow_unsecure_commands=_truthy(step_env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS")),
            allow_unsecure_stop_tokens=_truthy(
                step_env.get("ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS")
            ),
        )
        for message in warnings:
            proc.add_issue("warning", message)
        raw: list[str] = []
        started = time.monotonic()
        exit_code, first_line = self._run_container(
            built.tag, entrypoint, args, env, mounts, proc, raw
        )
        run_seconds = time.monotonic() - started

        # File commands after the step, in the runner's extension order.
        for name in ("path", "env", "step_summary", "state", "output"):
            _process_file(name, files[f"GITHUB_{name.upper()}"], proc)
        raw_summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8", errors="replace")
        summary = ""
        if 0 < len(raw_summary.encode()) <= SUMMARY_LIMIT:
            summary = "".join(masker.mask(line) + "\n" for line in raw_summary.splitlines())
        failed = exit_code != 0 or proc.command_failed
        return StepResult(
            stage=stage,
            exit_code=exit_code,
            conclusion="failure" if failed else "success",
            log=proc.log,
            annotations=proc.annotations,
            groups=proc.groups,
            outputs=proc.outputs,
            env=proc.env,
            path=proc.path,
            state=proc.state,
            summary=summary,
            start_to_first_line_seconds=first_line,
            run_seconds=run_seconds,
            raw_log=raw,
            raw_summary=raw_summary,
        )

    def _run_container(
        self,
        image: str,
        entrypoint: str | None,
        args: list[str] | None,
        env: Mapping[str, str],
        mounts: list[tuple[str, str]],
        proc: CommandProcessor,
        raw: list[str],
    ) -> tuple[int, float | None]:
        api = self.client.api
        binds = [f"{src}:{dst}" for src, dst in mounts]
        if self.docker_socket:
            binds.insert(0, f"{self.docker_socket}:{DEFAULT_SOCKET}")
        host_config = api.create_host_config(
            binds=binds,
            network_mode=self.network_mode,
            extra_hosts=self.extra_hosts or None,
        )
        safe = re.sub(r"[^a-zA-Z0-9_.-]", "", image)[:40]
        container = api.create_container(
            image,
            command=args,
            entrypoint=[entrypoint] if entrypoint else None,
            environment=dict(env),
            working_dir=CONTAINER_WORKSPACE,
            host_config=host_config,
            labels={self.instance_label: ""},
            name=f"{safe}_{uuid.uuid4().hex[:6]}",
        )
        cid = container["Id"]
        first_line: float | None = None
        lock = threading.Lock()
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(Exception):  # already gone
                api.kill(cid)

        timer = threading.Timer(self.timeout, kill)
        try:
            stream = api.attach(cid, stdout=True, stderr=True, stream=True, logs=True, demux=True)
            splitters = {"out": _LineSplitter(), "err": _LineSplitter()}
            started = time.monotonic()
            api.start(cid)
            timer.start()

            def take(lines: list[str]) -> None:
                nonlocal first_line
                with lock:
                    for line in lines:
                        if first_line is None:
                            first_line = time.monotonic() - started
                        raw.append(line)
                        proc.feed(line)

            for out, err in stream:
                if out:
                    take(splitters["out"].push(out))
                if err:
                    take(splitters["err"].push(err))
            for splitter in splitters.values():
                take(splitter.close())
            result = api.wait(cid, timeout=self.timeout)
            code = int(result.get("StatusCode", 1))
            if killed.is_set():
                proc.add_issue("error", f"The action timed out after {self.timeout} seconds.")
            return code, first_line
        finally:
            timer.cancel()
            # Removal is best effort, like `docker run --rm`.
            with contextlib.suppress(Exception):
                api.remove_container(cid, force=True)


def _skipped_main() -> StepResult:
    """Main is skipped after a failed pre step (``if: success()``); the job fails."""
    return StepResult("main", 0, "failure", [], [], [], {}, {}, [], {}, "", None, 0.0)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _translate(value: str, mounts: list[tuple[str, str]]) -> str:
    """``ContainerInfo.TranslateToContainerPath``: host mount paths become container paths
    in every env value (inputs included); the longest host prefix wins."""
    for host, container in sorted(mounts, key=lambda m: len(m[0]), reverse=True):
        if value == host or value.startswith(host.rstrip("/") + "/"):
            return container + value[len(host.rstrip("/")) :]
    return value


def _process_file(name: str, path: Path, proc: CommandProcessor) -> None:
    """``FileCommandManager.ProcessFiles`` for one file; errors fail the step."""
    try:
        if name == "step_summary":
            size = path.stat().st_size
            if size > SUMMARY_LIMIT:
                proc.add_issue(
                    "error", SUMMARY_TOO_LARGE.format(SUMMARY_LIMIT // 1024, size // 1024)
                )
            return
        text = path.read_text(encoding="utf-8", errors="replace")
        if name == "path":
            for line in text.split("\n"):
                if line:
                    proc.path = [p for p in proc.path if p != line] + [line]
            return
        for key, value in parse_env_file(text):
            if name == "env":
                if key.upper() == "NODE_OPTIONS":
                    proc.add_issue(
                        "error",
                        "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.",
                    )
                    continue
                proc.env[key] = value
            elif name == "state":
                proc.state[key] = value
            else:
                proc.outputs[key] = value
            proc.write_debug(f"Set {name} {key} = {value}")
    except FileCommandError as exc:
        proc.add_issue("error", f"Unable to process file command '{name}' successfully.")
        proc.add_issue("error", str(exc))
        proc.command_failed = True
