"""GitHub stand-in for the test bed: registry token endpoint, REST endpoints, admin API.

GitHub itself cannot run here, so this one service plays its part (DESIGN.md §5):
it signs distribution tokens per GitHub's package rules (DESIGN.md §2) and answers
the REST calls the product makes with GitHub's documented shapes and error texts.
Everything it knows about images comes from the real registry, never from itself.

Run: python -m tests.testbed.standin --host H --port P --key K.pem --cert C.pem
     --service S --issuer I --registry http://H:RP --server-url https://github.com

Known deviations from GitHub (each a choice where GitHub's behaviour is not documented
or cannot be reproduced here):
- Token endpoint refusals: a PAT without write:packages gets ghcr's
  ``permission_denied: The token provided does not match expected scopes.``; one with the
  scope but no rights ``permission_denied: write_package``; a GITHUB_TOKEN aimed at a
  package it may not write ``installation not allowed to Create|Write organization
  package`` (the same text for user namespaces, unverified). Bad credentials answer 401
  ``authentication required``; ghcr often says ``denied: denied``.
- A package created by a PAT is private even when its source label links it (GitHub's
  docs: linking inherits access, not visibility); label linking happens only at creation.
- The Packages API refuses a GITHUB_TOKEN (``Resource not accessible by integration``),
  as DESIGN.md §2 says; github.com may allow integrations some reads there. Deleting
  needs delete:packages and admin rights (namespace owner, org admin, or the publishing
  PAT); the 403 text for missing admin rights is a guess. GitHub's refusal to delete the
  last tagged version of a package is not modelled.
- ``/meta`` reports a fixed ``installed_version`` for a non-github.com server URL.
- Not implemented: package listings (``/user/packages``, ``/orgs/{o}/packages``).
- The stand-in reads the registry with a 10 s timeout; with the registry down, calls that
  need it answer 502.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import itertools
import json
import re
import secrets
import string
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TOKEN_TTL = 300
REGISTRY_TIMEOUT = 10

# GitHub's texts, as the docker daemon and PyGithub surface them (research/mission-anchors.md).
SCOPE_MISMATCH = "permission_denied: The token provided does not match expected scopes."
WRITE_DENIED = "permission_denied: write_package"
BY_INTEGRATION = "Resource not accessible by integration"
LAST_TAGGED = ("You cannot delete the last tagged version of a package. "
               "You must delete the package instead.")
DOCS = "https://docs.github.com/rest"
DOC_USER = f"{DOCS}/users/users#get-the-authenticated-user"
DOC_REPO = f"{DOCS}/repos/repos#get-a-repository"
DOC_META = f"{DOCS}/meta/meta#get-apiname-meta-information"
DOC_PACKAGES = f"{DOCS}/packages/packages"

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
IMPLIED_BY = {"read:packages": "write:packages"}  # GitHub: write:packages implies read
SOURCE_LABEL = "org.opencontainers.image.source"
LICENSES = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License 2.0",
    "GPL-3.0": "GNU General Public License v3.0",
    "BSD-3-Clause": 'BSD 3-Clause "New" or "Revised" License',
}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def github_time(stamp: str | None) -> str:
    """An RFC 3339 time (the registry's event timestamp, an image's `created`) in GitHub's
    `2024-01-02T03:04:05Z` shape; now when there is none."""
    try:
        when = dt.datetime.fromisoformat(str(stamp)).astimezone(dt.UTC)
    except ValueError:
        return now_iso()
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- names


CONTAINER = "container"  # ghcr.io, containers.HOSTNAME: OWNER/IMAGE, package of an owner
DOCKER = "docker"  # GHES Docker registry: OWNER/REPOSITORY/IMAGE, package of a repository


def package_of(repository: str) -> tuple[str, str]:
    """Registry repository `OWNER/IMAGE[/MORE]` -> (owner, package name), ghcr.io style."""
    owner, _, name = repository.partition("/")
    return owner.lower(), name.lower()


def docker_package_of(repository: str) -> tuple[str, str]:
    """Docker-registry name `OWNER/REPOSITORY/IMAGE` -> (OWNER/REPOSITORY, image).

    On the GHES Docker registry a package belongs to the repository its path names and
    takes its permissions from it (docs: "About permissions for GitHub Packages",
    repository-scoped packages). A path without a repository part names none: ("", name).
    """
    parts = repository.lower().split("/")
    if len(parts) < 3:
        return "", "/".join(parts[1:])
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:])


def registry_name(owner: str, name: str) -> str:
    return f"{owner}/{name}".lower()


# ---------------------------------------------------------------- model


@dataclass
class Account:
    login: str
    type: str  # "User" | "Organization"
    id: int
    members: dict[str, str] = field(default_factory=dict)  # lower login -> "admin"|"member"


@dataclass
class Repo:
    full_name: str
    id: int
    private: bool = False
    visibility: str = "public"
    default_branch: str = "main"
    description: str | None = None
    license_spdx: str | None = None
    homepage: str | None = None
    topics: list[str] = field(default_factory=list)

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]


@dataclass(frozen=True)
class Token:
    """A credential; `sub` is what the JWT carries, so the value never leaves here."""

    sub: str
    kind: str  # "github_token" | "pat"
    repository: str = ""  # github_token: OWNER/REPO of the workflow
    packages: str = "none"  # github_token: write | read | none
    fork_pr: bool = False
    owner: str = ""  # pat: the user
    scopes: frozenset[str] = frozenset()

    @property
    def login(self) -> str:
        """Who acts: the PAT's user, or the workflow repository's owner."""
        return self.owner if self.kind == "pat" else self.repository.split("/")[0]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or IMPLIED_BY.get(scope, "") in self.scopes


@dataclass
class Package:
    owner: str
    name: str
    id: int
    repository: str | None = None
    visibility: str = "private"
    actions_access: dict[str, str] = field(default_factory=dict)  # lower repo -> role
    creator: str | None = None  # login of a PAT publisher: it gets admin
    service: str = ""  # the registry (token service) holding it; "" = the default one
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class World:
    """Everything GitHub knows; the rules below only read it."""

    accounts: dict[str, Account] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    packages: dict[tuple[str, str], Package] = field(default_factory=dict)
    # GHES Docker registry packages: (OWNER/REPOSITORY, image) -> package of that repository
    docker_packages: dict[tuple[str, str], Package] = field(default_factory=dict)

    def account(self, login: str) -> Account | None:
        return self.accounts.get(login.lower())

    def repo(self, full_name: str) -> Repo | None:
        return self.repos.get(full_name.lower())

    def package(self, owner: str, name: str) -> Package | None:
        return self.packages.get((owner.lower(), name.lower()))

    def may_write_namespace(self, login: str, owner: str) -> bool:
        """A user writes in their own namespace and in orgs they belong to."""
        if login.lower() == owner.lower():
            return True
        org = self.account(owner)
        return org is not None and org.type == "Organization" and login.lower() in org.members


# ---------------------------------------------------------------- rules (pure)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    creates: bool = False


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


def push_decision(world: World, token: Token, owner: str, name: str) -> Decision:
    """May `token` push to package owner/name? GitHub's rules, DESIGN.md §2."""
    package = world.package(owner, name)
    if token.kind == "github_token":
        verb = "Write" if package else "Create"
        installation = f"installation not allowed to {verb} organization package"
        if token.packages != "write" or token.fork_pr:
            return Decision(False, installation)
        if package is None:
            if _same(owner, token.login):
                return Decision(True, creates=True)
            return Decision(False, installation)
        granted = package.actions_access.get(token.repository.lower()) in ("write", "admin")
        if _same(package.repository, token.repository) or granted:
            return Decision(True)
        return Decision(False, WRITE_DENIED if _same(owner, token.login) else installation)
    if not token.has_scope("write:packages"):
        return Decision(False, SCOPE_MISMATCH)
    if not world.may_write_namespace(token.owner, owner):
        return Decision(False, WRITE_DENIED)
    return Decision(True, creates=package is None)


def can_pull(world: World, token: Token | None, owner: str, name: str) -> bool:
    """Public packages for anyone; private ones for their repository or namespace."""
    package = world.package(owner, name)
    if package is None:
        return False
    if package.visibility == "public":
        return True
    if token is None:
        return False
    if token.kind == "github_token":
        if token.packages == "none":
            return False
        return _same(package.repository, token.repository) or (
            token.repository.lower() in package.actions_access
        )
    return token.has_scope("read:packages") and world.may_write_namespace(token.owner, owner)


def can_see_repo(world: World, token: Token | None, repo: Repo) -> bool:
    """Private repositories: their own GITHUB_TOKEN, or a `repo`-scoped PAT with access."""
    if not repo.private:
        return True
    if token is None:
        return False
    if token.kind == "github_token":
        return _same(token.repository, repo.full_name)
    return "repo" in token.scopes and world.may_write_namespace(token.owner, repo.owner)


DOCKER_NO_REPOSITORY = "denied: requested access to the resource is denied"


def docker_push_decision(world: World, token: Token, name: str) -> Decision:
    """May `token` push `OWNER/REPOSITORY/IMAGE` to the GHES Docker registry?

    The package takes its permissions from the repository (repository-scoped packages):
    GITHUB_TOKEN only for its own workflow repository, with `packages: write`, never from a
    fork's pull request; a PAT (classic) needs `write:packages`, `repo` as well when the
    repository is private, and write access to the repository (here: its owner or a member
    of the owning organization).
    """
    repository, image = docker_package_of(name)
    repo = world.repo(repository) if repository else None
    if repo is None or not image:
        return Decision(False, DOCKER_NO_REPOSITORY)
    creates = (repo.full_name.lower(), image) not in world.docker_packages
    if token.kind == "github_token":
        if token.packages != "write" or token.fork_pr or not _same(token.repository, repository):
            return Decision(False, WRITE_DENIED)
        return Decision(True, creates=creates)
    if not token.has_scope("write:packages") or (repo.private and "repo" not in token.scopes):
        return Decision(False, SCOPE_MISMATCH)
    if not world.may_write_namespace(token.owner, repo.owner):
        return Decision(False, WRITE_DENIED)
    return Decision(True, creates=creates)


def docker_can_pull(world: World, token: Token | None, name: str) -> bool:
    """Docker-registry packages are as visible as their repository."""
    repository, image = docker_package_of(name)
    repo = world.repo(repository) if repository else None
    if repo is None or (repo.full_name.lower(), image) not in world.docker_packages:
        return False
    if token is not None and token.kind == "github_token" and token.packages == "none":
        return False
    return can_see_repo(world, token, repo)


def can_admin_package(world: World, token: Token, package: Package) -> bool:
    """Deleting needs admin on the package: its namespace owner, an org admin or its publisher."""
    org = world.account(package.owner)
    role = org.members.get(token.owner.lower()) if org else None
    return _same(token.owner, package.owner) or role == "admin" or _same(
        token.owner, package.creator
    )


@dataclass(frozen=True)
class Grant:
    access: list[dict[str, Any]]
    denied: str = ""
    creates: tuple[str, ...] = ()  # registry names this token would create by pushing


def parse_scopes(values: list[str]) -> list[tuple[str, list[str]]]:
    """`repository:NAME:pull,push` scopes (repeated or space-separated) -> (NAME, actions)."""
    out = []
    for value in values:
        for scope in value.split():
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            if kind == "repository" and repo:
                out.append((repo, [a for a in actions.split(",") if a]))
    return out


def grant(
    world: World, token: Token | None, scopes: list[str], flavour: str = CONTAINER
) -> Grant:
    """The access a token gets: a denied push fails the request, a denied pull grants nothing.

    `flavour` is the registry's: the Container registry names packages OWNER/IMAGE, the GHES
    Docker registry OWNER/REPOSITORY/IMAGE with the repository's permissions.
    """
    access: list[dict[str, Any]] = []
    creates: list[str] = []
    for repo, actions in parse_scopes(scopes):
        owner, name = package_of(repo)
        granted: list[str] = []
        if "push" in actions and token is not None:  # anonymous pushes get nothing: 401
            decision = (docker_push_decision(world, token, repo) if flavour == DOCKER
                        else push_decision(world, token, owner, name))
            if not decision.allowed:
                return Grant([], denied=decision.message)
            granted = ["pull", "push"]
            if decision.creates:
                creates.append(repo)
        elif "pull" in actions and (
            docker_can_pull(world, token, repo) if flavour == DOCKER
            else can_pull(world, token, owner, name)
        ):
            granted = ["pull"]
        if granted:
            access.append({"type": "repository", "name": repo, "actions": granted})
    return Grant(access, creates=tuple(creates))


# ---------------------------------------------------------------- signing


def make_signing_cert(key_path: str | Path, cert_path: str | Path) -> None:
    """RSA key + self-signed cert: the registry's `rootcertbundle` trusts the x5c we send."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "github-standin")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    Path(key_path).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Signer:
    """Mints distribution registry tokens (docker/distribution token auth spec)."""

    def __init__(self, key_path: str, cert_path: str, issuer: str, service: str) -> None:
        self._key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.issuer = issuer
        self.service = service

    def mint(self, sub: str, access: list[dict[str, Any]], audience: str | None = None) -> str:
        """`audience`: the registry's `service` (each GHES test registry has its own)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience or self.service,  # distribution 2.8 wants a string, not a list
            "exp": now + TOKEN_TTL,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": self._x5c})


# ---------------------------------------------------------------- the real registry


class Registry:
    """Reads (and deletes) what the registry really holds, with self-minted tokens."""

    def __init__(self, url: str, signer: Signer, service: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.signer = signer
        self.service = service or signer.service

    def _call(self, method: str, name: str, path: str, **kw: Any) -> requests.Response:
        token = self.signer.mint(
            "github-standin",
            [{"type": "repository", "name": name, "actions": ["pull", "delete"]}],
            audience=self.service,
        )
        headers = {"Authorization": f"Bearer {token}", "Accept": ", ".join(MANIFEST_TYPES)}
        return requests.request(
            method, f"{self.url}/v2/{name}/{path}", headers=headers,
            timeout=REGISTRY_TIMEOUT, **kw,
        )

    def tags(self, name: str) -> list[str]:
        resp = self._call("GET", name, "tags/list")
        return (resp.json().get("tags") or []) if resp.status_code == 200 else []

    def digest(self, name: str, reference: str) -> str | None:
        resp = self._call("HEAD", name, f"manifests/{reference}")
        return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None

    def delete(self, name: str, digest: str) -> bool:
        return self._call("DELETE", name, f"manifests/{digest}").status_code in (202, 404)

    def versions(self, name: str, known: set[str]) -> dict[str, list[str]]:
        """digest -> tags, for tagged manifests and the untagged ones we saw pushed."""
        out: dict[str, list[str]] = {}
        for tag in self.tags(name):
            digest = self.digest(name, tag)
            if digest:
                out.setdefault(digest, []).append(tag)
        for digest in known - out.keys():
            if self.digest(name, digest):
                out[digest] = []
        return out

    def created(self, name: str, reference: str) -> str | None:
        """The image config's `created` (first child of an index), for versions whose push
        event has not arrived: GitHub's created_at is when the version was pushed."""
        resp = self._call("GET", name, f"manifests/{reference}")
        if resp.status_code != 200:
            return None
        manifest = resp.json()
        if "manifests" in manifest:
            children = manifest.get("manifests") or []
            return self.created(name, children[0]["digest"]) if children else None
        config = self._call("GET", name, f"blobs/{manifest['config']['digest']}")
        return str(config.json().get("created") or "") or None if config.ok else None

    def source_label(self, name: str, reference: str) -> str | None:
        """The image's `org.opencontainers.image.source`, from index annotations or config."""
        resp = self._call("GET", name, f"manifests/{reference}")
        if resp.status_code != 200:
            return None
        manifest = resp.json()
        if SOURCE_LABEL in manifest.get("annotations", {}):
            return str(manifest["annotations"][SOURCE_LABEL])
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            children = manifest.get("manifests") or []
            return self.source_label(name, children[0]["digest"]) if children else None
        config = self._call("GET", name, f"blobs/{manifest['config']['digest']}")
        if config.status_code != 200:
            return None
        labels = (config.json().get("config") or {}).get("Labels") or {}
        return labels.get(SOURCE_LABEL)


# ---------------------------------------------------------------- state


class Standin:
    """The stand-in's state and operations; every read or write holds `lock`."""

    def __init__(
        self,
        signer: Signer,
        registry: Registry,
        server_url: str,
        extra_registries: dict[str, tuple[str, Registry]] | None = None,
    ) -> None:
        """`extra_registries`: service -> (flavour, registry) for the GHES test hosts; a
        token request names its registry by the `service` its challenge gave."""
        self.signer = signer
        self.registry = registry
        self.registries: dict[str, tuple[str, Registry]] = {
            registry.service: (CONTAINER, registry), **(extra_registries or {})}
        self.server_url = server_url.rstrip("/")
        self.lock = threading.Lock()
        self.reset()

    def registry_for(self, service: str | None) -> tuple[str, Registry]:
        """(flavour, registry) of a token service; unknown or absent means the default."""
        return self.registries.get(service or "", (CONTAINER, self.registry))

    def reset(self) -> None:
        with self.lock:
            self.world = World()
            self.tokens: dict[str, Token] = {}  # value -> token
            self.subs: dict[str, Token] = {}  # sub -> token
            self.pending: dict[str, str] = {}  # registry name -> sub of its would-be creator
            self.pending_service: dict[str, str] = {}  # registry name -> its token service
            self.seen: dict[str, set[str]] = {}  # registry name -> digests pushed
            self.version_ids: dict[tuple[str, str], tuple[int, str]] = {}
            self.ids = itertools.count(1001)

    # -- admin

    def ensure_account(self, login: str, type_: str = "User") -> Account:
        account = self.world.account(login)
        if account is None:
            account = Account(login, type_, next(self.ids))
            self.world.accounts[login.lower()] = account
        return account

    def ensure_repo(self, full_name: str, **fields: Any) -> Repo:
        self.ensure_account(full_name.split("/")[0])
        repo = self.world.repo(full_name) or Repo(full_name, next(self.ids))
        for key, value in fields.items():
            setattr(repo, key, value)
        if "visibility" not in fields:
            repo.visibility = "private" if repo.private else "public"
        repo.private = repo.visibility != "public"
        self.world.repos[full_name.lower()] = repo
        return repo

    def add_user(self, body: dict[str, Any]) -> Account:
        with self.lock:
            account = self.ensure_account(body["login"], body.get("type", "User"))
            account.type = body.get("type", account.type)
            for member in body.get("members", []):
                self.ensure_account(member["login"])
                account.members[member["login"].lower()] = member.get("role", "member")
            return account

    def add_repo(self, body: dict[str, Any]) -> Repo:
        fields = {k: body[k] for k in Repo.__dataclass_fields__
                  if k in body and k not in ("id", "full_name")}
        with self.lock:
            return self.ensure_repo(body["full_name"], **fields)

    def add_token(self, body: dict[str, Any]) -> str:
        alphabet = string.ascii_letters + string.digits
        random = "".join(secrets.choice(alphabet) for _ in range(36))
        with self.lock:
            sub = f"token-{next(self.ids)}"
            if body["kind"] == "github_token":
                repo = self.world.repo(body["repository"]) or self.ensure_repo(body["repository"])
                token = Token(sub, "github_token", repository=repo.full_name,
                              packages=body.get("packages", "write"),
                              fork_pr=bool(body.get("fork_pr", False)))
                value = f"ghs_{random}"
            else:
                token = Token(sub, "pat", owner=self.ensure_account(body["owner"]).login,
                              scopes=frozenset(body.get("scopes", [])))
                value = f"ghp_{random}"
            # A test may ask for a given value (a token with a space or a newline, to
            # hunt for its encoded forms); minted values stay random otherwise.
            value = str(body.get("value") or value)
            self.tokens[value] = token
            self.subs[sub] = token
            return value

    def add_package(self, body: dict[str, Any]) -> Package:
        with self.lock:
            owner = self.ensure_account(body["owner"]).login
            if body.get("repository") and not self.world.repo(body["repository"]):
                self.ensure_repo(body["repository"])
            package = Package(
                owner, body["name"].lower(), next(self.ids),
                repository=body.get("repository"),
                visibility=body.get("visibility", "private"),
                actions_access={a["repository"].lower(): a.get("role", "read")
                                for a in body.get("actions_access", [])},
            )
            self.world.packages[(owner.lower(), package.name)] = package
            return package

    # -- registry side

    def issue(self, token: Token | None, scopes: list[str], service: str | None = None) -> Grant:
        for repo, _ in parse_scopes(scopes):
            self.reconcile(repo)
        flavour, _ = self.registry_for(service)
        with self.lock:
            result = grant(self.world, token, scopes, flavour)
            for repo in result.creates:
                self.pending[repo] = token.sub if token else ""
                self.pending_service[repo] = service or ""
            return result

    def reconcile(self, repo: str, reference: str | None = None) -> None:
        """Create the package a granted push made, once the registry holds an image for it.

        Called on notification events and lazily before any read, so a test that
        pushes and at once asks the API sees the package (events are async).
        """
        with self.lock:
            service = self.pending_service.get(repo, "")
            flavour, registry = self.registry_for(service)
            creator = self.subs.get(self.pending.get(repo, ""))
            exists = (docker_package_of(repo) in self.world.docker_packages
                      if flavour == DOCKER else self.world.package(*package_of(repo)))
            if creator is None or exists:
                self.pending.pop(repo, None)  # stale: made by another push, or reset
                return
        if reference is None:
            reference = next(iter(registry.tags(repo)), None)
        if reference is None:
            return
        if flavour == DOCKER:
            self._create_docker_package(repo, creator, service)
            return
        linked = (creator.repository if creator.kind == "github_token"
                  else self._linked_by_label(repo, reference, registry))
        with self.lock:
            owner, name = package_of(repo)
            if self.world.package(owner, name):
                return
            source = self.world.repo(linked) if linked else None
            # GITHUB_TOKEN packages inherit the repo's visibility; others start private.
            inherits = source is not None and creator.kind == "github_token"
            self.world.packages[(owner, name)] = Package(
                self.ensure_account(owner).login, name, next(self.ids),
                repository=source.full_name if source else None,
                visibility=source.visibility if inherits and source else "private",
                creator=creator.owner or None,
                service=service,
            )
            self.pending.pop(repo, None)

    def _create_docker_package(self, repo: str, creator: Token, service: str) -> None:
        """A Docker-registry package belongs to the repository in its path, whoever pushed
        it, and is as visible as that repository."""
        repository, image = docker_package_of(repo)
        with self.lock:
            source = self.world.repo(repository)
            if source is None or (repository, image) in self.world.docker_packages:
                return
            self.world.docker_packages[(repository, image)] = Package(
                source.owner, image, next(self.ids), repository=source.full_name,
                visibility=source.visibility, creator=creator.owner or None, service=service,
            )
            self.pending.pop(repo, None)

    def _linked_by_label(self, repo: str, reference: str, registry: Registry) -> str | None:
        """GitHub links a PAT-published package whose source label names an owner's repo."""
        label = registry.source_label(repo, reference)
        prefix = f"{self.server_url}/"
        if not label or not label.startswith(prefix):
            return None
        full_name = label[len(prefix):].strip("/")
        with self.lock:
            source = self.world.repo(full_name)
            owner, _ = package_of(repo)
            return source.full_name if source and _same(source.owner, owner) else None

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Registry notifications: remember pushed manifests, create packages at once."""
        for event in events:
            target = event.get("target", {})
            repo, digest = target.get("repository", ""), target.get("digest", "")
            if target.get("mediaType") not in MANIFEST_TYPES or not repo:
                continue
            with self.lock:
                if event.get("action") == "delete":
                    self.seen.get(repo, set()).discard(digest)
                    continue
                if event.get("action") != "push":
                    continue
                self.seen.setdefault(repo, set()).add(digest)
                # The version exists from its push: ids and created_at follow push order.
                if (repo, digest) not in self.version_ids:
                    self.version_ids[(repo, digest)] = (
                        next(self.ids), github_time(event.get("timestamp")))
                actor = event.get("actor", {}).get("name", "")
                if repo in self.pending and actor in self.subs:
                    self.pending[repo] = actor  # the pusher, not merely the last grantee
            self.reconcile(repo, digest)

    def versions(self, package: Package) -> list[dict[str, Any]]:
        """Versions as the registry holds them, newest first, with stable ids."""
        repo = registry_name(package.owner, package.name)
        with self.lock:
            known = set(self.seen.get(repo, set()))
        registry = self.registry_for(package.service)[1]
        held = registry.versions(repo, known)
        with self.lock:
            fresh = [d for d in held if (repo, d) not in self.version_ids]
        # Pushed, but the event has not arrived yet: date them by their image's creation,
        # oldest first, so ids still follow push order as GitHub's do.
        times = {digest: registry.created(repo, digest) or "" for digest in fresh}
        with self.lock:
            for digest in sorted(fresh, key=lambda d: github_time(times[d]) + times[d]):
                self.version_ids.setdefault(
                    (repo, digest), (next(self.ids), github_time(times[digest] or None)))
            out = []
            for digest, tags in held.items():
                vid, created = self.version_ids[(repo, digest)]
                out.append({"id": vid, "digest": digest, "tags": sorted(tags),
                            "created_at": created})
            return sorted(out, key=lambda v: v["id"], reverse=True)

    def delete_version(self, package: Package, digest: str) -> bool:
        repo = registry_name(package.owner, package.name)
        if not self.registry_for(package.service)[1].delete(repo, digest):
            return False
        with self.lock:
            self.seen.get(repo, set()).discard(digest)
            self.version_ids.pop((repo, digest), None)
        return True

    def state(self) -> dict[str, Any]:
        with self.lock:
            pending = list(self.pending)
        for repo in pending:
            self.reconcile(repo)
        with self.lock:
            return {
                "users": [{"login": a.login, "type": a.type, "members": a.members}
                          for a in self.world.accounts.values()],
                "repos": [r.full_name for r in self.world.repos.values()],
                "packages": [
                    {"owner": p.owner, "name": p.name, "repository": p.repository,
                     "visibility": p.visibility, "actions_access": p.actions_access,
                     "creator": p.creator}
                    for p in self.world.packages.values()
                ],
                "docker_packages": [
                    {"owner": p.owner, "name": p.name, "repository": p.repository,
                     "visibility": p.visibility, "creator": p.creator, "service": p.service}
                    for p in self.world.docker_packages.values()
                ],
                "pending": sorted(self.pending),
            }


# ---------------------------------------------------------------- JSON shapes


def user_json(server: str, api: str, account: Account) -> dict[str, Any]:
    return {
        "login": account.login,
        "id": account.id,
        "node_id": f"U_{account.id}",
        "avatar_url": f"{server}/{account.login}.png",
        "url": f"{api}/users/{account.login}",
        "html_url": f"{server}/{account.login}",
        "type": account.type,
        "site_admin": False,
    }


def repo_json(server: str, api: str, world: World, repo: Repo, full: bool) -> dict[str, Any]:
    owner = world.account(repo.owner)
    minimal = {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": repo.full_name.split("/")[1],
        "full_name": repo.full_name,
        "owner": user_json(server, api, owner) if owner else None,
        "private": repo.private,
        "visibility": repo.visibility,
        "html_url": f"{server}/{repo.full_name}",
        "description": repo.description,
        "fork": False,
        "url": f"{api}/repos/{repo.full_name}",
    }
    if not full:
        return minimal
    spdx = repo.license_spdx
    return {
        **minimal,
        "default_branch": repo.default_branch,
        "homepage": repo.homepage,
        "topics": list(repo.topics),
        "archived": False,
        "disabled": False,
        "license": {
            "key": spdx.lower(), "name": LICENSES.get(spdx, spdx), "spdx_id": spdx,
            "url": f"{api}/licenses/{spdx.lower()}", "node_id": f"L_{spdx}",
        } if spdx else None,
    }


def package_paths(server: str, api: str, account: Account, name: str) -> tuple[str, str]:
    kind = "orgs" if account.type == "Organization" else "users"
    return (f"{api}/{kind}/{account.login}/packages/container/{quote(name, safe='')}",
            f"{server}/{kind}/{account.login}/packages/container")


def package_json(server: str, api: str, world: World, package: Package,
                 version_count: int) -> dict[str, Any]:
    account = world.account(package.owner)
    assert account is not None
    url, html = package_paths(server, api, account, package.name)
    body = {
        "id": package.id,
        "name": package.name,
        "package_type": "container",
        "owner": user_json(server, api, account),
        "version_count": version_count,
        "visibility": package.visibility,
        "url": url,
        "created_at": package.created_at,
        "updated_at": package.updated_at,
        "html_url": f"{html}/package/{package.name}",
    }
    repo = world.repo(package.repository) if package.repository else None
    if repo:
        body["repository"] = repo_json(server, api, world, repo, full=False)
    return body


def version_json(server: str, api: str, world: World, package: Package,
                 version: dict[str, Any]) -> dict[str, Any]:
    account = world.account(package.owner)
    assert account is not None
    url, html = package_paths(server, api, account, package.name)
    return {
        "id": version["id"],
        "name": version["digest"],
        "url": f"{url}/versions/{version['id']}",
        "package_html_url": f"{html}/package/{package.name}",
        "html_url": f"{html}/{package.name}/{version['id']}",
        "created_at": version["created_at"],
        "updated_at": version["created_at"],
        "metadata": {"package_type": "container", "container": {"tags": version["tags"]}},
    }


# ---------------------------------------------------------------- HTTP


PACKAGE = r"/(?P<kind>orgs|users)/(?P<owner>[^/]+)/packages/container/(?P<name>[^/]+)"
ROUTES = [
    ("GET", r"/token", "token"),
    ("GET", r"/user", "user"),
    ("GET", r"/meta", "meta"),
    ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)", "repo"),
    ("GET", PACKAGE, "package"),
    ("DELETE", PACKAGE, "delete_package"),
    ("GET", PACKAGE + r"/versions", "versions"),
    ("DELETE", PACKAGE + r"/versions/(?P<vid>\d+)", "delete_version"),
    ("POST", r"/_testbed/reset", "admin_reset"),
    ("POST", r"/_testbed/users", "admin_users"),
    ("POST", r"/_testbed/repos", "admin_repos"),
    ("POST", r"/_testbed/tokens", "admin_tokens"),
    ("POST", r"/_testbed/packages", "admin_packages"),
    ("GET", r"/_testbed/state", "admin_state"),
    ("POST", r"/_testbed/registry-events", "admin_events"),
]


def _whose(kind: str) -> str:
    """Route kind -> the words GitHub's docs anchors use."""
    return "an-organization" if kind == "orgs" else "a-user"


class ApiError(Exception):
    """A GitHub error response: status + {"message", "documentation_url", "status"}."""

    def __init__(self, status: int, message: str, doc: str = DOCS) -> None:
        super().__init__(message)
        self.status, self.message, self.doc = status, message, doc


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for docker and the registry's notifier
    standin: Standin

    # -- plumbing

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request; the request line carries no token (they travel in headers)."""
        sys.stderr.write(f"standin {self.address_string()} {format % args}\n")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path.removeprefix("/api/v3") or "/"
        self.query = parse_qs(split.query)
        self.api = f"http://{self.headers.get('Host', '')}" + (
            "/api/v3" if split.path.startswith("/api/v3") else "")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        for verb, pattern, handler in ROUTES:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                try:
                    self.body = json.loads(raw) if raw else {}
                    getattr(self, f"h_{handler}")(**match.groupdict())
                except ApiError as err:
                    self._send(err.status, {"message": err.message,
                                            "documentation_url": err.doc,
                                            "status": str(err.status)})
                except (ValueError, KeyError) as err:
                    self._send(400, {"message": f"Problems parsing request: {err}",
                                     "documentation_url": DOCS, "status": "400"})
                except requests.RequestException as err:
                    self._send(502, {"message": f"registry unreachable: {err}",
                                     "documentation_url": DOCS, "status": "502"})
                except Exception:
                    # A bug here must show as a 500 in the test, with the trace in our log.
                    traceback.print_exc()
                    self._send(500, {"message": "stand-in error (see its log)",
                                     "documentation_url": DOCS, "status": "500"})
                return
        self._send(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _api_token(self, doc: str, required: bool = True) -> Token | None:
        """`Authorization: Bearer|token X`; unknown tokens are 401 Bad credentials."""
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not value:
            if required:
                raise ApiError(401, "Requires authentication", doc)
            return None
        with self.standin.lock:
            token = self.standin.tokens.get(value.strip())
        if token is None:
            raise ApiError(401, "Bad credentials", DOCS)
        return token

    def _urls(self) -> tuple[str, str]:
        return self.standin.server_url, self.api

    # -- registry token endpoint

    def h_token(self) -> None:
        token = None
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                _, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                secret = ""
            with self.standin.lock:
                token = self.standin.tokens.get(secret)
            if token is None:
                self._send(401, {"errors": [{"code": "UNAUTHORIZED",
                                             "message": "authentication required"}]})
                return
        service = (self.query.get("service") or [""])[0]
        result = self.standin.issue(token, self.query.get("scope", []), service)
        if result.denied:
            self._send(403, {"errors": [{"code": "DENIED", "message": result.denied}]})
            return
        audience = self.standin.registry_for(service)[1].service
        jwt_token = self.standin.signer.mint(token.sub if token else "", result.access, audience)
        self._send(200, {"token": jwt_token, "access_token": jwt_token,
                         "expires_in": TOKEN_TTL, "issued_at": now_iso()})

    # -- REST

    def h_user(self) -> None:
        token = self._api_token(DOC_USER)
        assert token is not None
        if token.kind == "github_token":
            raise ApiError(403, BY_INTEGRATION, DOC_USER)
        with self.standin.lock:
            account = self.standin.world.account(token.owner)
            assert account is not None
            body = {**user_json(*self._urls(), account), "name": account.login,
                    "company": None, "blog": "", "location": None, "email": None,
                    "bio": None, "created_at": "2020-01-01T00:00:00Z"}
        self._send(200, body, {"X-OAuth-Scopes": ", ".join(sorted(token.scopes)),
                               "X-Accepted-OAuth-Scopes": ""})

    def h_meta(self) -> None:
        body: dict[str, Any] = {"verifiable_password_authentication": False}
        if urlsplit(self.standin.server_url).hostname != "github.com":
            body["installed_version"] = "3.14.0"  # GHES answers with its version
        self._send(200, body)

    def h_repo(self, owner: str, repo: str) -> None:
        token = self._api_token(DOC_REPO, required=False)
        with self.standin.lock:
            found = self.standin.world.repo(f"{owner}/{repo}")
            if found is None or not can_see_repo(self.standin.world, token, found):
                raise ApiError(404, "Not Found", DOC_REPO)
            body = repo_json(*self._urls(), self.standin.world, found, full=True)
        self._send(200, body)

    def _package(self, kind: str, owner: str, name: str, scope_message: str,
                 doc: str, delete: bool = False) -> tuple[Token, Package]:
        """Auth + lookup shared by the Packages endpoints; GitHub's 401/403/404 order."""
        token = self._api_token(doc)
        assert token is not None
        if token.kind == "github_token":
            raise ApiError(403, BY_INTEGRATION, doc)
        needed = ("read:packages", "delete:packages") if delete else ("read:packages",)
        if not all(token.has_scope(s) for s in needed):
            raise ApiError(403, scope_message, doc)
        name = unquote(name).lower()
        self.standin.reconcile(registry_name(owner, name))
        world = self.standin.world
        with self.standin.lock:
            account = world.account(owner)
            package = world.package(owner, name)
            wanted = "Organization" if kind == "orgs" else "User"
            if (account is None or account.type != wanted or package is None
                    or not can_pull(world, token, owner, name)):
                raise ApiError(404, "Package not found.", doc)
            if delete and not can_admin_package(world, token, package):
                raise ApiError(403, "Must have admin rights to Package.", doc)
        return token, package

    def h_package(self, kind: str, owner: str, name: str) -> None:
        doc = f"{DOC_PACKAGES}#get-a-package-for-{_whose(kind)}"
        _, package = self._package(kind, owner, name,
                                   "You need at least read:packages scope to get a package.", doc)
        count = len(self.standin.versions(package))
        with self.standin.lock:
            body = package_json(*self._urls(), self.standin.world, package, count)
        self._send(200, body)

    def h_versions(self, kind: str, owner: str, name: str) -> None:
        doc = f"{DOC_PACKAGES}#list-package-versions-for-a-package-owned-by-{_whose(kind)}"
        _, package = self._package(
            kind, owner, name,
            "You need at least read:packages scope to get a package's versions.", doc)
        versions = self.standin.versions(package)
        per_page = min(max(int(self.query.get("per_page", ["30"])[0]), 1), 100)
        page = max(int(self.query.get("page", ["1"])[0]), 1)
        chunk = versions[(page - 1) * per_page: page * per_page]
        with self.standin.lock:
            body = [version_json(*self._urls(), self.standin.world, package, v) for v in chunk]
        last = max(1, -(-len(versions) // per_page))
        self._send(200, body, {"Link": self._link(page, last, per_page)} if last > 1 else {})

    def _link(self, page: int, last: int, per_page: int) -> str:
        """GitHub's pagination header: next/last, then prev/first once past page 1."""
        base = self.api + urlsplit(self.path).path.removeprefix("/api/v3")
        rels = []
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels += [("prev", page - 1), ("first", 1)]
        return ", ".join(
            f'<{base}?{urlencode({"per_page": per_page, "page": n})}>; rel="{rel}"'
            for rel, n in rels)

    def h_delete_version(self, kind: str, owner: str, name: str, vid: str) -> None:
        doc = f"{DOC_PACKAGES}#delete-package-version-for-{_whose(kind)}"
        message = ("You need at least delete:packages and read:packages scopes "
                   "to delete a package version.")
        _, package = self._package(kind, owner, name, message, doc, delete=True)
        versions = self.standin.versions(package)
        version = next((v for v in versions if v["id"] == int(vid)), None)
        if version is None:
            raise ApiError(404, "Package version not found.", doc)
        if version["tags"] and sum(1 for v in versions if v["tags"]) == 1:
            # GHCR keeps at least one tagged version; untagged ones delete even when last.
            raise ApiError(400, LAST_TAGGED, doc)
        if not self.standin.delete_version(package, version["digest"]):
            raise ApiError(500, "The registry refused to delete the manifest.", doc)
        self._send(204)

    def h_delete_package(self, kind: str, owner: str, name: str) -> None:
        doc = f"{DOC_PACKAGES}#delete-a-package-for-{_whose(kind)}"
        message = "You need at least delete:packages and read:packages scopes to delete a package."
        _, package = self._package(kind, owner, name, message, doc, delete=True)
        for version in self.standin.versions(package):
            self.standin.delete_version(package, version["digest"])
        with self.standin.lock:
            self.standin.world.packages.pop((package.owner.lower(), package.name), None)
        self._send(204)

    # -- admin API for the tests (no auth: loopback only)

    def h_admin_reset(self) -> None:
        self.standin.reset()
        self._send(200, {"ok": True})

    def h_admin_users(self) -> None:
        account = self.standin.add_user(self.body)
        self._send(201, {"login": account.login, "type": account.type, "id": account.id})

    def h_admin_repos(self) -> None:
        repo = self.standin.add_repo(self.body)
        with self.standin.lock:
            body = repo_json(*self._urls(), self.standin.world, repo, full=True)
        self._send(201, body)

    def h_admin_tokens(self) -> None:
        self._send(201, {"token": self.standin.add_token(self.body)})

    def h_admin_packages(self) -> None:
        package = self.standin.add_package(self.body)
        self._send(201, {"owner": package.owner, "name": package.name, "id": package.id})

    def h_admin_state(self) -> None:
        self._send(200, self.standin.state())

    def h_admin_events(self) -> None:
        self.standin.on_events(self.body.get("events", []))
        self._send(200, {"ok": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping keep-alive connections is normal; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(host: str, port: int, standin: Standin) -> Server:
    """A server bound to host:port (0 picks a free port) answering for `standin`."""
    return Server((host, port), type("BoundHandler", (Handler,), {"standin": standin}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--server-url", default="https://github.com")
    parser.add_argument(
        "--extra-registry", action="append", default=[], metavar="SERVICE=FLAVOUR=URL",
        help="a further registry (GHES test host): its token service, container|docker, URL",
    )
    args = parser.parse_args(argv)
    signer = Signer(args.key, args.cert, args.issuer, args.service)
    extra = {}
    for spec in args.extra_registry:
        service, flavour, url = spec.split("=", 2)
        if flavour not in (CONTAINER, DOCKER):
            parser.error(f"--extra-registry {spec}: flavour must be {CONTAINER} or {DOCKER}")
        extra[service] = (flavour, Registry(url, signer, service))
    standin = Standin(signer, Registry(args.registry, signer), args.server_url, extra)
    make_server(args.host, args.port, standin).serve_forever()


if __name__ == "__main__":
    main()
