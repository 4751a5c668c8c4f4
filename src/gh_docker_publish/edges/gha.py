"""The thin shim over ``actions_toolkit``: inputs, log lines, annotations, masks, groups,
fenced output, step outputs, the step summary and state.

This is the only module that imports ``actions_toolkit``, and it only borrows its command
formatter (``Command``: the ``::name k=v::message`` syntax with GitHub's escaping). Everything
else the toolkit does is papered over here, because in 0.1.15 it:

- emits every annotation property, ``None`` ones as ``title=,line=,...`` (we drop them);
- prefixes ``"Error: "`` when given an exception (we pass strings only);
- has an ``async`` ``group()`` (ours is a sync context manager);
- reads ``os.environ`` for ``GITHUB_OUTPUT``/``GITHUB_STATE`` (ours takes the env explicitly);
- has no step summary API, and ``set_failed()`` calls ``sys.exit`` (never used here).

Outside GitHub Actions (``GITHUB_ACTIONS != "true"``) the same calls print plain text for
the CLI: ``warning: ...``, a header line per group, no masks.
"""

from __future__ import annotations

import base64
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from actions_toolkit.command import Command

from gh_docker_publish.errors import PublishError


def reads_as_command(text: str) -> bool:
    """Whether the runner could read ``text`` as a workflow command, read the way it reads.

    The runner splits output into lines at ``\n``, a lone ``\r`` or ``\r\n`` (.NET
    ``StreamReader.ReadLine``), then ``ActionCommand.TryParseV2`` takes a line that starts
    with ``::`` after ``TrimStart()`` (any Unicode white space, not only blanks), and
    ``TryParse`` a legacy ``##[`` anywhere (actions/runner src/Runner.Common/
    ActionCommand.cs). ``str.splitlines`` splits at a superset of those breaks and
    ``str.lstrip`` strips a superset of .NET's white space, so this errs towards fencing
    (issue 17 item 11).
    """
    return "##[" in text or any(line.lstrip().startswith("::") for line in text.splitlines())

# Workflow commands, GITHUB_OUTPUT/GITHUB_STATE heredocs and GITHUB_STEP_SUMMARY:
WORKFLOW_COMMANDS_DOCS = (
    "https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands"
)


def _new_token() -> str:
    return str(uuid.uuid4())


def _stdout() -> TextIO:
    return sys.stdout


@dataclass(frozen=True)
class Console:
    """Where the run talks to the user: workflow commands on a runner, plain text elsewhere.

    Args:
        env: the process environment (``GITHUB_ACTIONS``, ``GITHUB_OUTPUT``, ...).
        stream: where log lines go (stdout on a runner; the CLI may pass stderr).
        output_file: outside Actions, write step outputs here (GITHUB_OUTPUT format)
            instead of printing them.
        verbose: outside Actions, print debug lines (on a runner the runner filters them).
        new_token: makes delimiters and stop-commands tokens; tests make it deterministic.
    """

    env: Mapping[str, str]
    stream: TextIO = field(default_factory=_stdout)
    output_file: Path | None = None
    verbose: bool = False
    new_token: Callable[[], str] = field(default=_new_token, repr=False)
    #: Tokens of the stop-commands fences now open (the runner's state, mirrored).
    _fences: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def on_actions(self) -> bool:
        """True on a GitHub Actions runner (``GITHUB_ACTIONS=true`` is always set there)."""
        return self.env.get("GITHUB_ACTIONS") == "true"

    # -- plain lines ---------------------------------------------------------------------

    def _write(self, line: str) -> None:
        # Flush per line so our lines interleave correctly with subprocess output.
        self.stream.write(line + "\n")
        self.stream.flush()

    def _command(self, name: str, message: str, properties: Mapping[str, object]) -> None:
        props = {k: str(v) for k, v in properties.items() if v is not None}
        self._write(str(Command(name, props, message)))

    def info(self, message: str) -> None:
        """A plain log line. Text we did not write goes inside ``stop_commands()``; and a
        message the runner would read as a workflow command anyway (an input's or the
        registry's text that starts a line with ``::`` or holds ``##[``) is fenced here,
        so it is shown, never obeyed."""
        if self.on_actions and not self._fences and reads_as_command(message):
            with self.stop_commands():
                self._write(message)
            return
        self._write(message)

    def debug(self, message: str) -> None:
        """A line shown only with step debug logging (RUNNER_DEBUG) or ``--verbose``."""
        if self.on_actions:
            self._command("debug", message, {})
        elif self.verbose or self.env.get("RUNNER_DEBUG") == "1":
            self._write(f"debug: {message}")

    def _annotate(
        self, kind: str, message: str, title: str | None, file: str | None, line: int | None
    ) -> None:
        if self.on_actions:
            # @actions/core skips unset properties; the PyPI port emits them empty.
            self._command(kind, message, {"title": title, "file": file, "line": line})
            return
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        head = f"{title}: " if title else ""
        self._write(f"{where}{kind}: {head}{message}")

    def notice(
        self, message: str, title: str | None = None, file: str | None = None,
        line: int | None = None,
    ) -> None:
        """A notice annotation (shown on the run page)."""
        self._annotate("notice", message, title, file, line)

    def warning(
        self, message: str, title: str | None = None, file: str | None = None,
        line: int | None = None,
    ) -> None:
        """A warning annotation."""
        self._annotate("warning", message, title, file, line)

    def error(
        self, message: str, title: str | None = None, file: str | None = None,
        line: int | None = None,
    ) -> None:
        """An error annotation. Does not fail the step: only entrypoint/cli set the exit code."""
        self._annotate("error", message, title, file, line)

    def mask(self, value: str) -> None:
        """Hide ``value`` in the rest of the job's logs.

        The runner masks line by line, so a multi-line secret is registered whole *and* per
        line. Outside Actions there is nothing to mask and nothing is printed.
        Ref: WORKFLOW_COMMANDS_DOCS#masking-a-value-in-a-log
        """
        if not self.on_actions or not value:
            return
        parts = [value] + [p for p in value.replace("\r\n", "\n").split("\n") if p.strip()]
        for part in dict.fromkeys(parts):  # keep order, drop duplicates
            self._command("add-mask", part, {})

    def mask_login(self, username: str, token: str) -> None:
        """Mask a registry login: the token, and ``base64(user:token)``, which the basic
        auth and a docker config carry and GitHub would not recognise as the token."""
        if not token:
            return
        self.mask(token)
        self.mask(base64.b64encode(f"{username}:{token}".encode()).decode())

    # -- groups and fences ---------------------------------------------------------------

    @contextmanager
    def group(self, name: str) -> Iterator[None]:
        """Fold the lines written inside into one collapsible group (a header line elsewhere)."""
        if not self.on_actions:
            self._write(f"== {name}")
            yield
            return
        self._command("group", name, {})
        try:
            yield
        finally:
            self._command("endgroup", "", {})

    @contextmanager
    def stop_commands(self) -> Iterator[str]:
        """Stop the runner from obeying workflow commands while untrusted output streams.

        Build logs print whatever a Dockerfile's RUN prints; fenced this way a line like
        ``::add-mask::`` or ``::set-env`` in them is shown, not executed. The token is random
        so the fenced text cannot guess it and resume commands early. Yields the token.
        Ref: WORKFLOW_COMMANDS_DOCS#stopping-and-starting-workflow-commands
        """
        token = self.new_token().replace("-", "")
        if not self.on_actions:
            yield token
            return
        self._write(f"::stop-commands::{token}")
        self._fences.append(token)
        try:
            yield token
        finally:
            self._fences.remove(token)
            self._write(f"::{token}::")

    # -- files: outputs, summary, state ----------------------------------------------------

    def _heredocs(self, mapping: Mapping[str, str]) -> str:
        """Render ``name<<delim / value / delim`` blocks, refusing a value that holds the delim.

        Ref: WORKFLOW_COMMANDS_DOCS#multiline-strings
        """
        blocks = []
        for name, value in mapping.items():
            delimiter = f"ghadelimiter_{self.new_token()}"
            if delimiter in name or delimiter in value:
                # Same check as @actions/core file-command.ts: a value that contains the
                # delimiter could smuggle extra outputs or env lines into the file.
                raise PublishError(
                    f"Refusing to write output '{name}': its value contains the file-command "
                    "delimiter.",
                    docs_url=WORKFLOW_COMMANDS_DOCS,
                )
            blocks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        return "".join(blocks)

    def _append(self, path: str | Path, text: str) -> None:
        with open(path, "a", encoding="utf-8", newline="") as handle:
            handle.write(text)

    def set_outputs(self, mapping: Mapping[str, str]) -> None:
        """Set step outputs in one append to ``GITHUB_OUTPUT`` (or the CLI's file / stdout)."""
        target: str | Path | None
        target = self.env.get("GITHUB_OUTPUT") if self.on_actions else self.output_file
        if target:
            text = self._heredocs(mapping)
            try:
                self._append(target, text)
            except OSError as exc:
                raise PublishError(
                    f"Cannot write step outputs to {target}: {exc.strerror or exc}."
                ) from exc
            return
        if self.on_actions:
            # The legacy ::set-output command is disabled; without the file there is no way.
            self.warning("GITHUB_OUTPUT is not set; step outputs were not written.")
            return
        for name, value in mapping.items():
            if "\n" in value:
                self._write(f"{name}:")
                for line in value.split("\n"):
                    self._write(f"  {line}")
            else:
                self._write(f"{name}: {value}")

    def export_variables(self, mapping: Mapping[str, str]) -> None:
        """Set environment variables for the job's later steps (``GITHUB_ENV``); outside
        Actions, or without the file, there are no later steps and nothing is written."""
        path = self.env.get("GITHUB_ENV", "") if self.on_actions else ""
        if not path:
            return
        try:
            self._append(path, self._heredocs(mapping))
        except OSError as exc:
            self.warning(f"Could not export variables to {path}: {exc.strerror or exc}.")

    def write_summary(self, markdown: str) -> None:
        """Append the job summary in one write; a summary that cannot be written only warns.

        Like @actions/core ``summary.write()``, but the file path comes from our env and a
        failure is a warning: the image is already published by the time we get here.
        """
        path = self.env.get("GITHUB_STEP_SUMMARY", "")
        if not self.on_actions or not path:
            self.debug("No GITHUB_STEP_SUMMARY; job summary not written.")
            return
        try:
            self._append(path, markdown if markdown.endswith("\n") else markdown + "\n")
        except OSError as exc:
            self.warning(
                f"Could not write the job summary to {path}: {exc.strerror or exc}. "
                "Check that the step can write to GITHUB_STEP_SUMMARY.",
                title="Job summary",
            )

    def save_state(self, name: str, value: str) -> None:
        """Keep a value for this action's post step (read there as ``STATE_<name>``).

        State only helps the post step clean up, so a file that cannot be written warns.
        """
        path = self.env.get("GITHUB_STATE", "")
        if not self.on_actions or not path:
            self.debug(f"No GITHUB_STATE; state '{name}' not saved.")
            return
        try:
            self._append(path, self._heredocs({name: value}))
        except OSError as exc:
            self.warning(
                f"Could not save state '{name}' to {path}: {exc.strerror or exc}; the post "
                "step will not see it.",
                title="Step state",
            )
