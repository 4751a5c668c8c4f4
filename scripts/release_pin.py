#!/usr/bin/env python3
"""Point a release's action.yml at the published action image, by digest (release.yml).

    release_pin.py check IMAGE DIGEST [--plain-http]   # exit 1 unless an anonymous pull finds it
    release_pin.py pin IMAGE DIGEST [--action action.yml]

``check`` asks the registry for ``IMAGE@DIGEST`` the way a user's runner pulls it: without
credentials (the Docker Registry token flow with an anonymous token). A private package or
a digest that never landed fails here, before the major tag moves to the release commit.

``pin`` rewrites ``runs.image`` in action.yml from ``Dockerfile`` to
``docker://IMAGE@DIGEST`` and changes nothing else (comments, the post-entrypoint, the
inputs), so the release commit differs from the tagged source in that one line.

Standard library only: release.yml runs it on a bare runner without installing the package.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: ``image:`` directly under ``runs:`` (two-space indent, as action.yml is written).
RUNS_IMAGE = re.compile(r'^(  image:[ \t]*)(?:"[^"\n]*"|\'[^\'\n]*\'|[^\s#]+)(.*)$', re.M)
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
TIMEOUT = 30


class PinError(Exception):
    """What went wrong, said for the release log."""


def split_image(image: str) -> tuple[str, str]:
    """``ghcr.io/owner/name`` -> (``ghcr.io``, ``owner/name``); no tag or digest allowed."""
    host, _, path = image.partition("/")
    if not path or ("." not in host and ":" not in host and host != "localhost"):
        raise PinError(f"image {image!r} must be a full reference: REGISTRY/OWNER/NAME")
    if "@" in path or ":" in path:
        raise PinError(f"image {image!r} must have no tag or digest: the digest is separate")
    if path != path.lower():
        raise PinError(f"image {image!r} must be lowercase (registries reject upper case)")
    return host, path


def pinned_reference(image: str, digest: str) -> str:
    split_image(image)
    if not DIGEST.match(digest):
        raise PinError(f"digest {digest!r} is not sha256:<64 hex digits>")
    return f"docker://{image}@{digest}"


def pin(action_text: str, image: str, digest: str) -> str:
    """action.yml with ``runs.image`` set to ``docker://IMAGE@DIGEST``."""
    runs = re.search(r"^runs:[ \t]*(#.*)?$", action_text, re.M)
    if runs is None:
        raise PinError("action.yml has no top-level `runs:`")
    head, body = action_text[: runs.end()], action_text[runs.end():]
    end = re.search(r"^\S", body, re.M)  # the next top-level key, if any
    block, tail = (body[: end.start()], body[end.start():]) if end else (body, "")
    new_block, count = RUNS_IMAGE.subn(
        lambda m: f'{m.group(1)}"{pinned_reference(image, digest)}"{m.group(2)}', block
    )
    if count != 1:
        raise PinError(f"expected one `image:` under `runs:` in action.yml, found {count}")
    return head + new_block + tail


def check(image: str, digest: str, plain_http: bool = False) -> None:
    """Raise PinError unless an anonymous client can read IMAGE@DIGEST's manifest."""
    reference = pinned_reference(image, digest)
    host, path = split_image(image)
    url = f"{'http' if plain_http else 'https'}://{host}/v2/{path}/manifests/{digest}"
    headers = {"Accept": MANIFEST_TYPES}
    status, answer = _request("HEAD", url, headers)
    if status == 401:
        headers["Authorization"] = f"Bearer {_anonymous_token(answer, path)}"
        status, answer = _request("HEAD", url, headers)
    if status != 200:
        raise PinError(
            f"{reference} cannot be pulled anonymously: the registry answered {status}. "
            "Users' runners pull it without credentials: make the package public "
            "(package settings -> Change visibility) or check that the push landed."
        )
    got = answer.headers.get("Docker-Content-Digest")
    if got and got != digest:
        raise PinError(f"the registry serves {got} for {reference}")


def _anonymous_token(answer: urllib.error.HTTPError | object, path: str) -> str:
    challenge = getattr(answer, "headers", {}).get("WWW-Authenticate", "")
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in params:
        raise PinError(f"the registry asks for credentials ({challenge or 'no challenge'})")
    query = {"scope": f"repository:{path}:pull"}
    if "service" in params:
        query["service"] = params["service"]
    url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
    status, answer = _request("GET", url, {})
    if status != 200:
        raise PinError(f"no anonymous token from {params['realm']}: {status}")
    body = json.loads(answer.read() or b"{}")  # type: ignore[attr-defined]
    token = body.get("token") or body.get("access_token")
    if not token:
        raise PinError(f"the token service at {params['realm']} sent no token")
    return str(token)


def _request(method: str, url: str, headers: dict[str, str]) -> tuple[int, object]:
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310
        return int(response.status), response
    except urllib.error.HTTPError as exc:
        return exc.code, exc
    except OSError as exc:
        raise PinError(f"cannot reach {url}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("check", "an anonymous pull finds IMAGE@DIGEST"),
                       ("pin", "rewrite action.yml's runs.image to docker://IMAGE@DIGEST")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("image", help="REGISTRY/OWNER/NAME: ghcr.io/octo-org/gh-docker-publish")
        sub.add_argument("digest", help="the manifest digest the publish step reported")
    commands.choices["check"].add_argument(
        "--plain-http", action="store_true", help="HTTP instead of HTTPS (a local test registry)"
    )
    commands.choices["pin"].add_argument(
        "--action", type=Path, default=Path("action.yml"), help="the action.yml to rewrite"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            check(args.image, args.digest, plain_http=args.plain_http)
            print(f"ok: {args.image}@{args.digest} is pullable anonymously")
        else:
            text = args.action.read_text(encoding="utf-8")
            args.action.write_text(pin(text, args.image, args.digest), encoding="utf-8")
            print(f"{args.action}: runs.image = {pinned_reference(args.image, args.digest)}")
    except PinError as exc:
        print(f"::error::{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
