"""Stream parsing against streams recorded from a real dockerd 20.10.

The fixtures in fixtures/docker/*.jsonl are the decoded chunks docker-py yielded
(one JSON object per line), recorded against distribution 2.8 registries: plain,
htpasswd (bad password), read-only, stopped, and one answering 503.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.progress import ProgressReporter
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import engine
from gh_docker_publish.edges.builders import LineLog, buildkit_only_features, read_build_stream
from gh_docker_publish.errors import BuildError, InputError, PushError

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
PUSHED_DIGEST = "sha256:0c019ba7fae7fc5253adcb5974a5735964968a5d759c8ece6cf1341ac648a0b6"


def chunks(name: str) -> list[dict[str, Any]]:
    with open(FIXTURES / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- push streams -------------------------------------------------------------------------


def test_push_ok_digest_from_aux_and_progress_per_layer() -> None:
    log, clock = RecordingLog(), FakeClock()
    progress = ProgressReporter(log, "push", clock=clock)
    pushed = engine.read_push_stream(chunks("push_ok.jsonl"), "1", progress, log)
    assert pushed == engine.PushedTag(PUSHED_DIGEST, 946)
    progress.flush()
    # One "Preparing" and one "Pushed" per layer; the Pushing ticks inside 5 s are held.
    layer_lines = [ln for ln in log.lines if ln[:12].isalnum() and ": " in ln]
    assert len(layer_lines) == 6
    assert sum(ln.endswith(": Pushed") for ln in layer_lines) == 3
    assert log.lines[0] == "The push refers to repository [127.0.0.1:45001/rec/app]"
    clock.now += 2.5
    assert progress.summary().startswith("3 layers (0 already present), 5.0 MB uploaded in 2.5 s")


def test_push_second_tag_layers_exist() -> None:
    log = RecordingLog()
    progress = ProgressReporter(log, "push", clock=FakeClock())
    pushed = engine.read_push_stream(chunks("push_exists.jsonl"), "2", progress, log)
    assert pushed.digest == PUSHED_DIGEST
    assert "0 B uploaded" in progress.summary()
    assert "(3 already present)" in progress.summary()


def test_push_digest_from_status_line_when_no_aux() -> None:
    # The containerd image store sends only the status line (moby image_push.go).
    stream = [c for c in chunks("push_ok.jsonl") if "aux" not in c]
    assert engine.read_push_stream(stream, "1").digest == PUSHED_DIGEST


def test_push_status_line_of_another_tag_is_ignored() -> None:
    stream = [c for c in chunks("push_ok.jsonl") if "aux" not in c]
    with pytest.raises(engine.StreamError, match="without reporting a digest"):
        engine.read_push_stream(stream, "other")


@pytest.mark.parametrize(
    ("fixture", "text", "transient"),
    [
        ("push_missing_tag.jsonl", "tag does not exist: 127.0.0.1:45001/rec/app:nope", False),
        ("push_unauthorized.jsonl", "unauthorized: authentication required", False),
        ("push_readonly.jsonl", "error parsing HTTP 405 response body", False),
        ("push_refused.jsonl", "connect: connection refused", True),
        ("push_5xx.jsonl", "received unexpected HTTP status: 503 Service Unavailable", True),
    ],
)
def test_push_error_chunk_fails(fixture: str, text: str, transient: bool) -> None:
    with pytest.raises(engine.StreamError) as info:
        engine.read_push_stream(chunks(fixture), "1")
    assert text in info.value.message
    assert engine.is_transient(info.value.message) is transient


def test_daemon_retry_ticks_are_rate_limited() -> None:
    # push_5xx: the daemon's own 5 retries send "Retrying in N seconds" every second.
    log, clock = RecordingLog(), FakeClock()
    progress = ProgressReporter(log, "push", clock=clock, interval=5.0)
    stream = chunks("push_5xx.jsonl")
    for chunk in stream[:-1]:
        progress.feed(chunk)
        clock.now += 1.0 / 3  # three layers tick once a second between them
    per_layer = {lid: sum(ln.startswith(lid) for ln in log.lines) for lid in ("acfd582288cb",)}
    seconds = len(stream) / 3
    assert per_layer["acfd582288cb"] <= seconds / 5 + 2
    assert len(log.lines) < len(stream) / 3


def test_stream_error_prefers_error_detail() -> None:
    assert engine.stream_error({"error": "old", "errorDetail": {"message": "new"}}) == "new"
    assert engine.stream_error({"error": "only"}) == "only"
    assert engine.stream_error({"status": "Pushed", "id": "x"}) is None


# --- pull ---------------------------------------------------------------------------------


def test_pull_digest_and_summary() -> None:
    log, clock = RecordingLog(), FakeClock()
    progress = ProgressReporter(log, "pull", clock=clock)
    digest = engine.read_pull_stream(chunks("pull_ok.jsonl"), progress, log)
    assert digest == PUSHED_DIGEST
    assert "Status: Downloaded newer image for 127.0.0.1:45001/rec/app:1" in log.lines
    assert progress.summary().startswith("3 layers (1 already present), 3.0 MB downloaded")


# --- build streams ------------------------------------------------------------------------


def test_build_image_id_from_aux_not_from_log_text() -> None:
    log = RecordingLog()
    image_id = read_build_stream(chunks("build_ok.jsonl"), LineLog(log))
    assert image_id == "sha256:fe320166a49bcfc8d4f194664d0b1e099a9cfa1d726d370a92323360c0006345"
    # The RUN step echoes a decoy digest; it is logged, never taken as the ID.
    assert any("sha256:0123456789abcdef" in ln for ln in log.lines)
    assert "Step 1/4 : FROM tb/busybox:1" in log.lines


def test_build_error_chunk_raises_with_tail() -> None:
    log = RecordingLog()
    with pytest.raises(BuildError) as info:
        read_build_stream(chunks("build_error.jsonl"), LineLog(log))
    assert "returned a non-zero code: 3" in info.value.message
    assert info.value.log_tail[-1] == "about to fail"
    assert len(info.value.log_tail) <= 20


def test_build_error_before_any_step_output() -> None:
    with pytest.raises(BuildError, match=r"registry-1\.docker\.io"):
        read_build_stream(chunks("build_error_from.jsonl"), LineLog(RecordingLog()))


def test_build_tail_keeps_last_20_lines() -> None:
    stream: list[Mapping[str, Any]] = [{"stream": f"line {i}\n"} for i in range(50)]
    stream.append({"errorDetail": {"message": "boom"}, "error": "boom"})
    with pytest.raises(BuildError) as info:
        read_build_stream(stream, LineLog(RecordingLog()))
    assert info.value.log_tail == [f"line {i}" for i in range(30, 50)]


# --- progress rate limiting ---------------------------------------------------------------


def test_progress_one_line_per_layer_per_interval() -> None:
    log, clock = RecordingLog(), FakeClock()
    progress = ProgressReporter(log, "push", clock=clock, interval=5.0)
    progress.feed({"id": "aaaaaaaaaaaa", "status": "Preparing", "progressDetail": {}})
    for i in range(1, 201):  # 20 s of ticks every 0.1 s
        clock.now += 0.1
        progress.feed(
            {
                "id": "aaaaaaaaaaaa",
                "status": "Pushing",
                "progressDetail": {"current": i * 1000, "total": 200_000},
            }
        )
    progress.feed({"id": "aaaaaaaaaaaa", "status": "Pushed", "progressDetail": {}})
    assert log.lines[0] == "aaaaaaaaaaaa: Preparing"
    pushing = [ln for ln in log.lines if "Pushing" in ln]
    assert 3 <= len(pushing) <= 4  # 20 s / 5 s
    assert pushing[0] == "aaaaaaaaaaaa: Pushing 25% of 200.0 kB"
    assert log.lines[-1] == "aaaaaaaaaaaa: Pushed"


def test_progress_flush_prints_held_state_once() -> None:
    log, clock = RecordingLog(), FakeClock()
    progress = ProgressReporter(log, "pull", clock=clock, interval=5.0)
    progress.feed({"id": "bbbbbbbbbbbb", "status": "Pulling fs layer", "progressDetail": {}})
    progress.feed({"id": "bbbbbbbbbbbb", "status": "Waiting", "progressDetail": {}})
    assert log.lines == ["bbbbbbbbbbbb: Pulling fs layer"]
    progress.flush()
    progress.flush()
    assert log.lines == ["bbbbbbbbbbbb: Pulling fs layer", "bbbbbbbbbbbb: Waiting"]


# --- push orchestration over recorded streams ---------------------------------------------


class ReplayClient:
    """Replays recorded daemon streams per tag: the only way to drive 3 retries of a
    503 quickly (the real daemon spends ~50 s per attempt on its own layer retries)."""

    def __init__(self, by_tag: Mapping[str, list[str]]) -> None:
        self.by_tag = {k: list(v) for k, v in by_tag.items()}
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def push(
        self, repo: str, tag: str, stream: bool, decode: bool, auth_config: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        assert stream and decode and tag
        self.calls.append((repo, tag, auth_config))
        name = self.by_tag[tag].pop(0)
        for chunk in chunks(name):
            if "aux" in chunk:
                chunk["aux"]["Tag"] = tag
            if chunk.get("status", "").startswith("1: digest"):
                chunk["status"] = chunk["status"].replace("1:", f"{tag}:", 1)
            yield chunk


AUTH = Credential("r", "u", Secret("p"), "token", "test")
NO_SLEEP = engine.RetryPolicy(attempts=3, initial=0.01, maximum=0.01, sleep=lambda _: None)


def test_push_all_refs_one_digest() -> None:
    client = ReplayClient({"1": ["push_ok.jsonl"], "2": ["push_exists.jsonl"]})
    log = RecordingLog()
    out = engine.push(client, ["h/a:1", "h/a:2"], AUTH, log, retry=NO_SLEEP)
    assert out.digest == PUSHED_DIGEST
    assert out.digests == {"h/a:1": PUSHED_DIGEST, "h/a:2": PUSHED_DIGEST}
    assert [c[:2] for c in client.calls] == [("h/a", "1"), ("h/a", "2")]


def test_a_later_tag_failing_does_not_stop_the_others() -> None:
    client = ReplayClient(
        {"1": ["push_ok.jsonl"], "2": ["push_readonly.jsonl"], "3": ["push_ok.jsonl"]}
    )
    with pytest.raises(PushError) as info:
        engine.push(client, ["h/a:1", "h/a:2", "h/a:3"], AUTH, RecordingLog(), retry=NO_SLEEP)
    err = info.value
    assert err.landed == ["h/a:1", "h/a:3"]  # exactly what the registry accepted
    assert err.not_landed == ["h/a:2"]
    assert err.digests == {"h/a:1": PUSHED_DIGEST, "h/a:3": PUSHED_DIGEST}
    assert "405" in err.registry_message and "h/a:2" in str(err)
    assert len(client.calls) == 3


def test_the_first_tag_failing_stops_before_the_others() -> None:
    """The first push carries the blobs: if it fails, the others would fail the same way."""
    client = ReplayClient({"1": ["push_readonly.jsonl"], "2": ["push_ok.jsonl"]})
    with pytest.raises(PushError) as info:
        engine.push(client, ["h/a:1", "h/a:2"], AUTH, RecordingLog(), retry=NO_SLEEP)
    assert info.value.landed == []
    assert info.value.not_landed == ["h/a:1", "h/a:2"]
    assert [tag for _, tag, _ in client.calls] == ["1"]


def test_push_retries_transient_then_succeeds() -> None:
    client = ReplayClient({"1": ["push_5xx.jsonl", "push_ok.jsonl"]})
    log = RecordingLog()
    out = engine.push(client, ["h/a:1"], AUTH, log, retry=NO_SLEEP)
    assert out.digest == PUSHED_DIGEST
    assert len(log.warnings) == 1 and "retry 1/2" in log.warnings[0]


def test_push_gives_up_after_attempts() -> None:
    client = ReplayClient({"1": ["push_refused.jsonl"] * 3})
    log = RecordingLog()
    with pytest.raises(PushError) as info:
        engine.push(client, ["h/a:1"], AUTH, log, retry=NO_SLEEP)
    assert info.value.not_landed == ["h/a:1"]
    assert len(client.calls) == 3 and len(log.warnings) == 2


def test_push_never_retries_denied() -> None:
    client = ReplayClient({"1": ["push_unauthorized.jsonl"] * 3})
    with pytest.raises(PushError) as info:
        engine.push(
            client,
            ["h/a:1"],
            AUTH,
            RecordingLog(),
            retry=NO_SLEEP,
            hint_fields={"token_source": "GITHUB_TOKEN"},
        )
    assert len(client.calls) == 1
    assert "GITHUB_TOKEN" in info.value.hint


def test_push_refuses_bare_repository_before_any_call() -> None:
    client = ReplayClient({})
    with pytest.raises(InputError, match="no tag"):
        engine.push(client, ["h/a:1", "h/a"], AUTH, RecordingLog())
    with pytest.raises(InputError, match="digest"):
        engine.split_ref("h/a@" + PUSHED_DIGEST)
    assert client.calls == []
    assert engine.split_ref("localhost:5000/a/b:v1.0") == ("localhost:5000/a/b", "v1.0")


# --- denial hints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expect"),
    [
        ("denied: permission_denied: write_package", "permissions: packages: write"),
        ("denied: installation not allowed to Write organization package", "o/r with the Write"),
        ("denied: requested access to the resource is denied", "Manage Actions access"),
        ("unauthorized: authentication required", "ghcr.io did not accept"),
        ("received unexpected HTTP status: 503 Service Unavailable", ""),
    ],
)
def test_denial_hints(message: str, expect: str) -> None:
    hint = engine.denial_hint(message, {"repository": "o/r", "registry": "ghcr.io"})
    assert (expect in hint) if expect else hint == ""
    assert "{" not in hint
    if expect:
        assert not engine.is_transient(message)


# --- BuildKit-only syntax -----------------------------------------------------------------


def test_buildkit_only_features() -> None:
    text = (
        "# syntax=docker/dockerfile:1.6\n"
        "FROM tb/busybox:1\n"
        "RUN --mount=type=cache,target=/root/.cache \\\n"
        "    echo hi\n"
        "COPY --chmod=755 a /a\n"
        "RUN <<EOF\n"
        "echo hi\n"
        "EOF\n"
        "RUN echo '<<<' && cat <<< 'x'\n"
        "COPY --from=build /x /y\n"
    )
    assert buildkit_only_features(text) == [
        "line 1: '# syntax=' parser directive",
        "line 3: RUN --mount",
        "line 5: COPY --chmod",
        "line 6: heredoc (<<EOF) in RUN",
    ]
    assert buildkit_only_features("FROM a\n# syntax=late is a comment\nRUN x\n") == []


def test_an_unexpected_error_in_one_push_still_reports_what_landed() -> None:
    class BrokenForTwo(ReplayClient):
        def push(self, repo: str, tag: str, stream: bool, decode: bool,
                 auth_config: dict[str, str]) -> Iterator[dict[str, Any]]:
            if tag == "2":
                raise AttributeError("'list' object has no attribute 'get'")
            return super().push(repo, tag, stream, decode, auth_config)

    client = BrokenForTwo({"1": ["push_ok.jsonl"], "3": ["push_ok.jsonl"]})
    with pytest.raises(PushError) as info:
        engine.push(client, ["h/a:1", "h/a:2", "h/a:3"], AUTH, RecordingLog(), retry=NO_SLEEP)
    assert info.value.landed == ["h/a:1", "h/a:3"]
    assert info.value.not_landed == ["h/a:2"]
    assert "AttributeError" in str(info.value)
