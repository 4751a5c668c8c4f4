"""Image references: the distribution grammar, lowercasing, and GitHub's registry flavours.

GitHub serves images from two kinds of registry, which differ in the image path
(https://docs.github.com/en/packages/working-with-a-github-packages-registry):

- the Container registry (``ghcr.io``, ``containers.HOSTNAME`` on GHES,
  ``containers.SUBDOMAIN.ghe.com``): ``HOST/OWNER/IMAGE``;
- the Docker registry (GHES ``docker.HOSTNAME``, or ``HOSTNAME`` without subdomain
  isolation; github.com's ``docker.pkg.github.com`` was retired and migrated to ghcr.io):
  ``HOST/OWNER/REPOSITORY/IMAGE``.

Host, owner, repository and image are lowercased (registries reject uppercase names);
tags never are (they are case-sensitive).

The grammar is implemented here rather than borrowed: docker-py's ``parse_repository_tag``
and ``resolve_repository_name`` only split strings and validate nothing, and a dependency
for a dozen lines of regexes from distribution's ``reference/regexp.go`` is not worth it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from gh_docker_publish.errors import InputError

if TYPE_CHECKING:
    from gh_docker_publish.core.context import RunContext

# -- the distribution reference grammar (distribution/reference/regexp.go) -----------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
# A digest where a tag or name belongs: ``sha256:...``, ``@sha256:...``, ``name@sha256:...``.
DIGEST_LIKE = re.compile(r"(?:^|@)sha(?:256|384|512):", re.IGNORECASE)
NAME_MAX = 255  # whole name, host included (reference.NameTotalLengthMax)
TAG_MAX = 128

GHCR = "ghcr.io"
LEGACY_DOCKER_HOST = "docker.pkg.github.com"
GITHUB_COM = "github.com"

DOCKER_REGISTRY_DOCS = (
    "https://docs.github.com/en/packages/working-with-a-github-packages-registry/"
    "working-with-the-docker-registry"
)
CONTAINER_REGISTRY_DOCS = (
    "https://docs.github.com/en/packages/working-with-a-github-packages-registry/"
    "working-with-the-container-registry"
)

# Rendered when a tag or image is a digest: GitHub's Docker registry only takes IMAGE:VERSION
# ("pushing by digest is not supported", Docker registry docs), so we never push by digest.
DIGEST_MESSAGE = (
    "'{value}' is a digest. GitHub's Docker registry needs IMAGE:VERSION and cannot be pushed "
    "by digest."
)
DIGEST_HINT = "Name the image in 'image' (no '@sha256:...') and give tags such as 1.2.3 in 'tags'."


class Flavour(enum.Enum):
    """Which of GitHub's registries a host is, which decides the image path."""

    CONTAINER = "container"  # HOST/OWNER/IMAGE
    DOCKER = "docker"  # HOST/OWNER/REPOSITORY/IMAGE


@dataclass(frozen=True)
class ImageName:
    """An image reference without tag or digest, lowercased: optional host, then the path."""

    domain: str | None
    path: str


@dataclass(frozen=True)
class Target:
    """Where the image goes: registry host, flavour and lowercase path (no tag)."""

    registry: str
    flavour: Flavour
    owner: str
    repository: str  # OWNER/REPO the package belongs to, lowercase
    path: str  # without host
    github_hosted: bool = True  # False for a registry that is none of GitHub's hosts
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """``registry/path``: what ``docker tag``/``docker push`` take before ``:tag``."""
        return f"{self.registry}/{self.path}"

    @property
    def package_name(self) -> str:
        """The package's name on GitHub: the path after OWNER (or OWNER/REPOSITORY)."""
        skip = 2 if self.flavour is Flavour.DOCKER else 1
        return "/".join(self.path.split("/")[skip:])

    def ref(self, tag: str) -> str:
        """``registry/path:tag``; the tag keeps its case."""
        return f"{self.name}:{tag}"


def is_digest(value: str) -> bool:
    """True for ``sha256:...``, ``@sha256:...`` or ``NAME@sha256:...``."""
    return bool(DIGEST_LIKE.search(value.strip()))


def digest_error(input_name: str, value: str) -> InputError:
    """The one message for a digest where a tag or image name belongs."""
    return InputError(
        input_name,
        DIGEST_MESSAGE.format(value=value),
        hint=DIGEST_HINT,
        docs_url=DOCKER_REGISTRY_DOCS,
    )


def validate_tag(tag: str, input_name: str = "tags") -> str:
    """Check a plain tag against the reference grammar; return it unchanged (case kept)."""
    if is_digest(tag):
        raise digest_error(input_name, tag)
    if len(tag) > TAG_MAX:
        raise InputError(
            input_name,
            f"tag '{tag[:40]}...' is {len(tag)} characters; a tag may have at most {TAG_MAX}.",
            hint="Shorten it.",
        )
    if "/" in tag:
        raise InputError(
            input_name,
            f"tag '{tag}' contains '/'. Tags are names like 1.2.3, not image references.",
            hint="Put the image in 'image' and only the tag part in 'tags'.",
        )
    if tag[:1] in (".", "-"):
        raise InputError(
            input_name,
            f"tag '{tag}' starts with '{tag[0]}'; a tag must start with a letter, digit or '_'.",
        )
    if not TAG.fullmatch(tag):
        raise InputError(
            input_name,
            f"tag '{tag}' has characters a tag cannot have; allowed are letters, digits, "
            "'_', '.' and '-'.",
        )
    return tag


def _is_domain(component: str) -> bool:
    # Docker's rule (distribution normalize.go splitDockerDomain): the first component is a
    # host when it has a '.' or ':' or is 'localhost'. Docker also treats an uppercase first
    # component as a host; we lowercase names instead, so that rule does not apply.
    return "." in component or ":" in component or component == "localhost"


def validate_path(path: str, input_name: str) -> None:
    """Each ``/``-separated component must match the grammar's path-component."""
    for component in path.split("/"):
        if not PATH_COMPONENT.fullmatch(component):
            shown = component or "(empty)"
            raise InputError(
                input_name,
                f"'{path}' is not a valid image name: component '{shown}' must be lowercase "
                "letters and digits, separated by '.', '_', '__' or '-'.",
                hint="Use a name like my-app or team/my-app.",
                docs_url=CONTAINER_REGISTRY_DOCS,
            )


def validate_host(host: str, input_name: str) -> str:
    """Check a registry host (``ghcr.io``, ``localhost:5000``); return it lowercased."""
    if "://" in host:
        raise InputError(
            input_name,
            f"'{host}' is a URL; give just the registry host.",
            hint="For example ghcr.io or containers.github.example.com.",
        )
    if not DOMAIN.fullmatch(host):
        raise InputError(input_name, f"'{host}' is not a registry host name.")
    port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host.rpartition("]")[2] else ""
    if port and not 0 < int(port) < 65536:
        raise InputError(input_name, f"'{host}' has a port outside 1-65535.")
    return host.lower()


def parse_image(value: str, input_name: str = "image") -> ImageName:
    """Split ``[HOST/]PATH`` and lowercase it; a tag or digest in it is an error."""
    text = value.strip()
    if not text:
        raise InputError(input_name, "is empty.", hint="Give an image name such as my-app.")
    if is_digest(text):
        raise digest_error(input_name, text)
    if "://" in text:
        raise InputError(
            input_name,
            f"'{text}' is a URL; give an image name or HOST/OWNER/IMAGE without a scheme.",
        )
    head, _, rest = text.partition("/")
    domain: str | None = None
    path = text
    if rest and _is_domain(head):
        domain = validate_host(head, input_name)
        path = rest
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.partition(":")[2]
        raise InputError(
            input_name,
            f"'{text}' includes the tag '{tag}'.",
            hint="Give the image without a tag and put the tag in 'tags'.",
        )
    path = path.lower()
    validate_path(path, input_name)
    full = f"{domain}/{path}" if domain else path
    if len(full) > NAME_MAX:
        raise InputError(
            input_name, f"'{full[:60]}...' is longer than {NAME_MAX} characters."
        )
    return ImageName(domain=domain, path=path)


# -- registry hosts ------------------------------------------------------------------------


def auto_registry(server_host: str) -> str:
    """The Container registry host for a GitHub server host (``registry: auto``).

    github.com → ghcr.io; GHEC with data residency ``SUB.ghe.com`` → ``containers.SUB.ghe.com``;
    GHES → ``containers.HOSTNAME`` (GHES ≥ 3.5 with subdomain isolation). GHES instances still
    on the Docker registry are found by probing, which ``resolve_target`` accepts as
    ``probed_registry``.
    """
    host = server_host.lower()
    if not host or host in (GITHUB_COM, "www.github.com"):
        return GHCR
    return f"containers.{host}"


def is_ghes(server_host: str) -> bool:
    """The one answer to "is this GitHub Enterprise Server": neither github.com nor
    ``*.ghe.com`` (GHEC with data residency)."""
    host = server_host.lower().split(":")[0]
    return bool(host) and host not in (GITHUB_COM, "www.github.com") and not host.endswith(
        ".ghe.com"
    )


def classify_host(host: str, server_host: str) -> tuple[Flavour, bool]:
    """Return (flavour, is-a-GitHub-host) for a registry host."""
    host = host.lower()
    server = server_host.lower()
    if host == GHCR or host.startswith("containers."):
        return Flavour.CONTAINER, True
    if is_ghes(server) and host in (f"docker.{server}", server):
        # GHES Docker registry: with subdomain isolation docker.HOSTNAME, without it HOSTNAME.
        return Flavour.DOCKER, True
    return Flavour.CONTAINER, False


class Destination(Protocol):
    """What ``resolve_target`` reads of the settings (``core.settings.Settings`` has it):
    refs needs no import of settings, so the two do not import each other."""

    @property
    def image(self) -> str: ...
    @property
    def destination(self) -> ImageName: ...
    @property
    def registry(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def repository(self) -> str: ...


def resolve_target(
    settings: Destination, ctx: RunContext, *, probed_registry: str | None = None
) -> Target:
    """Work out registry, flavour and lowercase path from the inputs and the server.

    Args:
        probed_registry: for ``registry: auto`` on GHES, the host found by probing the
            instance's registries; ``None`` means ``containers.HOSTNAME``.

    Raises:
        InputError: the image does not fit the registry's path shape, or 'registry'
            contradicts a host given in 'image'.
    """
    warnings: list[str] = []
    image = settings.destination
    registry = settings.registry
    if image.domain:
        if registry != "auto" and registry != image.domain:
            raise InputError(
                "registry",
                f"'{registry}' differs from the registry in 'image' ({image.domain}).",
                hint="Give the registry in one place only.",
            )
        host = image.domain
    elif registry == "auto":
        host = (probed_registry or auto_registry(ctx.server_host)).lower()
    else:
        host = registry

    path_parts = image.path.split("/")
    if host == LEGACY_DOCKER_HOST:
        warnings.append(
            "docker.pkg.github.com was retired and its images were migrated to ghcr.io; "
            "publishing to ghcr.io instead. Update 'registry'/'image' to ghcr.io."
        )
        host = GHCR
        if image.domain and len(path_parts) >= 3:
            # OWNER/REPOSITORY/IMAGE became OWNER/IMAGE in GitHub's migration to ghcr.io.
            path_parts = [path_parts[0], *path_parts[2:]]

    flavour, github_hosted = classify_host(host, ctx.server_host)
    owner = settings.owner
    repository = settings.repository
    if image.domain:
        need = 3 if flavour is Flavour.DOCKER else 2
        if len(path_parts) < need:
            shape = "OWNER/REPOSITORY/IMAGE" if flavour is Flavour.DOCKER else "OWNER/IMAGE"
            raise InputError(
                "image",
                f"'{settings.image}': on {host} the image path is {host}/{shape}.",
                hint="Give the full path, or just the image name and let owner/repository "
                "fill in the rest.",
                docs_url=DOCKER_REGISTRY_DOCS if flavour is Flavour.DOCKER
                else CONTAINER_REGISTRY_DOCS,
            )
        owner = path_parts[0]
        if flavour is Flavour.DOCKER:
            repository = f"{path_parts[0]}/{path_parts[1]}"
        path = "/".join(path_parts)
    elif flavour is Flavour.DOCKER:
        path = f"{repository}/{image.path}"
    else:
        path = f"{owner}/{image.path}"

    input_name = "image" if image.domain else (
        "repository" if flavour is Flavour.DOCKER else "owner"
    )
    validate_path(path, input_name)
    if len(host) + 1 + len(path) > NAME_MAX:
        raise InputError("image", f"'{host}/{path}' is longer than {NAME_MAX} characters.")
    return Target(
        registry=host,
        flavour=flavour,
        owner=owner,
        repository=repository,
        path=path,
        github_hosted=github_hosted,
        warnings=tuple(warnings),
    )


def package_url(target: Target, ctx: RunContext) -> str:
    """The package's page on GitHub, or ``""`` for a registry that is not GitHub's.

    For the Container registry this is the repository's package page,
    ``SERVER/OWNER/REPO/pkgs/container/NAME`` (nested names with ``/`` encoded as ``%2F``):
    it is what GitHub links from a repository's "Packages" sidebar, it works for user- and
    organization-owned packages alike (``/users/`` vs ``/orgs/`` would need an API call), and
    the packages we publish are linked to that repository (GITHUB_TOKEN links them; the
    ``org.opencontainers.image.source`` label links PAT-published ones). The Docker registry
    has no name-based page (its URLs carry a numeric id), so we link the repository's package
    list.
    """
    if not target.github_hosted or not target.repository:
        return ""
    base = f"{ctx.server_url.rstrip('/')}/{target.repository}"
    if target.flavour is Flavour.DOCKER:
        return f"{base}/packages"
    return f"{base}/pkgs/container/{quote(target.package_name, safe='')}"


def digest_push_conflicts(
    target: Target, *, platforms: Sequence[str], provenance: bool
) -> InputError | None:
    """Inputs that make BuildKit push manifests by digest, which GitHub's Docker registry
    refuses ("pushing by digest is not supported", Docker registry docs): an index (several
    platforms, or an attestation manifest beside the image) sends its children by digest
    before the index goes up under the tag. Checked before the build (issue 13)."""
    if target.flavour is not Flavour.DOCKER:
        return None
    if len(platforms) > 1:
        name, what = "platforms", f"{len(platforms)} platforms make an image index"
    elif provenance:
        name, what = "provenance", "an attestation makes an image index"
    else:
        return None
    return InputError.digest_push_on_docker_registry(
        name,
        target.registry,
        why=f"{what}, whose manifests BuildKit pushes by digest; ",
        hint="Push one platform without provenance here, or publish to the Container "
        "registry (subdomain isolation on GHES).",
        docs_url=DOCKER_REGISTRY_DOCS,
    )
