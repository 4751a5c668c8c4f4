#!/opt/venv/bin/python
"""The action's post step (``runs.post-entrypoint``): removes the private DOCKER_CONFIG."""

import os
import sys

from gh_docker_publish.flows.post_step import run_post

if __name__ == "__main__":
    sys.exit(run_post(os.environ))
