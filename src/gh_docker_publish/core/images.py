"""One build under several images: the ``images`` and ``registry-auth`` inputs, and full
references in ``tags`` (issue 14 item 2).

- ``images`` is docker/metadata-action's input: one image per line, a bare name or
  ``name=IMAGE,enable=true|false``; every enabled image gets every tag. ``image`` is the
  list of one it always was.
- ``tags`` may hold full references as docker/build-push-action takes them
  (``ghcr.io/octo-org/app:1.0``): each is split into its image and its tag.
- ``registry-auth`` is docker/login-action's YAML (a list of ``registry``, ``username``,
  ``password``; no ``registry`` means Docker Hub) for registries that are not GitHub's;
  GitHub's registries get their token by GitHub's rules (core/credentials.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gh_docker_publish.core import refs
from gh_docker_publish.errors import InputError

DOCKER_HUB = "docker.io"
IMAGES_EXAMPLE = "images: ghcr.io/octo-org/app, or name=docker.io/octo/app,enable=false"
REGISTRY_AUTH_EXAMPLE = (
    "registry-auth: |\n  - registry: registry.example.com\n    username: ci\n"
    "    password: ${{ secrets.REGISTRY_PASSWORD }}"
)
_IMAGE_ATTRS = ("name", "enable")


@dataclass(frozen=True)
class RegistryLogin:
    """One ``registry-auth`` entry. ``password`` is never in ``repr``."""

    registry: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"RegistryLogin(registry={self.registry!r}, username={self.username!r})"


def parse_images(lines: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The enabled image names (lowercased, in order, once each) and notices for the log.

    Raises:
        InputError("images"): an unknown attribute, ``enable`` not a boolean, a name that
        is not an image reference (a tag in it included).
    """
    names: list[str] = []
    notices: list[str] = []
    for line in lines:
        fields = _image_fields(line)
        enable = fields.get("enable", "true").lower()
        if enable not in ("true", "false"):
            raise InputError.in_line(
                "images", line, f"enable={fields['enable']!r} is not true or false",
                "Write enable=true or enable=false.",
            )
        name = image_name(fields["name"], "images")
        if enable == "false":
            notices.append(f"images: {name} is disabled (enable=false).")
        elif name not in names:
            names.append(name)
    return tuple(names), tuple(notices)


def _image_fields(line: str) -> dict[str, str]:
    if "=" not in line.partition(",")[0]:
        return {"name": line.strip()}
    fields: dict[str, str] = {}
    for cell in line.split(","):
        key, sep, value = cell.partition("=")
        key = key.strip().lower()
        if not sep or key not in _IMAGE_ATTRS:
            raise InputError.in_line(
                "images", line, f"{cell.strip()!r} is not name= or enable=",
                f"Write one image per line, e.g. {IMAGES_EXAMPLE}.",
            )
        fields[key] = value.strip()
    if not fields.get("name"):
        raise InputError.in_line("images", line, "No name=", f"For example {IMAGES_EXAMPLE}.")
    return fields


def image_name(raw: str, input_name: str) -> str:
    """``[HOST/]PATH`` lowercased, as the ``image`` input takes it."""
    parsed = refs.parse_image(raw, input_name)
    return f"{parsed.domain}/{parsed.path}" if parsed.domain else parsed.path


# A full reference: a path with '/' or a host, then ':TAG' after the last '/'.
_FULL_REF = re.compile(r"(?P<image>[^\s:@]+(?::[0-9]+)?(?:/[^\s:@]+)*):(?P<tag>[^/:@\s]+)")


def is_full_ref(item: str) -> bool:
    """``ghcr.io/o/app:1.0``, ``o/app:1.0`` or ``app:1.0`` (build-push-action's tags), not
    a rule, a plain tag (no ':') or a template."""
    if "type=" in item or "{{" in item or refs.is_digest(item):
        return False
    return bool(_FULL_REF.fullmatch(item.strip()))


def split_full_refs(items: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split ``tags`` items into the images the full references name and the tag list
    (their tags, then the other items), each once, in order.

    Every image gets every tag, so references that would give images different tags are
    refused rather than published under tags nobody asked for.

    Raises:
        InputError("tags"): the references do not give every image the same tags.
    """
    images: dict[str, list[str]] = {}
    tag_items: list[str] = []
    for item in items:
        if not is_full_ref(item):
            tag_items.append(item)
            continue
        match = _FULL_REF.fullmatch(item.strip())
        assert match is not None  # is_full_ref said so
        name = image_name(match["image"], "tags")
        images.setdefault(name, []).append(match["tag"])
        if match["tag"] not in tag_items:
            tag_items.append(match["tag"])
    tag_sets = {name: set(tags) for name, tags in images.items()}
    if len({frozenset(s) for s in tag_sets.values()}) > 1:
        first, *_ = tag_sets
        other = next(n for n in tag_sets if tag_sets[n] != tag_sets[first])
        raise InputError(
            "tags",
            f"the references give {first} the tags {sorted(tag_sets[first])} but {other} "
            f"{sorted(tag_sets[other])}; every image gets every tag.",
            hint="List the images in 'images' and the tags once in 'tags', or publish the "
            "images in two steps.",
        )
    return tuple(images), tuple(tag_items)


# -- registry-auth -------------------------------------------------------------------------


def raw_passwords(raw: str) -> list[str]:
    """Every ``password`` in a ``registry-auth`` value, found before anything is validated,
    so an error about any input cannot print one. YAML that does not parse: every value
    after ``password:`` on any line."""
    if not raw.strip():
        return []
    import yaml  # only when registry-auth is given: the step starts faster without it

    found: list[str] = []
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        data = None
    if isinstance(data, list):
        found = [str(e["password"]) for e in data if isinstance(e, dict) and e.get("password")]
    for line in raw.splitlines():
        key, sep, value = line.strip().lstrip("- ").partition(":")
        if sep and key.strip() == "password" and value.strip():
            found.append(value.strip().strip("'\""))
    return [p for p in dict.fromkeys(found) if p]


def parse_registry_auth(raw: str) -> tuple[RegistryLogin, ...]:
    """docker/login-action's ``registry-auth`` YAML. Messages never quote a password.

    Raises:
        InputError("registry-auth"): not a YAML list of mappings, an unknown key, a
        missing username or password, a registry given twice or not a host.
    """
    if not raw.strip():
        return ()
    import yaml  # only when registry-auth is given: the step starts faster without it

    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise InputError(
            "registry-auth", f"is not YAML{where}.", hint=f"Write it as\n{REGISTRY_AUTH_EXAMPLE}"
        ) from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise InputError(
            "registry-auth", "is not a YAML list of registry, username, password entries.",
            hint=f"Write it as\n{REGISTRY_AUTH_EXAMPLE}",
        )
    logins: list[RegistryLogin] = []
    for number, entry in enumerate(data, 1):
        unknown = sorted(set(map(str, entry)) - {"registry", "username", "password", "ecr"})
        if unknown:
            raise InputError(
                "registry-auth", f"entry {number} has the key {unknown[0]!r}.",
                hint="Each entry takes registry, username and password.",
            )
        host = refs.validate_host(str(entry.get("registry") or DOCKER_HUB).strip().rstrip("/"),
                                  "registry-auth")
        username, password = (str(entry.get(k) or "").strip() for k in ("username", "password"))
        if not username or not password:
            missing = "username" if not username else "password"
            raise InputError(
                "registry-auth", f"the entry for {host} has no {missing}.",
                hint="Give both; in a workflow the password comes from a secret.",
            )
        if any(login.registry == host for login in logins):
            raise InputError("registry-auth", f"{host} is given twice.", hint="Keep one entry.")
        logins.append(RegistryLogin(host, username, password))
    return tuple(logins)
