"""``python -m tests.testbed up [--print-env] | down [--purge] | env``.

``make testbed`` runs ``up --print-env``; ``make testbed-down`` runs ``down``.
"""

from __future__ import annotations

import argparse
import sys
import time

from .bed import down, load_env, state_dir, up
from .procs import TestbedError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start (idempotently) daemon, registry, stand-in, images")
    p_up.add_argument("--print-env", action="store_true", help="print KEY=VALUE lines")
    p_down = sub.add_parser("down", help="stop what `up` started (never a daemon it found)")
    p_down.add_argument(
        "--purge",
        action="store_true",
        help="also delete the state dir (registry data, docker data-root)",
    )
    sub.add_parser("env", help="print the recorded KEY=VALUE lines")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            started = time.monotonic()
            bed = up()
            took = time.monotonic() - started
            details = ", ".join(f"{k} {v:.1f}s" for k, v in bed.timings.items())
            print(f"test bed up in {took:.1f}s ({details})", file=sys.stderr)
            if args.print_env:
                for key, value in bed.env().items():
                    print(f"{key}={value}")
            else:
                print(f"env: {state_dir() / 'env'}", file=sys.stderr)
        elif args.command == "down":
            stopped = down(purge=args.purge)
            print(f"stopped: {', '.join(stopped) or 'nothing'}", file=sys.stderr)
        else:
            values = load_env()
            if not values:
                print("the test bed is not up: run `make testbed`", file=sys.stderr)
                return 1
            for key, value in values.items():
                print(f"{key}={value}")
    except TestbedError as exc:
        print(f"test bed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
