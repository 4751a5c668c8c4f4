"""The bed's registry: Debian's ``docker-registry`` (distribution 2.8) with token auth.

Tokens come from the GitHub stand-in's ``/token`` (the realm); the registry trusts them
through ``rootcertbundle`` (the stand-in's signing certificate; the JWT carries it in its
``x5c`` header). Push/pull events go to the stand-in's ``/_testbed/registry-events``, which
creates and links packages the way GitHub does on first push.

The access log (combined log format, one line per request) and the application log both go
to ``STATE/registry/registry.log``; tests count blob uploads and manifest PUTs from it
(see ``fixtures.AccessLog``). Dockerd treats 127.0.0.0/8 as an insecure (plain HTTP)
registry by default, so no TLS is needed on loopback.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import requests

from .procs import TestbedError, owned, spawn, stop, wait_for

SERVICE = "testbed-registry"
ISSUER = "github-standin"
START_TIMEOUT = 30.0


def paths(root: Path) -> dict[str, Path]:
    return {
        "config": root / "config.yml",
        "data": root / "data",
        "log": root / "registry.log",
    }


def render_config(
    *,
    port: int,
    github_port: int,
    cert: Path,
    data: Path,
    secret: str,
    host: str = "127.0.0.1",
    service: str = SERVICE,
) -> str:
    """``host``/``service``: a GHES test registry listens on its own loopback address and
    names itself in its challenge, so the stand-in knows which registry a token is for."""
    # JSON is valid YAML: no YAML dependency, and no quoting surprises.
    config = {
        "version": 0.1,
        "log": {
            "level": "info",
            "formatter": "text",
            "accesslog": {"disabled": False},
            "fields": {"service": "registry"},
        },
        "storage": {
            "filesystem": {"rootdirectory": str(data)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            # Upload purging would remove half-finished uploads of a test still running.
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"{host}:{port}",
            "secret": secret,
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "auth": {
            "token": {
                "realm": realm(github_port),
                "service": service,
                "issuer": ISSUER,
                "rootcertbundle": str(cert),
            }
        },
        "notifications": {
            "endpoints": [
                {
                    "name": "github-standin",
                    "url": f"http://127.0.0.1:{github_port}/_testbed/registry-events",
                    "timeout": "2s",
                    "threshold": 3,
                    "backoff": "1s",
                }
            ]
        },
    }
    return json.dumps(config, indent=2) + "\n"


def realm(github_port: int) -> str:
    return f"http://127.0.0.1:{github_port}/token"


def answers(port: int, github_port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> bool:
    """True if our registry (token auth pointing at this stand-in) answers on ``port``."""
    try:
        r = requests.get(f"http://{host}:{port}/v2/", timeout=timeout)
    except requests.RequestException:
        return False
    challenge = r.headers.get("Www-Authenticate", "")
    return r.status_code == 401 and f'realm="{realm(github_port)}"' in challenge


def ensure(
    root: Path,
    *,
    port: int,
    github_port: int,
    cert: Path,
    recorded_pid: int | None,
    host: str = "127.0.0.1",
    service: str = SERVICE,
) -> int | None:
    """Start the registry unless ours already answers; returns the pid we started (or kept)."""
    p = paths(root)
    marker = str(p["config"])
    config = render_config(
        port=port, github_port=github_port, cert=cert, data=p["data"], secret=_secret(root),
        host=host, service=service,
    )
    current = p["config"].read_text() if p["config"].exists() else None
    up = answers(port, github_port, host=host)
    if current == config and up and owned(recorded_pid, marker):
        return recorded_pid
    stop(recorded_pid, marker)
    binary = shutil.which("docker-registry")
    if binary is None:
        raise TestbedError(
            "docker-registry is not installed: run `sudo scripts/install-testbed-deps.sh`"
        )
    p["data"].mkdir(parents=True, exist_ok=True)
    p["config"].write_text(config)
    # No REGISTRY_* variables from the caller's environment: they override the config file.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root)}
    proc = spawn([binary, "serve", marker], p["log"], env=env)
    wait_for(
        lambda: answers(port, github_port, timeout=1, host=host),
        what=f"docker-registry on {host}:{port} (log {p['log']})",
        timeout=START_TIMEOUT,
        proc=proc,
        log_path=p["log"],
    )
    return proc.pid


def shutdown(root: Path, pid: int | None) -> bool:
    return stop(pid, str(paths(root)["config"]))


def _secret(root: Path) -> str:
    # Stable across restarts so upload state signed by one instance stays valid.
    f = root / "http-secret"
    if not f.exists():
        root.mkdir(parents=True, exist_ok=True)
        f.write_text(secrets.token_hex(16))
    return f.read_text().strip()
