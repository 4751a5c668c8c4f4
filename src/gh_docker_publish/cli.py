"""The two ways in: the action (``run_action``, from ``entrypoint.py``) and the command
line (``gh-docker-publish publish|pull|cleanup ...``). Both run the same pipeline; these are
the only places that turn an error into an exit code.

The CLI's flags are the action's inputs: their help is action.yml's descriptions (one
source; a new input gets its flag and help without a change here), inputs whose values are
true/false (or auto) are ``--flag/--no-flag``, and errors name the flag, not the input.
Outside Actions the git checkout gives the defaults a workflow would (``origin``'s
OWNER/REPO, HEAD's commit and branch), so ``publish --dry-run`` in a clone just works.

Tokens never come from argv (any user on the machine can read it in /proc): the CLI
takes them from the environment or from standard input.
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from gh_docker_publish import __version__
from gh_docker_publish.core.checkout import defaults_for
from gh_docker_publish.core.context import RunContext, load_context
from gh_docker_publish.core.settings import (
    INPUT_NAMES,
    Settings,
    load_settings,
    raw_secrets,
    settings_from_values,
)
from gh_docker_publish.edges import report
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.git_checkout import read_checkout
from gh_docker_publish.errors import InputNamer, PublishError
from gh_docker_publish.flows import modes, publish

#: Inputs that are secrets: never flags. The CLI reads them from these variables.
TOKEN_ENV = {"github-token": "GITHUB_TOKEN", "token": "GH_DOCKER_PUBLISH_TOKEN"}
#: Subcommands: each is the action's ``mode`` input.
COMMANDS = {
    "publish": "build, tag and push an image (the default mode of the action)",
    "pull": "pull IMAGE at --tags (default latest) with the token that can read it",
    "cleanup": "delete old versions of a package through the Packages API (needs a PAT)",
}
#: action.yml marks the inputs only cleanup reads with this prefix in their description.
CLEANUP_ONLY = "Cleanup:"
EXIT_FAILURE = 1
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it


class Terminated(BaseException):
    """SIGTERM arrived (the runner cancels a job this way). A BaseException, like
    KeyboardInterrupt, so no ``except Exception`` on the way up can swallow it."""


def run_action(env: Mapping[str, str]) -> int:
    """The action's main step: inputs from INPUT_*, context from GITHUB_*."""
    console = Console(env)
    for secret in raw_secrets(env):  # before validation: an input error must not show one
        console.mask(secret)
    return _guarded(console, lambda: _publish(load_settings(env), load_context(env), console, env))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``gh-docker-publish publish|pull|cleanup [flags]``: the same pipeline outside Actions."""
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    env = _stand_in_workflow(env, args.repository)
    if env.get("GITHUB_ACTIONS") != "true":
        env = defaults_for(env, read_checkout(Path(args.context or ".")))
    console = Console(
        env,
        stream=sys.stderr,
        output_file=Path(args.output_file) if args.output_file else None,
        verbose=args.verbose,
    )
    given = {name: getattr(args, _attr(name), None) for name in INPUT_NAMES}
    values = {name: _value(value) for name, value in given.items() if value is not None}
    values["mode"] = args.command
    for name, variable in TOKEN_ENV.items():
        values[name] = env.get(variable, "")
    if args.token_stdin:
        values["token"] = sys.stdin.readline().rstrip("\r\n")
    for name in TOKEN_ENV:
        if values[name]:
            console.mask(values[name])

    def go() -> None:
        settings = settings_from_values(values, env)
        ctx = load_context(env)
        if args.command == "publish" and args.dry_run:
            _mask(settings, console)
            print(_render_plan(settings, ctx), file=sys.stdout)
            return
        _publish(settings, ctx, console, env, docker_host=args.docker_host)

    return _guarded(console, go, cli_flag)


def cli_flag(input_name: str) -> str | None:
    """How a CLI user sets an input: its flag, or the variable a secret comes from."""
    if input_name == "token":
        return "GH_DOCKER_PUBLISH_TOKEN (or --token-stdin)"
    if input_name in TOKEN_ENV:
        return TOKEN_ENV[input_name]
    if input_name == "mode":
        return "the subcommand (publish, pull or cleanup)"
    return f"--{input_name}" if input_name in INPUT_NAMES else None


def _value(value: Any) -> str:
    """A flag's value as the input's text: booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stand_in_workflow(env: Mapping[str, str], repository: str | None) -> Mapping[str, str]:
    """Outside Actions there is no workflow repository: ``--repository`` plays it, so a
    token for that repository (exported as GITHUB_TOKEN) is used the way a workflow's is."""
    if env.get("GITHUB_REPOSITORY") or not repository:
        return env
    owner = repository.partition("/")[0]
    return {**env, "GITHUB_REPOSITORY": repository, "GITHUB_REPOSITORY_OWNER": owner}


def _publish(
    settings: Settings,
    ctx: RunContext,
    console: Console,
    env: Mapping[str, str],
    docker_host: str | None = None,
) -> None:
    _mask(settings, console)
    services = publish.Services(docker_host=docker_host or env.get("DOCKER_HOST") or None)
    if settings.mode != "publish":
        modes.run(settings, ctx, console, services)
        return
    result = publish.run(settings, ctx, console, services)
    if not console.on_actions:
        print(report.render_terminal(result), file=sys.stdout)


def _mask(settings: Settings, console: Console) -> None:
    """Mask every secret the moment settings exist, before anything else is printed."""
    for secret in settings.secrets():
        console.mask(secret)


def _guarded(
    console: Console, body: Callable[[], None], namer: InputNamer | None = None
) -> int:
    """Run ``body``; a PublishError becomes one annotation and exit 1, SIGTERM exit 143.
    ``namer`` words inputs for the CLI (flags); the action keeps the inputs' names."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        body()
    except PublishError as exc:
        console.error(exc.render(namer), title=exc.title)
        return EXIT_FAILURE
    except Terminated:
        console.error(
            "Stopped by SIGTERM; what was pushed before is listed above.", title="Cancelled"
        )
        return EXIT_TERMINATED
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _render_plan(settings: Settings, ctx: RunContext) -> str:
    """What a run would do, from the inputs alone: the plan ``publish`` makes, rendered."""
    return publish.render_plan(*publish.dry_run(settings, ctx, publish.Services().now()))


def _attr(input_name: str) -> str:
    return input_name.replace("-", "_")


def is_boolean(name: str) -> bool:
    """An input whose values are true/false (or auto: the flag left out) is a
    ``--name/--no-name`` flag. Read from action.yml, so new inputs follow by themselves."""
    spec = _action_inputs().get(name, {})
    default = str(spec.get("default", ""))
    text = str(spec.get("description", ""))
    return default in ("true", "false") or (
        default == "auto" and "`true`" in text and "`false`" in text
    )


@functools.cache
def _action_inputs() -> dict[str, dict[str, Any]]:
    """action.yml's inputs: the package carries action.yml (a symlink in the repository)."""
    import yaml  # only the CLI's parser needs it: the action's start does not pay for it

    text = (importlib.resources.files("gh_docker_publish") / "action.yml").read_text("utf-8")
    return dict(yaml.safe_load(text)["inputs"])


def _help(name: str) -> str:
    spec = _action_inputs().get(name, {})
    text = str(spec.get("description", "")).replace("%", "%%")
    default = str(spec.get("default", ""))
    if default and not default.startswith("${{") and "Default" not in text:
        text += f" (default: {default})"
    return text


def _add_input_flags(command: argparse.ArgumentParser, cleanup: bool) -> None:
    for name in INPUT_NAMES:
        if name in TOKEN_ENV or name in ("mode", "dry-run"):
            continue
        if _help(name).startswith(CLEANUP_ONLY) != cleanup:
            continue
        if is_boolean(name) and name.startswith("no-"):  # --no-cache, not --no-no-cache
            command.add_argument(f"--{name}", dest=_attr(name), default=None,
                                 action="store_true", help=_help(name))
        elif is_boolean(name):
            command.add_argument(f"--{name}", dest=_attr(name), default=None,
                                 action=argparse.BooleanOptionalAction, help=_help(name))
        else:
            command.add_argument(f"--{name}", dest=_attr(name), default=None, metavar="VALUE",
                                 help=_help(name))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gh-docker-publish",
        description="Publish Docker images to GitHub Packages: token choice, login, build, "
        "tag, push. Flags are the action's inputs; outside Actions, unset ones come from "
        "GITHUB_* variables, then from the git checkout (origin's OWNER/REPO, HEAD). "
        "Tokens: GITHUB_TOKEN and GH_DOCKER_PUBLISH_TOKEN (a PAT) from the environment, "
        "or --token-stdin; never a flag.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text)
        _add_input_flags(command, cleanup=False)
        if name == "cleanup":
            _add_input_flags(command, cleanup=True)
            command.add_argument(
                "--dry-run", dest="dry_run", default=None,
                action=argparse.BooleanOptionalAction, help=_help("dry-run"),
            )
        elif name == "publish":
            command.add_argument(
                "--dry-run", dest="dry_run", action="store_true", default=None,
                help="print the plan (image, refs, token, labels) without touching the daemon "
                "or the network",
            )
        command.add_argument(
            "--token-stdin", action="store_true",
            help="read the PAT (the action's `token` input) from the first line of stdin",
        )
        command.add_argument(
            "--docker-host", default=None, metavar="HOST",
            help="the Docker daemon to use (default: DOCKER_HOST, else the local socket)",
        )
        command.add_argument(
            "--output-file", default=None, metavar="PATH",
            help="write the outputs here, in GITHUB_OUTPUT format",
        )
        command.add_argument("--verbose", action="store_true", help="print debug lines")
    return parser
