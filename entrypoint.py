"""The action's entry point: the runner starts this in the action container."""

import os
import sys

from gh_docker_publish.cli import run_action

if __name__ == "__main__":
    sys.exit(run_action(os.environ))
