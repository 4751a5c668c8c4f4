"""Every form a token can take on its way to the daemon and the registry, and the search for
them in logs, files and command lines (research/reliability-anchors.md §3C, G2).

The forms: the raw value (and each line of a multi-line one, which the runner masks line by
line), ``base64(user:token)`` (the basic auth and config.json ``auth`` field), docker-py's
``X-Registry-Auth`` (urlsafe base64 of the JSON auth config, ``docker/auth.py``
``encode_header``) and ``X-Registry-Config`` (the same of ``{registry: config}``), the
JSON-escaped and the URL-encoded value.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from pathlib import Path

MIN_PART = 8  # shorter lines of a multi-line token would match by accident


def forms(username: str, token: str, registry: str) -> dict[str, str]:
    """name -> text; a form equal to an earlier one is listed once."""
    auth = {"username": username, "password": token, "serveraddress": registry}
    candidates = {
        "raw": token,
        "basic base64(user:token)": base64.b64encode(f"{username}:{token}".encode()).decode(),
        "X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode(),
        "X-Registry-Config": base64.urlsafe_b64encode(
            json.dumps({registry: auth}).encode()
        ).decode(),
        "json-escaped": json.dumps(token)[1:-1],
        "url-encoded": urllib.parse.quote(token, safe=""),
        "url-encoded (plus)": urllib.parse.quote_plus(token),
    }
    for i, part in enumerate(p for p in token.replace("\r\n", "\n").split("\n")):
        if part != token and len(part.strip()) >= MIN_PART:
            candidates[f"line {i + 1}"] = part
    out: dict[str, str] = {}
    for name, value in candidates.items():
        if value not in out.values():
            out[name] = value
    return out


def scan_text(where: str, text: str, secret_forms: dict[str, str]) -> list[str]:
    """``["<where>: <form>"]`` for each form found in ``text``."""
    return [f"{where}: {name}" for name, value in secret_forms.items() if value in text]


def scan_tree(root: Path, secret_forms: dict[str, str]) -> list[str]:
    """Every regular file under ``root``, read as bytes (so binary files count too)."""
    found: list[str] = []
    encoded = {name: value.encode() for name, value in secret_forms.items()}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            except OSError:
                continue
            found += [f"{path}: {form}" for form, value in encoded.items() if value in data]
    return found


def cmdlines() -> list[str]:
    """The command line of every process visible in /proc now (NUL separators as spaces)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"))
            except OSError:
                continue
    return out
