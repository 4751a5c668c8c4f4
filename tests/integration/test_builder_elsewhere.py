"""``builder`` pointing at BuildKit elsewhere (issue 13), run in-process like the action's
main step against the bed: another Docker Engine (a second dockerd of the bed) builds and
pushes, the original daemon never sees the image; a builder container is attached through
buildx's docker-container driver in a throw-away BUILDX_CONFIG.

The remote driver (``builder: tcp://…``) builds and pushes for real in
tests/integration/test_remote_buildkit.py, against an engine's embedded BuildKit behind the
bed's proxy (no standalone buildkitd can be had here); its ``buildx create`` options are
checked here, its probe against real sockets in tests/reliability/test_builder_endpoints.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.builder_location import BuilderLocation, BuilderTLS
from gh_docker_publish.edges import builders
from gh_docker_publish.edges.buildx_builders import ElsewhereBuilder, Reached
from gh_docker_publish.errors import BuildError
from tests.integration.conftest import Outcome
from tests.integration.test_ghes import built_anything, ghes_env, run_action  # noqa: F401
from tests.integration.test_platforms import _index
from tests.testbed import bed as bed_module
from tests.testbed import daemon


@pytest.fixture(scope="module")
def other_engine(testbed: Any) -> Any:
    """The bed's second dockerd and a client for it."""
    engine = daemon.ensure_other(bed_module.state_dir(), dict(os.environ))
    client = bed_module.docker_client(engine.daemon.host)
    yield engine.daemon.host, client
    client.close()


def _image_ids(client: Any, ref: str) -> list[str]:
    return [img["Id"] for img in getattr(client, "api", client).images(name=ref)]



def assert_two_platform_index(out: Outcome, registry_reader: Any, image: str) -> None:
    """The run pushed one index under `v1` (amd64 + arm64), its digest the `digest` output."""
    assert out.code == 0, out.log
    digest, index = _index(registry_reader, f"octo-org/{image}", "v1")
    assert out.outputs["digest"] == digest
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == [
        "amd64", "arm64"]

def test_another_engine_builds_and_pushes_and_our_daemon_never_has_it(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    docker_client: Any, other_engine: Any, scratch_context: Path, registry: str,
) -> None:
    host, other = other_engine
    image = unique_name("elsewhere")
    out = publish(
        {"image": image, "tags": "v1\nlatest", "builder": host,
         "context": str(scratch_context)},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert f"docker buildx on the Docker Engine at {host}" in out.log
    assert "which pushes the image itself" in out.log
    landed = registry_reader.manifest_digest(f"octo-org/{image}", "v1")
    assert out.outputs["digest"] == landed
    assert registry_reader.manifest_digest(f"octo-org/{image}", "latest") == landed
    report_json = json.loads(out.outputs["report"])
    assert sorted(report_json["landed"]) == sorted(
        f"{registry}/octo-org/{image}:{tag}" for tag in ("v1", "latest")
    )
    ref = f"{registry}/octo-org/{image}:v1"
    # The other engine built it (its docker driver keeps what it pushed); ours did not.
    assert _image_ids(other, ref) == [out.outputs["imageid"]]
    assert _image_ids(docker_client, ref) == []


def test_another_engine_publishes_two_platforms_as_one_index(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    other_engine: Any, scratch_context: Path,
) -> None:
    """Its classic store cannot push an index: one platform at a time there, then the
    index (flows/platforms.py), as on this daemon. COPY only: nothing runs on arm64."""
    host, _ = other_engine
    image = unique_name("elsewhere")
    out = publish(
        {"image": image, "tags": "v1", "builder": host, "context": str(scratch_context),
         "platforms": "linux/amd64,linux/arm64"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert_two_platform_index(out, registry_reader, image)


def test_another_engine_loads_into_itself_when_the_run_does_not_push(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, docker_client: Any,
    other_engine: Any, scratch_context: Path, registry: str,
) -> None:
    host, other = other_engine
    image = unique_name("elsewhere")
    out = publish(
        {"image": image, "tags": "v1", "builder": host, "push": "false",
         "context": str(scratch_context)},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    ref = f"{registry}/octo-org/{image}:v1"
    assert _image_ids(other, ref) == [out.outputs["imageid"]]
    assert _image_ids(docker_client, ref) == []
    assert out.outputs["digest"] == ""


def test_another_engine_with_the_classic_store_refuses_an_exported_cache_first(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, other_engine: Any,
    scratch_context: Path, registry: str,
) -> None:
    host, _ = other_engine
    out = publish(
        {"image": unique_name("elsewhere"), "tags": "v1", "builder": host,
         "context": str(scratch_context),
         "cache-to": f"type=registry,ref={registry}/octo-org/cache:x"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code != 0
    assert f"the Docker Engine at {host} with the classic image store" in out.log
    assert "#1 [internal]" not in out.log  # refused before the context was sent


def test_no_buildx_state_outlives_the_run_or_lands_in_home(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, other_engine: Any,
    scratch_context: Path, tmp_path: Path,
) -> None:
    host, _ = other_engine
    home = tmp_path / "home"
    home.mkdir()
    out = publish(
        {"image": unique_name("elsewhere"), "tags": "v1", "builder": host,
         "context": str(scratch_context)},
        github_token=octo.github_token("octo-org/app"),
        extra_env={"HOME": str(home), "XDG_CACHE_HOME": ""},
    )
    assert out.code == 0, out.log
    assert list(home.rglob("*")) == []  # no ~/.docker, no ~/.cache/…/buildx
    config_dir = Path(out.state["docker_config"])  # the private DOCKER_CONFIG buildx had
    assert config_dir.name.startswith("ghdp-docker-") and not config_dir.exists()


def home_with_another_login(tmp_path: Path, registry: str) -> Path:
    """A HOME whose docker config holds a user's own login, which must not reach buildx."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {registry: {"auth": "dXNlcjpub3QtdGhlLWNob3Nlbi10b2tlbg=="}}}))
    return home


def record_what_buildx_is_given(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Filled as our builder is set up: the private config's mode, buildx's env, its
    config.json, our builder's buildx instance file (if ``buildx create`` wrote one)."""
    seen: list[dict[str, Any]] = []
    original = ElsewhereBuilder.point_buildx

    def record(self: ElsewhereBuilder, config_dir: Path, env: dict[str, str]) -> None:
        original(self, config_dir, env)
        instance = config_dir / "buildx" / "instances" / self.builder_name
        seen.append({"mode": config_dir.stat().st_mode & 0o777, "env": dict(env),
                     "config": json.loads((config_dir / "config.json").read_text()),
                     "instance": json.loads(instance.read_text()) if instance.exists() else
                     None, "dir": config_dir})

    monkeypatch.setattr(ElsewhereBuilder, "point_buildx", record)
    return seen


def assert_only_the_chosen_token(given: dict[str, Any], registry: str, token: str) -> None:
    """buildx had a private 0700 DOCKER_CONFIG (and BUILDX_CONFIG in it) with one login:
    the chosen token; the directory went with the run."""
    assert given["mode"] == 0o700
    assert given["env"]["DOCKER_CONFIG"] == str(given["dir"])
    assert given["env"]["BUILDX_CONFIG"] == str(given["dir"] / "buildx")
    auths = given["config"]["auths"]
    assert list(auths) == [registry]
    assert base64.b64decode(auths[registry]["auth"]).decode().endswith(f":{token}")
    assert not given["dir"].exists()


def test_buildx_sees_only_the_chosen_token_in_a_private_config(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, other_engine: Any,
    scratch_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: str,
) -> None:
    """What buildx is given (recorded as our builder is set up), with a user's own
    docker config in HOME holding another login that must not reach it."""
    home = home_with_another_login(tmp_path, registry)
    seen = record_what_buildx_is_given(monkeypatch)
    token = octo.github_token("octo-org/app")
    host, _ = other_engine
    out = publish(
        {"image": unique_name("elsewhere"), "tags": "v1", "builder": host,
         "context": str(scratch_context)},
        github_token=token, extra_env={"HOME": str(home)},
    )
    assert out.code == 0, out.log
    assert len(seen) == 1
    assert_only_the_chosen_token(seen[0], registry, token)


def _container_builder(testbed: Any, name: str) -> ElsewhereBuilder:
    return ElsewhereBuilder(
        BuilderLocation("docker-container", name),
        Reached(container=f"buildx_buildkit_{name}0", detail=name),
        testbed.docker_host, buildx=builders.buildx_plugin() or "docker-buildx",
    )


def test_a_builder_container_is_attached_by_name_not_created_and_never_removed(
    testbed: Any, docker_client: Any, tmp_path: Path, unique_name: Any,
) -> None:
    """setup-buildx-action's container, stood in for by busybox under buildx's container
    name: buildx (docker-container driver) attaches to it and, finding no BuildKit inside,
    fails with our error naming the input; it never creates, pulls or removes a container."""
    name = unique_name("setupbuildx")
    container = f"buildx_buildkit_{name}0"
    api = docker_client.api
    api.create_container(
        os.environ.get("TESTBED_BUSYBOX_IMAGE", "testbed/busybox:latest"),
        command=["sleep", "300"], name=container,
    )
    api.start(container)
    try:
        builder = _container_builder(testbed, name)
        assert builder.create_argv()[1:] == [
            "create", "--name", builder.builder_name, "--driver", "docker-container",
            "--node", f"{name}0",
        ]
        env = dict(os.environ, DOCKER_HOST=testbed.docker_host)
        config_dir = tmp_path / "cfg"
        config_dir.mkdir()
        with pytest.raises(BuildError) as failure:
            builder.point_buildx(config_dir, env)
        assert env["BUILDX_CONFIG"] == str(config_dir / "buildx")
        message = str(failure.value)
        assert message.startswith(f"Input 'builder': the builder container {name}")
        assert f"({name}0)" in message  # buildx reached our container's node
        assert "moby/buildkit" not in message  # no image pulled for a new one
        names = [c["Names"][0].lstrip("/") for c in api.containers(all=True)]
        assert [n for n in names if name in n] == [container]
        assert api.inspect_container(container)["State"]["Running"]
    finally:
        api.remove_container(container, force=True)


def test_a_remote_builder_is_created_with_the_tls_options_in_a_throwaway_config(
    testbed: Any, tmp_path: Path,
) -> None:
    """The remote driver's builder as buildx records it, every TLS option (nothing listens
    at this address: test_remote_buildkit.py builds through a real one)."""
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    tls = BuilderTLS(str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem"),
                     str(tmp_path / "key.pem"), "buildkitd.example")
    builder = ElsewhereBuilder(
        BuilderLocation("remote", "tcp://127.0.0.1:1234", tls), Reached(detail="x"),
        testbed.docker_host, buildx=builders.buildx_plugin() or "docker-buildx",
    )
    env = dict(os.environ)
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    builder.point_buildx(config_dir, env)
    instance = json.loads((config_dir / "buildx" / "instances" / builder.builder_name)
                          .read_text())
    assert instance["Driver"] == "remote"
    node = instance["Nodes"][0]
    assert node["Endpoint"] == "tcp://127.0.0.1:1234"
    assert node["DriverOpts"] == {
        "cacert": tls.cacert, "cert": tls.cert, "key": tls.key,
        "servername": "buildkitd.example",
    }
    request = builders.BuildRequest(context=tmp_path, tags=("r/x:v1",))
    pushing = builder.pusher().argv(request, tmp_path / "m.json")
    assert pushing[1:4] == ["--builder", builder.builder_name, "build"]
    assert "--push" in pushing and "--load" not in pushing
    loading = builder.argv(request, tmp_path)
    assert loading[1:3] == ["--builder", builder.builder_name] and "--load" in loading


def test_another_engine_is_a_docker_context_in_the_private_config(
    testbed: Any, tmp_path: Path, tls_engine: daemon.OtherEngine,
) -> None:
    """buildx lists our context as a docker-driver builder reaching that engine over TLS."""
    files = tls_engine.tls
    location = BuilderLocation("docker", tls_engine.tcp, BuilderTLS(
        str(files.ca), str(files.client_cert), str(files.client_key)))
    builder = ElsewhereBuilder(location, Reached(detail="x"), testbed.docker_host,
                               buildx=builders.buildx_plugin() or "docker-buildx")
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    env = dict(os.environ, DOCKER_CONFIG=str(config_dir))
    builder.point_buildx(config_dir, env)
    inspect = subprocess.run(
        [builder.create_argv()[0] if builder.create_argv() else str(builders.buildx_plugin()),
         "inspect", builder.builder_name], env=env, capture_output=True, text=True,
        check=False, timeout=60,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert "docker" in inspect.stdout and "running" in inspect.stdout
    assert env["DOCKER_CONTEXT"] == builder.builder_name and "DOCKER_HOST" not in env
    tls_dir = next((config_dir / "contexts" / "tls").iterdir()) / "docker"
    assert sorted(p.name for p in tls_dir.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert (tls_dir / "key.pem").is_symlink()


# --- GitHub's Docker registry (GHES without subdomain isolation) --------------------------


def test_the_docker_registry_takes_a_direct_push_by_tag(
    octo: Any, unique_name: Any,
    ghes_env: Callable[..., dict[str, str]],  # noqa: F811 - test_ghes's fixture, imported
    other_engine: Any, scratch_context: Path, testbed: Any,
) -> None:
    host, other = other_engine
    image = unique_name("elsewhere")
    out = run_action(ghes_env("ghe.test", {
        "image": image, "tags": "v1", "subdomain-isolation": "false", "builder": host,
        "context": str(scratch_context),
    }, octo.github_token("octo-org/app")))
    assert out.code == 0, out.log
    assert "pushes the image itself" in out.log
    ref = f"ghe.test:{testbed.ghes_port}/octo-org/app/{image}:v1"
    assert out.outputs["tags"] == ref
    assert _image_ids(other, ref) == [out.outputs["imageid"]]
    assert out.outputs["digest"].startswith("sha256:")


@pytest.mark.parametrize(
    ("inputs", "named"),
    [({"provenance": "true"}, "provenance"),
     ({"platforms": "linux/amd64,linux/arm64"}, "platforms")],
)
def test_the_docker_registry_refuses_what_buildkit_pushes_by_digest(
    octo: Any, unique_name: Any,
    ghes_env: Callable[..., dict[str, str]],  # noqa: F811 - test_ghes's fixture, imported
    other_engine: Any, scratch_context: Path, inputs: dict[str, str], named: str,
) -> None:
    host, _ = other_engine
    out = run_action(ghes_env("ghe.test", {
        "image": unique_name("elsewhere"), "tags": "v1", "subdomain-isolation": "false",
        "builder": host, "context": str(scratch_context), **inputs,
    }, octo.github_token("octo-org/app")))
    assert out.code != 0
    assert f"Input '{named}'" in out.log
    assert "GitHub's Docker registry" in out.log and "cannot be pushed by digest" in out.log
    assert not built_anything(out.log)


# --- another Docker Engine over TCP with TLS (dockerd --tlsverify) ------------------------


@pytest.fixture(scope="module")
def tls_engine(testbed: Any) -> daemon.OtherEngine:
    return daemon.ensure_other(bed_module.state_dir(), dict(os.environ))


def _tls_inputs(files: Any, **override: str) -> dict[str, str]:
    inputs = {"builder-cacert": str(files.ca), "builder-cert": str(files.client_cert),
              "builder-key": str(files.client_key)}
    inputs.update(override)
    return {k: v for k, v in inputs.items() if v}


def test_another_engine_over_tls_builds_and_pushes(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    tls_engine: daemon.OtherEngine, scratch_context: Path, other_engine: Any, docker_client: Any,
    registry: str,
) -> None:
    _, other = other_engine
    image = unique_name("elsewhere")
    out = publish(
        {"image": image, "tags": "v1", "builder": f"docker+{tls_engine.tcp}",
         "context": str(scratch_context), **_tls_inputs(tls_engine.tls)},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert f"the Docker Engine at {tls_engine.tcp} over TLS" in out.log
    assert out.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")
    ref = f"{registry}/octo-org/{image}:v1"
    assert _image_ids(other, ref) == [out.outputs["imageid"]]
    assert _image_ids(docker_client, ref) == []


@pytest.mark.parametrize(
    ("case", "override", "reason"),
    [
        ("no TLS files", {"builder-cacert": "", "builder-cert": "", "builder-key": ""},
         "does not answer as a Docker Engine"),
        ("a CA that did not sign it", {"builder-cacert": "SIGNING"}, "refused TLS"),
        ("no client certificate", {"builder-cert": "", "builder-key": ""}, "refused TLS"),
    ],
)
def test_another_engine_refusing_tls_is_named_before_the_build(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, testbed: Any,
    tls_engine: daemon.OtherEngine, scratch_context: Path, case: str,
    override: dict[str, str], reason: str, registry_reader: Any,
) -> None:
    override = {k: str(testbed.signing_cert) if v == "SIGNING" else v
                for k, v in override.items()}
    image = unique_name("elsewhere")
    since = registry_reader.since()
    out = publish(
        {"image": image, "tags": "v1", "builder": f"docker+{tls_engine.tcp}",
         "context": str(scratch_context), **_tls_inputs(tls_engine.tls, **override)},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code != 0, case
    assert f"Input 'builder': the Docker Engine at {tls_engine.tcp}" in out.log
    assert reason in out.log, case
    assert not built_anything(out.log)
    assert not [path for _, path, _ in registry_reader.access_log(since).requests
                if image in path]
