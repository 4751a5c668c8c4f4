"""The test bed itself, driven with the plain docker SDK, the docker CLI and HTTP only.

If these fail, product integration tests cannot be trusted: the bed must push, pull,
deny and build the way GitHub Packages and a Docker Engine do (DESIGN.md §2, §5).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.testbed import bed as bed_module
from tests.testbed import engines, fixtures, images

pytestmark = pytest.mark.integration


def auth(token: str) -> dict[str, str]:
    # GitHub ignores the username for token logins; per-call credentials, no config.json.
    return {"username": "testbed", "password": token}


def push(client: Any, image: str, tag: str, token: str) -> list[dict[str, Any]]:
    return list(client.api.push(image, tag, auth_config=auth(token), stream=True, decode=True))


def pull(client: Any, image: str, tag: str, token: str) -> list[dict[str, Any]]:
    return list(client.api.pull(image, tag, auth_config=auth(token), stream=True, decode=True))


def errors(chunks: list[dict[str, Any]]) -> list[str]:
    """Failures arrive inside the HTTP-200 stream (DESIGN.md §3): nothing raises."""
    return [
        str(c.get("error") or c["errorDetail"].get("message"))
        for c in chunks
        if "error" in c or "errorDetail" in c
    ]


def pushed_digest(chunks: list[dict[str, Any]]) -> str:
    digest = fixtures.pushed_digest(chunks)
    assert digest, f"no digest in push stream: {chunks[-3:]}"
    return digest


@pytest.fixture
def octo(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin", "mona": "member"})
    github.org("other-org", members={"hubot": "admin"})
    github.repo("octo-org/app")
    return github


@pytest.fixture
def tagged(docker_client: Any, testbed: bed_module.Bed, registry: str, unique_name: Any) -> Any:
    """tagged(path) -> f"{registry}/{path}", tagged locally from the busybox base image."""
    made: list[str] = []

    def make(path: str, tag: str = "1") -> str:
        ref = f"{registry}/{path}"
        docker_client.api.tag(testbed.busybox_image, ref, tag)
        made.append(f"{ref}:{tag}")
        return ref

    yield make
    for ref in made:
        docker_client.api.remove_image(ref, noprune=True)


def test_github_token_pushes_and_links_package(
    docker_client, octo, tagged, registry_reader, unique_name
):
    token = octo.github_token("octo-org/app", packages="write")
    name = unique_name("hello")
    mark = registry_reader.since()

    for path in (f"octo-org/app/{name}", f"octo-org/{name}"):
        chunks = push(docker_client, tagged(path), "1", token)
        assert errors(chunks) == []
        assert registry_reader.tags(path) == ["1"]
        assert registry_reader.manifest_digest(path, "1") == pushed_digest(chunks)

    log = registry_reader.access_log(since=mark)
    for path in (f"octo-org/app/{name}", f"octo-org/{name}"):
        assert log.manifests[path] == 1
        assert log.uploads[path] + log.mounts[path] >= 1, log.requests

    pat = octo.pat("mona", ["read:packages"])
    for package in (name, f"app/{name}"):
        r = octo.api(f"/orgs/octo-org/packages/container/{quote(package, safe='')}", pat)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["name"] == package
        assert body["package_type"] == "container"
        assert body["repository"]["full_name"] == "octo-org/app"


def test_github_token_denied_outside_its_repository(docker_client, octo, tagged, unique_name):
    token = octo.github_token("octo-org/app", packages="write")

    chunks = push(docker_client, tagged(f"other-org/{unique_name('hello')}"), "1", token)

    denied = errors(chunks)
    assert denied, chunks
    assert "installation not allowed to Create organization package" in denied[-1]
    r = octo.api("/user", token)
    assert r.status_code == 403
    assert r.json()["message"] == "Resource not accessible by integration"


def test_pat_scopes_and_fork_pull_requests(docker_client, octo, tagged, unique_name):
    octo.repo("octo-org/app", private=True)  # a private package: pulls need a credential
    name = unique_name("hello")
    image = tagged(f"octo-org/{name}")
    assert errors(push(docker_client, image, "1", octo.github_token("octo-org/app"))) == []

    read_pat = octo.pat("mona", ["read:packages"])
    assert errors(pull(docker_client, image, "1", read_pat)) == []
    assert "permission_denied" in " ".join(errors(push(docker_client, image, "1", read_pat)))

    write_pat = octo.pat("mona", ["write:packages"])
    assert errors(push(docker_client, tagged(f"octo-org/{name}-pat"), "1", write_pat)) == []
    denied = errors(push(docker_client, tagged(f"other-org/{name}"), "1", write_pat))
    assert "permission_denied: write_package" in " ".join(denied)

    fork = octo.github_token("octo-org/app", packages="read", fork_pr=True)
    assert errors(pull(docker_client, image, "1", fork)) == []
    assert errors(push(docker_client, image, "1", fork)), "a fork PR's token must not push"


@pytest.fixture
def context(tmp_path: Path, unique_name: Any) -> Path:
    # A nonce busts the build cache so pip really reaches the index through the bed's
    # network (and the proxy CA baked into testbed/python:3).
    (tmp_path / "Dockerfile").write_text(
        "FROM testbed/python:3\n"
        f"RUN echo {unique_name('nonce')} > /nonce\n"
        "RUN python3 -m venv /v && /v/bin/pip install --no-cache-dir --quiet PyYAML\n"
        'CMD ["/v/bin/python", "-c", "import yaml; print(yaml.__version__)"]\n'
    )
    return tmp_path


def test_engine_is_the_version_and_image_store_it_claims(engine):
    info = engine.client.info()
    assert info["ServerVersion"].startswith(engine.version + "."), info["ServerVersion"]
    store = [value for _, value in info.get("DriverStatus") or []]
    if engine.containerd_store:
        assert info["Driver"] == "overlayfs", info["Driver"]
        assert "io.containerd.snapshotter.v1" in store, info["DriverStatus"]
    else:
        assert info["Driver"] == "overlay2", info["Driver"]
        assert "io.containerd.snapshotter.v1" not in store, info["DriverStatus"]
    if engine.version != "20.10":  # 20.10 runs the containerd it manages itself
        socket = info["Containerd"]["Address"]
        assert socket.startswith(str(engine.bed.state_dir)), socket


def test_engines_do_not_share_a_subnet_or_a_socket(whole_testbed):
    hosts, subnets = set(), set()
    for info in whole_testbed.engines:
        client = bed_module.docker_client(info.docker_host)
        try:
            bridge = client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Subnet"]
        finally:
            client.close()
        hosts.add(info.docker_host)
        subnets.add(bridge)
    assert len(hosts) == len(subnets) == len(whole_testbed.engines), (hosts, subnets)


def test_docker_cli_and_product_use_buildx_029(testbed):
    from gh_docker_publish.edges import builders

    plugin = builders.buildx_plugin()
    assert plugin is not None and plugin.resolve() == testbed.buildx, plugin
    env = {**os.environ, "DOCKER_HOST": testbed.docker_host}
    done = subprocess.run(
        ["docker", "buildx", "version"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f" {engines.BUILDX_VERSION}." in done.stdout, done.stdout


def test_buildkit_build_with_docker_cli(testbed, docker_client, context, unique_name, tmp_path):
    tag = f"testbed-smoke/{unique_name('buildkit')}:1"
    # A docker config of its own (buildx would otherwise record this bed in the bed's
    # shared config), holding the bed's buildx plugin.
    config = tmp_path / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "cli-plugins" / "docker-buildx").symlink_to(testbed.buildx)
    env = {**os.environ, "DOCKER_HOST": testbed.docker_host, "DOCKER_CONFIG": str(config)}
    done = subprocess.run(
        ["docker", "buildx", "build", "--load", "--progress", "plain", "-t", tag, str(context)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    try:
        out = docker_client.containers.run(tag, remove=True)
        assert out.decode().strip()  # PyYAML's version
    finally:
        docker_client.images.remove(tag)


def test_classic_build_with_docker_sdk(docker_client, context, unique_name):
    tag = f"testbed-smoke/{unique_name('classic')}:1"
    chunks = list(docker_client.api.build(path=str(context), tag=tag, rm=True, decode=True))
    assert errors(chunks) == [], json.dumps(chunks[-5:])
    try:
        assert docker_client.containers.run(tag, remove=True).decode().strip()
    finally:
        docker_client.images.remove(tag)


def test_up_is_idempotent_and_reuses_cached_images(testbed):
    before = json.loads((testbed.state_dir / "state.json").read_text())

    again = bed_module.up()

    assert again.on(testbed.engine) == testbed
    after = json.loads((testbed.state_dir / "state.json").read_text())
    assert {k: after.get(k) for k in before if k.endswith("_pid")} == {
        k: v for k, v in before.items() if k.endswith("_pid")
    }, "a running bed must not be restarted"
    actions = [k for k in again.timings if k.startswith("image ")]
    assert actions and all(k.endswith("(present)") for k in actions), again.timings
    assert list(testbed.cache_dir.glob("testbed-python-3-*.tar")), "base image not cached"


def test_a_daemon_without_the_base_image_gets_it_from_the_cache(testbed, docker_client):
    """What a second `make test` on a new daemon does: load the saved tarball, never
    rebuild (debootstrap takes a minute; a load takes seconds)."""
    before = docker_client.images.get(testbed.busybox_image).id
    docker_client.images.remove(testbed.busybox_image, noprune=True)  # untag: "new daemon"
    reports = {r.name: r for r in images.ensure_all(docker_client, dict(os.environ))}
    assert reports[testbed.busybox_image].action == "loaded", reports
    assert docker_client.images.get(testbed.busybox_image).id == before


def test_each_engines_buildkit_at_tcp_builds_into_that_engine(
    testbed, engine, docker_client, unique_name, tmp_path
):
    """buildx's remote driver reaches the engine's embedded BuildKit through the bed's
    proxy (tests/testbed/buildkit.py), plain and with mutual TLS: what it builds lands in
    that engine's image store (the containerd store's ``image`` exporter, the classic
    store's ``moby`` one: the only exporters that name an image there). The name is given
    in full: BuildKit's ``image`` exporter stores it as given, the Engine API looks up
    ``docker.io/…``."""
    endpoints, files = testbed.buildkit_endpoints(), testbed.buildkit_tls
    config = tmp_path / "docker-config"
    config.mkdir()
    env = {**os.environ, "DOCKER_CONFIG": str(config), "BUILDX_CONFIG": str(tmp_path / "bx")}
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY Dockerfile /{unique_name('f')}\n")
    tls = f"cacert={files.ca},cert={files.client_cert},key={files.client_key}"
    exporter = "image" if engine.containerd_store else "moby"
    for how, address, opts in (("plain", endpoints.plain, []),
                               ("tls", endpoints.tls, ["--driver-opt", tls])):
        name = unique_name(how)
        tag = f"docker.io/testbed-smoke/{name}:1"
        for argv in (
            ["create", "--name", name, *opts, "--driver", "remote", address],
            ["--builder", name, "build", "--progress", "plain",
             "--output", f"type={exporter},name={tag}", str(ctx)],
        ):
            done = subprocess.run([str(testbed.buildx), *argv], env=env, capture_output=True,
                                  text=True, timeout=300, check=False)
            assert done.returncode == 0, (how, done.stderr[-3000:])
        try:
            assert docker_client.images.get(tag).id.startswith("sha256:"), how
        finally:
            docker_client.images.remove(tag)


def test_up_starts_a_buildkit_proxy_that_was_killed_again(whole_testbed):
    from tests.testbed import buildkit, procs

    root = whole_testbed.state_dir
    before = json.loads((root / "state.json").read_text())["buildkit_pid"]
    assert procs.stop(before, str(root / "buildkit"))

    again = bed_module.up()

    after = json.loads((root / "state.json").read_text())["buildkit_pid"]
    assert after != before and procs.pid_alive(after)
    assert again.buildkit == whole_testbed.buildkit  # the same addresses, recorded
    for endpoints in again.buildkit:
        assert buildkit.answers(int(endpoints.plain.rpartition(":")[2])), endpoints
