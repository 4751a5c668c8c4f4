"""The two ways in: the action (``run_action``, from ``entrypoint.py``) and the command
line (``gh-docker-publish publish ...``). Both run the same pipeline; these are the only
places that turn an error into an exit code.

Tokens never come from argv (any user on the machine can read it in /proc): the CLI
takes them from the environment or from standard input.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from gh_docker_publish import __version__
from gh_docker_publish.core import credentials, metadata
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
from gh_docker_publish.errors import PublishError
from gh_docker_publish.flows import modes, publish

#: Inputs that are secrets: never flags. The CLI reads them from these variables.
TOKEN_ENV = {"github-token": "GITHUB_TOKEN", "token": "GH_DOCKER_PUBLISH_TOKEN"}
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
    """``gh-docker-publish publish [flags]``: the same pipeline outside Actions."""
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    env = _stand_in_workflow(env, args.repository)
    console = Console(
        env,
        stream=sys.stderr,
        output_file=Path(args.output_file) if args.output_file else None,
        verbose=args.verbose,
    )
    values = {name: getattr(args, _attr(name)) for name in INPUT_NAMES if name not in TOKEN_ENV}
    values = {name: value for name, value in values.items() if value is not None}
    for name, variable in TOKEN_ENV.items():
        values[name] = env.get(variable, "")
    if args.token_stdin:
        values["token"] = sys.stdin.readline().rstrip("\r\n")
    if args.dry_run is not None:
        values["dry-run"] = args.dry_run
    for name in TOKEN_ENV:
        if values[name]:
            console.mask(values[name])

    def go() -> None:
        settings = settings_from_values(values, env)
        ctx = load_context(env)
        if args.dry_run is not None and settings.dry_run and settings.mode == "publish":
            _mask(settings, console)
            print(_render_plan(settings, ctx), file=sys.stdout)
            return
        _publish(settings, ctx, console, env, docker_host=args.docker_host)

    return _guarded(console, go)


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


def _guarded(console: Console, body: Callable[[], None]) -> int:
    """Run ``body``; a PublishError becomes one annotation and exit 1, SIGTERM exit 143."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        body()
    except PublishError as exc:
        console.error(str(exc), title=exc.title)
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
    """What a run would do, from the inputs alone: no daemon, no registry, no API call."""
    the_plan = publish.plan(settings, ctx, publish.Services().now())
    lines = [f"image:    {target.name}" for target in the_plan.targets] + ["refs:"]
    lines += [f"  {ref}" for ref in the_plan.refs]
    if the_plan.push:
        try:
            choice = credentials.choose_token(settings, ctx, the_plan.target)
            lines.append(f"token:    {choice.describe()}")
        except PublishError as exc:
            lines.append(f"token:    none usable: {exc}")
    else:
        lines.append(f"push:     no ({the_plan.push_reason})")
    meta = metadata.compute_metadata(
        settings, ctx, now=publish.Services().now(), repository=the_plan.target.repository
    )
    image_labels = meta.labels
    lines.append("labels:")
    lines += [f"  {key}={value}" for key, value in sorted(image_labels.items())]
    return "\n".join(lines)


def _attr(input_name: str) -> str:
    return input_name.replace("-", "_")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gh-docker-publish",
        description="Publish a Docker image to GitHub Packages: token choice, login, build, "
        "tag, push. Flags mirror the action's inputs; unset flags fall back to GITHUB_* "
        "variables. Tokens: GITHUB_TOKEN and GH_DOCKER_PUBLISH_TOKEN (a PAT) from the "
        "environment, or --token-stdin.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    publish_cmd = commands.add_parser("publish", help="build, tag and push an image")
    for name in INPUT_NAMES:
        if name in TOKEN_ENV or name == "dry-run":
            continue
        publish_cmd.add_argument(f"--{name}", dest=_attr(name), default=None, metavar="VALUE")
    publish_cmd.add_argument(
        "--token-stdin", action="store_true", help="read the PAT from the first line of stdin"
    )
    publish_cmd.add_argument(
        "--docker-host", default=None, help="daemon to use (default DOCKER_HOST)"
    )
    publish_cmd.add_argument(
        "--dry-run",
        nargs="?",
        const="true",
        default=None,
        metavar="BOOL",
        help="publish: print the plan without touching daemon or network; cleanup: the "
        "'dry-run' input (default true: print the plan, delete nothing)",
    )
    publish_cmd.add_argument(
        "--output-file", default=None, help="write outputs here (GITHUB_OUTPUT format)"
    )
    publish_cmd.add_argument("--verbose", action="store_true", help="print debug lines")
    return parser
