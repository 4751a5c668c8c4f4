"""Pytest fixtures for the test bed (registered from ``tests/conftest.py``).

The bed
-------
``make testbed`` (``python -m tests.testbed up --print-env``) starts, idempotently:

- three Docker Engines (``tests/testbed/engines.py``), each a dockerd of its own with its
  state under ``$TESTBED_DIR/docker*`` (stopped by ``make testbed-down``):
  ``e20-classic`` (bookworm's dockerd 20.10, classic image store; ``DOCKER_HOST``, if set,
  stands in for it and is never stopped), ``e28-classic`` and ``e28-containerd`` (sid's
  dockerd 28.5 with a containerd 2.1 of its own, classic and containerd image store);
  ``TESTBED_ENGINES=e28-classic,...`` limits the bed and the tests to some of them;
- sid's buildx 0.29 as the CLI plugin in ``$TESTBED_DIR/docker-config/cli-plugins``: the
  session sets ``DOCKER_CONFIG`` there, so ``docker buildx`` and the product's
  ``builders.buildx_plugin()`` use it (a test with its own ``DOCKER_CONFIG`` links
  ``testbed.buildx`` into its ``cli-plugins``);
- Debian's ``docker-registry`` (distribution 2.8) on ``127.0.0.1:<port>`` with token auth;
- each engine's embedded BuildKit at ``tcp://127.0.0.1:<port>``, plain and with TLS
  (client certificate required), through a proxy to the engine's ``/grpc`` endpoint
  (``tests/testbed/buildkit.py``; not a standalone buildkitd): ``testbed.buildkit_endpoints()``
  and ``testbed.buildkit_tls`` (CA, client certificate and key) for ``builder: tcp://…``;
- the GitHub stand-in (``tests/testbed/standin.py``): the registry's token endpoint, the
  REST endpoints the product calls, and an admin API to set up users, repos and tokens;
- base images ``testbed/busybox:latest`` (tiny) and ``testbed/python:3`` (Debian trixie,
  Python 3.13, pip works inside ``docker build`` here), cached as tarballs in
  ``$TESTBED_CACHE`` (first run ~1 min for debootstrap, later runs seconds) and loaded
  into every engine.

``TESTBED_DIR`` (default ``/var/tmp/gh-docker-publish-testbed``) holds state and logs;
``$TESTBED_DIR/env`` lists the addresses (``set -a; . $TESTBED_DIR/env`` in a shell gives
``DOCKER_HOST`` and ``TESTBED_*``). Install the packages once with
``sudo scripts/install-testbed-deps.sh``.

Engines
-------
Every test that uses the bed (``engine``, ``testbed``, ``docker_client`` or any fixture
built on them) runs once per engine, with the engine's name in its id
(``test_push[e28-containerd]``); unit tests, which use none, run once. A test that needs
what an engine lacks says so and still runs on the others::

    @pytest.mark.engines(exclude={"e20-classic": "multi-platform --load needs the "
                                                 "containerd image store"})
    def test_two_platforms(engine, publish): ...

The excluded case shows as skipped with ``not on e20-classic: <reason>``; an unknown engine
name or a missing reason is a usage error. Tests of a shared session fixture on one engine
see that engine only: session fixtures depending on ``engine`` are made once per engine.

Fixtures
--------
``engine`` (session, one per engine)
    ``Engine``: ``name`` (``e20-classic`` | ``e28-classic`` | ``e28-containerd``),
    ``docker_host``, ``version`` (``"20.10"`` | ``"28.5"``, what ``ServerVersion`` starts
    with), ``containerd_store``, ``client`` (``docker.DockerClient``, ``version="auto"``)
    and ``bed`` (the ``testbed`` below).
``testbed`` (session, one per engine)
    The ``Bed`` on this engine: ``docker_host`` (the engine's), ``engine`` (its name),
    ``registry`` (``host:port``), ``github_url``, ``state_dir``, ``registry_log``,
    ``busybox_image``, ``python_image``, ``buildx``, ``docker_config``; ``engines`` lists
    all running engines and ``on(name)`` gives the bed on another. Any test using it is
    marked ``integration``. A bed that cannot come up **fails** the test (never skips), in
    CI and locally alike, with the reason and the log tail.
``whole_testbed`` (session)
    The ``Bed`` with all engines, from ``up()`` (about a second when the bed already runs);
    for tests about the bed itself. Not parametrized.
``docker_client`` (session, one per engine)
    ``engine.client``.
``registry`` (session)
    The registry's ``host:port``; images are ``f"{registry}/owner/name:tag"``.
``github`` (function)
    Resets the stand-in, then sets up a scenario::

        github.org("octo-org", members={"octocat": "admin"})
        github.repo("octo-org/app", private=False)
        token = github.github_token("octo-org/app", packages="write", fork_pr=False)
        pat = github.pat("octocat", ["read:packages"])
        github.api("/orgs/octo-org/packages/container/hello", pat).json()

    Push and pull with per-call credentials, never ``~/.docker/config.json``::

        docker_client.api.push(ref, tag, auth_config={"username": "x", "password": token},
                               stream=True, decode=True)

``registry_reader`` (function)
    What the registry really holds: ``tags(name, token=None)``,
    ``manifest_digest(name, tag, token=None)``. Without a token it signs its own
    pull token with the stand-in's key (an admin path that bypasses GitHub's rules);
    with one it goes through the stand-in's ``/token`` like the daemon does.
    ``mark = registry_reader.since()`` then ``registry_reader.access_log(since=mark)``
    counts this test's requests from the registry's access log: ``uploads`` (completed
    blob uploads), ``mounts`` (cross-repository mounts), ``manifests`` (manifest PUTs),
    each a ``Counter`` keyed by repository name.
``unique_name`` (function)
    ``unique_name("hello")`` -> ``"hello-3f9a1c2b"``: names that do not collide with
    other tests or earlier runs (the registry keeps its data between runs).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from . import bed as bed_module
from . import engines as engines_module
from . import registry as registry_module
from .procs import TestbedError

HTTP_TIMEOUT = 30
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
HINT = (
    "The test bed is not usable. Run `make testbed` (first time: "
    "`sudo scripts/install-testbed-deps.sh`) and read its output. "
    "Integration tests fail rather than skip without the bed."
)


def unique_name(prefix: str = "img") -> str:
    return f"{prefix.lower()}-{uuid.uuid4().hex[:8]}"


_PUSHED = re.compile(r"^\S+: digest: (?P<digest>sha256:[0-9a-f]{64}) size: \d+$")


def pushed_digest(chunks: Iterable[Mapping[str, Any]]) -> str | None:
    """The manifest digest a docker push stream reports: its ``aux`` record (classic
    store), else the closing ``TAG: digest: sha256:... size: N`` status, the only one the
    containerd store sends."""
    found = None
    for chunk in chunks:
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            return str(aux["Digest"])
        if m := _PUSHED.match(str(chunk.get("status", ""))):
            found = m["digest"]
    return found


# --- pytest hooks ------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engines(exclude={name: reason}): the engines this test cannot run on, and why "
        "(it runs on the others; tests/testbed/fixtures.py)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the bed (``engine``, hence ``testbed``, ``docker_client``, ...)
    runs once per engine of ``engines.selected()``, with the engine's name as its id."""
    if "engine" not in metafunc.fixturenames or not _uses_bed_engine(metafunc):
        return
    _excluded(metafunc.definition)  # typos fail at collection
    params = [pytest.param(spec.name, id=spec.name) for spec in engines_module.selected()]
    metafunc.parametrize("engine", params, indirect=True, scope="session")


def _uses_bed_engine(metafunc: pytest.Metafunc) -> bool:
    """False when ``engine`` is the test's own argument (its own parametrize, or a fixture
    of that name defined closer to it), not the bed's fixture below."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "engine" in names:
            return False
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("engine") or ()
    return not defs or getattr(defs[-1].func, "__module__", None) == __name__


def _excluded(definition: pytest.Item) -> dict[str, str]:
    exclude: dict[str, str] = {}
    for mark in definition.iter_markers("engines"):
        exclude.update(mark.kwargs.get("exclude") or {})
    unknown = set(exclude) - set(engines_module.BY_NAME)
    if unknown:
        raise pytest.UsageError(
            f"{definition.nodeid}: engines(exclude=...) names unknown engines {sorted(unknown)}"
            f"; known: {', '.join(engines_module.BY_NAME)}"
        )
    if not all(isinstance(why, str) and why.strip() for why in exclude.values()):
        raise pytest.UsageError(f"{definition.nodeid}: every excluded engine needs a reason")
    return exclude


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks bed tests ``integration``; skips a case on an engine its ``engines`` marker
    (on the test, or on one of its ``pytest.param`` cases) excludes, with the reason."""
    for item in items:
        if "testbed" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("engine") if callspec is not None else None
        if isinstance(name, str) and (reason := _excluded(item).get(name)):
            item.add_marker(pytest.mark.skip(reason=f"not on {name}: {reason}"))


# --- fixtures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """One engine of the bed, as a test sees it (the ``engine`` fixture)."""

    name: str  # e20-classic | e28-classic | e28-containerd
    docker_host: str
    version: str  # "20.10" | "28.5": what ServerVersion starts with
    containerd_store: bool
    client: Any  # docker.DockerClient on it, version="auto"
    bed: bed_module.Bed  # the bed with this engine's docker_host


@pytest.fixture(scope="session")
def whole_testbed() -> bed_module.Bed:
    """The bed with all its engines (``up()``); ``testbed`` is it on one engine."""
    try:
        bed = bed_module.up()
    except Exception as exc:  # any failure to come up fails the tests; never skip
        reason = str(exc) if isinstance(exc, TestbedError) else f"{type(exc).__name__}: {exc}"
    else:
        # buildx 0.29 for the docker CLI and the product alike (tests/testbed/engines.py):
        # both look in $DOCKER_CONFIG/cli-plugins first.
        if bed.docker_config is not None:
            os.environ["DOCKER_CONFIG"] = str(bed.docker_config)
        return bed
    ci = " (CI=true)" if os.environ.get("CI", "").lower() == "true" else ""
    pytest.fail(f"{HINT}{ci}\n{reason}", pytrace=False)


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest, whole_testbed: bed_module.Bed) -> Iterator[Engine]:
    """The engine this test runs on (the parameter ``pytest_generate_tests`` gives)."""
    bed = whole_testbed.on(request.param)
    info = bed.engine_info()
    client = bed_module.docker_client(info.docker_host)
    yield Engine(info.name, info.docker_host, info.version, info.containerd_store, client, bed)
    client.close()


@pytest.fixture(scope="session")
def testbed(engine: Engine) -> bed_module.Bed:
    return engine.bed


@pytest.fixture(scope="session")
def docker_client(engine: Engine) -> Any:
    return engine.client


@pytest.fixture(scope="session")
def registry(testbed: bed_module.Bed) -> str:
    return testbed.registry


@pytest.fixture
def github(testbed: bed_module.Bed) -> GitHub:
    scenario = GitHub(testbed.github_url)
    scenario.reset()
    return scenario


@pytest.fixture
def registry_reader(testbed: bed_module.Bed) -> RegistryReader:
    return RegistryReader(testbed)


@pytest.fixture(name="unique_name")
def unique_name_fixture() -> Callable[[str], str]:
    return unique_name


# --- the GitHub scenario helper ----------------------------------------------------------


@dataclass
class GitHub:
    """Sets up users, orgs, repos, tokens and packages in the stand-in; calls its REST API."""

    url: str
    session: requests.Session = field(default_factory=requests.Session)

    def _admin(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        r = self.session.post(f"{self.url}/_testbed/{path}", json=body or {}, timeout=HTTP_TIMEOUT)
        if r.status_code >= 400:
            raise AssertionError(f"stand-in admin {path} {body!r}: {r.status_code} {r.text}")
        return r.json()

    def reset(self) -> None:
        self._admin("reset")

    def user(self, login: str, **extra: Any) -> dict[str, Any]:
        return dict(self._admin("users", {"login": login, "type": "User", **extra}))

    def org(
        self, login: str, members: Mapping[str, str] | Iterable[str] = (), **extra: Any
    ) -> dict[str, Any]:
        """``members``: logins (role ``member``) or ``{login: "admin"|"member"}``."""
        roles = dict(members) if isinstance(members, Mapping) else dict.fromkeys(members, "member")
        body = {
            "login": login,
            "type": "Organization",
            "members": [{"login": m, "role": r} for m, r in roles.items()],
            **extra,
        }
        return dict(self._admin("users", body))

    def repo(
        self,
        full_name: str,
        private: bool = False,
        default_branch: str = "main",
        description: str = "",
        license_spdx: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "full_name": full_name,
            "private": private,
            "default_branch": default_branch,
            "description": description,
            "license_spdx": license_spdx,
            **extra,
        }
        return dict(self._admin("repos", body))

    def github_token(
        self,
        repository: str,
        packages: str = "write",
        fork_pr: bool = False,
        value: str | None = None,
    ) -> str:
        """``value`` mints a token with that exact text (e.g. one holding a space)."""
        body = {
            "kind": "github_token",
            "repository": repository,
            "packages": packages,
            "fork_pr": fork_pr,
            "value": value,
        }
        return str(self._admin("tokens", body)["token"])

    def pat(self, owner: str, scopes: Iterable[str] | str, value: str | None = None) -> str:
        if isinstance(scopes, str):
            scopes = scopes.replace(",", " ").split()
        body = {"kind": "pat", "owner": owner, "scopes": list(scopes), "value": value}
        return str(self._admin("tokens", body)["token"])

    def package(
        self,
        owner: str,
        name: str,
        repository: str | None = None,
        visibility: str = "public",
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "owner": owner,
            "name": name,
            "repository": repository,
            "visibility": visibility,
            **extra,
        }
        return dict(self._admin("packages", body))

    def state(self) -> dict[str, Any]:
        r = self.session.get(f"{self.url}/_testbed/state", timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return dict(r.json())

    def api(
        self, path: str, token: str | None = None, method: str = "GET", **kwargs: Any
    ) -> requests.Response:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            **kwargs.pop("headers", {}),
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(
            method, f"{self.url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs
        )


# --- the registry, read directly ---------------------------------------------------------

# Combined log format, as distribution's access log writes it.
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/v2/\S*) HTTP/[\d.]+" (?P<status>\d{3}) ')
_BLOB_PUT = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/[^/?]+")
_BLOB_POST = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?(?:\?(?P<query>.*))?$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/?]+)")


@dataclass
class AccessLog:
    uploads: Counter[str] = field(default_factory=Counter)  # completed blob uploads (PUT 201)
    mounts: Counter[str] = field(default_factory=Counter)  # cross-repo mounts (POST 201)
    manifests: Counter[str] = field(default_factory=Counter)  # manifest PUTs (201)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status


def parse_access_log(text: str) -> AccessLog:
    out = AccessLog()
    for line in text.splitlines():
        m = _ACCESS.search(line)
        if not m:
            continue
        method, path, status = m["method"], m["path"], int(m["status"])
        out.requests.append((method, path, status))
        if status != 201:
            continue
        if method == "PUT" and (b := _BLOB_PUT.match(path)):
            out.uploads[b["name"]] += 1
        elif method == "POST" and (b := _BLOB_POST.match(path)) and "mount=" in (b["query"] or ""):
            out.mounts[b["name"]] += 1
        elif method == "PUT" and (mm := _MANIFEST.match(path)):
            out.manifests[mm["name"]] += 1
    return out


class RegistryReader:
    def __init__(self, testbed: bed_module.Bed) -> None:
        self.bed = testbed
        self.base = f"http://{testbed.registry}"
        self.session = requests.Session()

    # -- tokens

    def admin_token(self, name: str) -> str:
        """A pull token signed with the stand-in's key: sees everything, whoever owns it."""
        from .standin import Signer

        signer = Signer(
            str(self.bed.signing_key),
            str(self.bed.signing_cert),
            registry_module.ISSUER,
            registry_module.SERVICE,
        )
        access = [{"type": "repository", "name": name, "actions": ["pull"]}]
        return signer.mint("testbed-reader", access)

    def token_for(self, name: str, token: str, actions: str = "pull") -> str:
        """Exchange a GitHub token for a registry token, the way the daemon does."""
        r = self.session.get(
            f"{self.bed.github_url}/token",
            params={
                "service": registry_module.SERVICE,
                "scope": f"repository:{name}:{actions}",
            },
            auth=("testbed", token),
            timeout=HTTP_TIMEOUT,
        )
        if r.status_code != 200:
            raise AssertionError(f"/token for {name} ({actions}): {r.status_code} {r.text}")
        return str(r.json().get("token") or r.json()["access_token"])

    def _get(self, method: str, name: str, path: str, token: str | None) -> requests.Response:
        bearer = self.token_for(name, token) if token else self.admin_token(name)
        return self.session.request(
            method,
            f"{self.base}/v2/{name}/{path}",
            headers={"Authorization": f"Bearer {bearer}", "Accept": MANIFEST_ACCEPT},
            timeout=HTTP_TIMEOUT,
        )

    # -- reads

    def tags(self, name: str, token: str | None = None) -> list[str]:
        r = self._get("GET", name, "tags/list", token)
        if r.status_code == 404:
            return []
        if r.status_code != 200:
            raise AssertionError(f"tags of {name}: {r.status_code} {r.text}")
        return sorted(r.json().get("tags") or [])

    def manifest_digest(self, name: str, tag: str, token: str | None = None) -> str | None:
        r = self._get("HEAD", name, f"manifests/{tag}", token)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise AssertionError(f"manifest {name}:{tag}: {r.status_code}")
        return r.headers.get("Docker-Content-Digest")

    # -- access log

    def since(self) -> int:
        """A marker: ``access_log(since=marker)`` counts only requests after this call."""
        try:
            return self.bed.registry_log.stat().st_size
        except FileNotFoundError:
            return 0

    def access_log(self, since: int | None = None) -> AccessLog:
        return parse_access_log(self._read_log(since or 0))

    def _read_log(self, offset: int) -> str:
        # The access log line is written just after the response is sent: wait until the
        # file stops growing (briefly) so the last request of a push is counted.
        path: Path = self.bed.registry_log
        size, deadline = -1, time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = path.stat().st_size
            if now == size:
                break
            size = now
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
