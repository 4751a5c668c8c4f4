"""The Docker daemon through the docker SDK: connect, login, tag, push, pull.

Everything here checks the JSON stream itself: the daemon answers push and pull
with HTTP 200 and reports registry failures *inside* the stream as
``error``/``errorDetail`` chunks, which docker-py does not raise on
(docker/docker-py#3161, #2226, #3277; fix PR #3321 still open). Credentials are
passed per call (``auth_config``), so nothing here writes ``~/.docker/config.json``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

import docker
import docker.errors
import requests
import urllib3.exceptions
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_incrementing,
    wait_random,
)

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.progress import Clock, Log, ProgressReporter
from gh_docker_publish.edges.registry_api import (
    DENIAL_HINTS,
    PushCheck,
    classify,
    denial_hint,
    is_transient,
)
from gh_docker_publish.errors import DaemonError, InputError, PushError, RegistryError

__all__ = [
    "DENIAL_HINTS",
    "DaemonClient",
    "PushOutcome",
    "RetryPolicy",
    "StreamError",
    "connect",
    "daemon_version",
    "denial_hint",
    "image_inspect",
    "is_transient",
    "login",
    "pull",
    "push",
    "read_push_stream",
    "split_ref",
    "stream_error",
    "tag",
    "untag",
]


class AuthConfig(TypedDict):
    """The per-call credentials docker-py sends as ``X-Registry-Auth``. Never log it; made
    from the run's ``Credential`` at the docker-py call and nowhere else."""

    username: str
    password: str
    serveraddress: str


def _auth_config(credential: Credential | None) -> AuthConfig | None:
    """None (no X-Registry-Auth) only to pull without credentials."""
    if credential is None or credential.source == "anonymous":
        return None
    return {"username": credential.username, "password": credential.secret.reveal(),
            "serveraddress": credential.registry}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient failures. The daemon already retries each layer
    5 times (5+10+15+20 s, measured 50 s against a 503-ing registry), so keep this small."""

    attempts: int = 3
    initial: float = 1.0
    maximum: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    #: ``time.monotonic()`` after which no new attempt starts (the ``deadline`` input);
    #: an attempt in flight is bounded by the client's own timeout instead.
    deadline: float | None = None
    clock: Callable[[], float] = time.monotonic

    def out_of_time(self, upcoming_sleep: float = 0.0) -> bool:
        """True when waiting ``upcoming_sleep`` would start the next attempt too late."""
        return self.deadline is not None and self.clock() + upcoming_sleep >= self.deadline


class StreamError(Exception):
    """An ``error``/``errorDetail`` chunk, or a stream that ended without its result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _retrying(policy: RetryPolicy, log: Log, what: str) -> Retrying:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            f"{what} failed ({exc}); retry {state.attempt_number}/{policy.attempts - 1} "
            f"in {delay:.1f} s"
        )

    def stop(state: RetryCallState) -> bool:
        """At most ``attempts`` attempts, and none that would start after the deadline."""
        if state.attempt_number >= policy.attempts:
            return True
        if not policy.out_of_time(state.upcoming_sleep):
            return False
        log.warning(f"{what}: the deadline leaves no time for another attempt")
        return True

    return Retrying(
        stop=stop,
        # exponential backoff plus jitter; spelled this way for tenacity 8.2 and 9.x alike
        wait=wait_exponential(multiplier=policy.initial, max=policy.maximum)
        + wait_random(0, policy.initial),
        retry=retry_if_exception(lambda e: isinstance(e, _Failure) and e.transient),
        before_sleep=before_sleep,
        sleep=policy.sleep,
        reraise=True,
    )


def _api_text(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


#: A daemon connection that dropped or timed out, before or during a streamed answer.
#: Mid-stream docker-py reads the raw urllib3 response, so a drop or a read timeout there
#: is urllib3's ProtocolError/ReadTimeoutError, not a requests error (docker-py#1070).
_CONNECTION_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)


class _Failure(Exception):
    """A daemon call's failure as the answer table classifies it (``registry_api.classify``):
    ``transient`` ones are retried, the others end the call. ``status_unknown``: a registry
    error the daemon reported without its status, which our own registry read may tell."""

    def __init__(self, message: str, *, transient: bool, status_unknown: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status_unknown = status_unknown


def _classified(text: str, status: int | None = None,
                registry_status: int | None = None) -> _Failure:
    """``text`` as the answer table classifies it; a registry status the text does not
    state (implied by a registry error code, or met by our own read) is added to it."""
    verdict = classify(text, status, registry_status=registry_status)
    known = verdict.registry_status
    if known is not None and not re.search(rf"\b{known}\b", text):
        text = f"{text} (registry status {known})"
    return _Failure(text, transient=verdict.transient, status_unknown=verdict.status_unknown)


def _failure(exc: Exception) -> _Failure:
    """The one error factory for every daemon answer (login, push, pull alike): an error
    chunk in the stream, an HTTP error before it, or a dropped/timed-out connection."""
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, docker.errors.APIError):
        return _classified(_api_text(exc), exc.status_code)
    if isinstance(exc, StreamError):
        return _classified(exc.message)
    # a connection error: the outcome is unknown, another attempt may tell
    return _Failure(f"connection to the Docker daemon failed: {exc}", transient=True)


_DAEMON_ERRORS = (docker.errors.APIError, StreamError, *_CONNECTION_ERRORS)


# --- daemon -------------------------------------------------------------------------------


class DaemonClient(docker.APIClient):  # type: ignore[misc]
    """docker-py's low-level client that asks the daemon's ``version`` and ``info`` once.

    A run reads them for the API version, the builder choice, the image store, the
    platforms a RUN can execute and the engine warnings: five round trips before the build,
    ~0.1-0.3 s on a busy runner (issue 13 B2, B6), for answers that do not change while
    the run talks to the daemon. The version lookup of ``version="auto"`` in ``__init__``
    is the first of them. A failed call is not remembered.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._answers: dict[str, dict[str, Any]] = {}  # before __init__'s version lookup
        super().__init__(*args, **kwargs)

    def version(self, api_version: bool = True) -> dict[str, Any]:
        # The unversioned and the versioned /version give the same answer.
        if "version" not in self._answers:
            self._answers["version"] = super().version(api_version=api_version)
        return self._answers["version"]

    def info(self) -> dict[str, Any]:
        if "info" not in self._answers:
            self._answers["info"] = super().info()
        return self._answers["info"]


def connect(docker_host: str | None, timeout: float = 60.0) -> Any:
    """A low-level ``docker.APIClient`` that negotiates the API version with the daemon
    (and remembers its version and info for the run: ``DaemonClient``).

    ``version="auto"``: runners ship Docker 28/29, the test bed 20.10. ``timeout`` is
    docker-py's socket *read* timeout, which also bounds quiet phases of a streaming
    push or build (docker-py#1070), so keep it generous.
    """
    host = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        return DaemonClient(base_url=host, version="auto", timeout=timeout)
    except docker.errors.DockerException as exc:
        raise DaemonError(
            f"Cannot reach the Docker daemon at {host}: {exc}",
            hint="Start Docker, or point DOCKER_HOST (the CLI: --docker-host) at a running "
            "daemon; on a runner, the job needs a Linux runner with Docker installed.",
        ) from exc


def daemon_version(client: Any) -> dict[str, str]:
    """Engine version, API version, OS and arch, for the log and the GHES warning."""
    info = cast(dict[str, Any], client.version())
    return {
        "version": str(info.get("Version", "")),
        "api_version": str(info.get("ApiVersion", "")),
        "os": str(info.get("Os", "")),
        "arch": str(info.get("Arch", "")),
    }


def image_inspect(client: Any, ref: str) -> dict[str, Any]:
    """The daemon's record of an image; a missing image is a DaemonError naming it."""
    try:
        return cast(dict[str, Any], client.inspect_image(ref))
    except docker.errors.ImageNotFound as exc:
        raise DaemonError(f"Image {ref} does not exist in the Docker daemon.") from exc
    except docker.errors.APIError as exc:
        raise DaemonError(f"Cannot inspect image {ref}: {_api_text(exc)}") from exc


# --- login --------------------------------------------------------------------------------


def login(
    client: Any,
    credential: Credential,
    *,
    log: Log,
    retry: RetryPolicy = RetryPolicy(),
) -> None:
    """Check ``credential`` with its registry through the daemon, before push/pull use it.

    ``reauth=True`` makes the daemon contact the registry even when docker-py holds a
    cached entry for this user (docker-py#2012). ``dockercfg_path`` points at an empty
    config so docker-py neither reads the user's ``~/.docker/config.json`` nor runs a
    ``credsStore`` helper from it (docker-py#3281); the login lives in the client's
    memory only (docker-py#2719), where ``build()`` will send it as X-Registry-Config.
    The return value of ``client.login`` can echo the password, so it is never logged.
    """
    registry, username = credential.registry, credential.username

    def attempt() -> None:
        with tempfile.TemporaryDirectory(prefix="ghdp-cfg-") as tmp:
            empty = os.path.join(tmp, "config.json")
            with open(empty, "w", encoding="utf-8") as fh:
                fh.write("{}")
            try:
                client.login(
                    username=username,
                    password=credential.secret.reveal(),
                    registry=registry,
                    reauth=True,
                    dockercfg_path=empty,
                )
            except _DAEMON_ERRORS as exc:
                raise _failure(exc) from exc

    try:
        _retrying(retry, log, f"Login to {registry}")(attempt)
    except _Failure as exc:
        if exc.transient:
            raise RegistryError(
                f"Login to {registry} failed after {retry.attempts} attempts: {exc.message}",
                hint="The registry or the network failed; re-run the job.",
            ) from exc
        raise RegistryError(
            f"Login to {registry} as {username} failed: {exc.message}",
            hint=denial_hint(exc.message, {"registry": registry})
            or "Check the username and the token.",
        ) from exc
    log.info(f"Logged in to {registry} as {username}")


# --- refs and tags ------------------------------------------------------------------------

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def split_ref(ref: str) -> tuple[str, str]:
    """``host/path:tag`` -> (``host/path``, ``tag``); a ref without a tag is refused.

    A bare repository would make the daemon push *every* local tag of it (Engine API
    ``/images/{name}/push`` without ``tag``), and a digest ref cannot be pushed.
    """
    if "@" in ref:
        raise InputError("tags", f"{ref} is a digest reference; push needs a tag.")
    repo, sep, tag_ = ref.rpartition(":")
    if not sep or not repo or "/" in tag_ or not tag_:
        raise InputError("tags", f"{ref} has no tag; refusing to push every local tag of it.")
    return repo, tag_


#: Tagging on the containerd image store deletes the old name, then creates it: a run on
#: the same daemon tagging the same name between the two makes the create fail with
#: "already exists" (Engine 28.5, seen in tests/integration/test_shared_daemon.py). Tagging
#: again then moves the name; the last run to tag it has it, as on the classic store.
TAG_ATTEMPTS = 5


def tag(client: Any, image_id: str, ref: str) -> None:
    """Point ``ref`` at ``image_id`` (moving it if it pointed elsewhere)."""
    repo, tag_ = split_ref(ref)
    racing = Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, docker.errors.APIError)
                                 and "already exists" in _api_text(exc)),
        stop=stop_after_attempt(TAG_ATTEMPTS), wait=wait_incrementing(0.05, 0.05),
        reraise=True,
    )
    try:
        ok = racing(client.tag, image_id, repo, tag_, force=True)
    except docker.errors.APIError as exc:
        raise DaemonError(f"Cannot tag {image_id} as {ref}: {_api_text(exc)}") from exc
    if not ok:
        raise DaemonError(f"The daemon refused to tag {image_id} as {ref}.")


def untag(client: Any, ref: str) -> bool:
    """Remove the name ``ref`` (only the name while another points at the same image; the
    image too when it was the last). False when no image has that name (already gone)."""
    split_ref(ref)  # a name with a tag, never a bare repository or an image ID
    try:
        client.remove_image(ref, noprune=True)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise DaemonError(f"Cannot remove the name {ref}: {_api_text(exc)}") from exc
    return True


# --- stream parsing (pure) ----------------------------------------------------------------


def stream_error(chunk: Mapping[str, Any]) -> str | None:
    """The error text of a chunk, from ``errorDetail.message`` or the deprecated ``error``."""
    detail = chunk.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return str(detail["message"])
    if chunk.get("error"):
        return str(chunk["error"])
    if detail:
        return json.dumps(detail)
    return None


_STATUS_DIGEST = re.compile(
    r"^(?P<tag>\S+): digest: (?P<digest>sha256:[0-9a-f]{64}) size: (?P<size>\d+)"
)


@dataclass(frozen=True)
class PushedTag:
    """What one push stream reported for its tag."""

    digest: str
    size: int


def read_push_stream(
    chunks: Iterable[Mapping[str, Any]],
    tag_: str,
    progress: ProgressReporter | None = None,
    log: Log | None = None,
) -> PushedTag:
    """Consume a whole push stream; return its digest or raise StreamError.

    The digest comes from the ``aux`` record (graphdriver store) or the closing status
    ``<tag>: digest: sha256:... size: N`` (the containerd store sends only that), never
    from other log text.
    """
    found: PushedTag | None = None
    for chunk in _messages(chunks, progress):
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            if str(aux.get("Tag", tag_)) == tag_:
                found = PushedTag(str(aux["Digest"]), int(aux.get("Size") or 0))
            continue
        status = chunk.get("status")
        if not isinstance(status, str):
            continue
        m = _STATUS_DIGEST.match(status)
        if m and m["tag"] == tag_:
            found = found or PushedTag(m["digest"], int(m["size"]))
        elif log is not None:
            log.info(status)
    if found is None:
        raise StreamError("the push stream ended without reporting a digest")
    return found


def _messages(
    chunks: Iterable[Mapping[str, Any]], progress: ProgressReporter | None
) -> Iterator[Mapping[str, Any]]:
    """The chunks of a push or pull stream that are not per-layer progress: an error chunk
    raises StreamError (the daemon reports failure inside an HTTP 200 stream), and layer
    chunks (a status with an ``id``, aux records aside) go to ``progress``."""
    for chunk in chunks:
        err = stream_error(chunk)
        if err is not None:
            raise StreamError(err)
        if "aux" not in chunk and isinstance(chunk.get("status"), str) and "id" in chunk:
            if progress is not None:
                progress.feed(chunk)
            continue
        yield chunk


def read_pull_stream(
    chunks: Iterable[Mapping[str, Any]],
    progress: ProgressReporter | None = None,
    log: Log | None = None,
) -> str:
    """Consume a whole pull stream; return the ``Digest: sha256:...`` it reported."""
    digest = ""
    for chunk in _messages(chunks, progress):
        status = chunk.get("status")
        if not isinstance(status, str):
            continue
        if status.startswith("Digest: "):
            m = _DIGEST_RE.search(status)
            digest = m.group(0) if m else digest
        elif log is not None:
            log.info(status)
    if not digest:
        raise StreamError("the pull stream ended without reporting a digest")
    return digest


# --- push ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushOutcome:
    """All refs landed with one digest."""

    digest: str
    digests: dict[str, str]
    size: int  # the manifest's size, as the registry reported it
    uploaded: int  # layer bytes really sent; reused layers count nothing
    seconds: float


@dataclass
class _PushState:
    digests: dict[str, str] = field(default_factory=dict)
    size: int = 0
    uploaded: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def push(
    client: Any,
    refs: Sequence[str],
    credential: Credential,
    log: Log,
    *,
    retry: RetryPolicy = RetryPolicy(),
    hint_fields: Mapping[str, str] | None = None,
    clock: Clock = time.monotonic,
    progress_interval: float = 5.0,
    verify: Verify | None = None,
    parallel: int = 4,
    built: BuiltImage | None = None,
) -> PushOutcome:
    """Push each ref by its tag: the first alone, the rest ``parallel`` at a time.

    ``built``: the image this run built. Each ref is pointed at it again just before its
    push, and the manifest that landed is checked to be it: on a shared daemon another run
    can move the same local tag between our build and our push (issue 17 item 10).

    The first push uploads the blobs; every further tag of the same image only costs a
    HEAD per layer and a manifest PUT (the daemon's V2Metadata knows the digests), so
    those go concurrently. If the first fails nothing else is tried; a later failure
    does not stop the others, so what landed is exactly what the registry accepted.
    Raises PushError naming what landed (with digests) and what did not.
    """
    pairs = [(ref, *split_ref(ref)) for ref in refs]  # validate all before any I/O
    auth_config = cast(AuthConfig, _auth_config(credential))
    state = _PushState()
    started = clock()

    def push_one(ref: str, repo: str, tag_: str) -> PushedTag:
        def attempt() -> PushedTag:
            progress = ProgressReporter(log, "push", interval=progress_interval, clock=clock)
            if built is not None:
                _point_at_built(client, built, ref)  # push what we built, not what ref is now
            log.info(f"Pushing {ref}")
            try:
                chunks = client.push(
                    repo, tag=tag_, stream=True, decode=True, auth_config=dict(auth_config)
                )
                pushed = read_push_stream(chunks, tag_, progress, log)
            except _DAEMON_ERRORS as exc:
                progress.flush()
                failure = _failure(exc)
                if built is not None and "tag does not exist" in failure.message:
                    raise _moved_meanwhile(ref, built, failure.message) from exc
                # Outcome unknown (a timeout, a dropped connection, a 5xx), or a registry
                # error without its status: ask the registry first. Pushing the same tag
                # again is idempotent, so a retry is safe when it does not hold the image.
                if (failure.transient or failure.status_unknown) and verify is not None:
                    check = verify(ref)
                    if landed := _landed_anyway(check, ref, failure.message, log):
                        return landed
                    if failure.status_unknown and check.busy_status is not None:
                        # our read met the 429/5xx the daemon's report left out
                        failure = _classified(failure.message,
                                              registry_status=check.busy_status)
                raise failure from exc
            progress.flush()
            if built is not None:
                built.check(ref, pushed.digest, log)
            log.info(f"{ref}: digest {pushed.digest}; {progress.summary()}")
            with state.lock:
                state.uploaded += progress.bytes_moved()
            return pushed

        return _retrying(retry, log, f"Push of {ref}")(attempt)

    failures: dict[str, Exception] = {}
    # The first tag on this thread (a SIGTERM interrupts it directly), the rest on daemon
    # threads, which never hold up the exit of a cancelled run.
    first, rest = pairs[:1], pairs[1:]
    outcomes = [(first[0][0], _outcome(lambda: push_one(*first[0])))] if first else []
    if not any(isinstance(o, Exception) for _, o in outcomes):
        outcomes += _concurrently(lambda pair: push_one(*pair), rest, parallel)
    for ref, outcome in outcomes:
        if isinstance(outcome, _Failure):
            failures[ref] = outcome
        elif isinstance(outcome, Exception):  # a bug of ours: still report what landed
            failures[ref] = StreamError(f"{type(outcome).__name__}: {outcome}")
        else:
            state.digests[ref] = outcome.digest
            state.size = outcome.size

    if failures:
        failed_ref = next(r for r, _, _ in pairs if r in failures)
        failure = failures[failed_ref]
        repo = split_ref(failed_ref)[0]
        fields = {"image": repo, "registry": repo.split("/", 1)[0], **(hint_fields or {})}
        raise PushError(
            f"Pushing {failed_ref} failed: {failure}",
            landed=[r for r, _, _ in pairs if r in state.digests],
            not_landed=[r for r, _, _ in pairs if r not in state.digests],
            digests=state.digests,
            registry_message=str(failure),
            hint=NOT_OURS_HINT if isinstance(failure, NotOurImage)
            else denial_hint(str(failure), fields),
        ) from failure

    unique = sorted(set(state.digests.values()))
    if len(unique) > 1:
        listing = ", ".join(f"{r}={d}" for r, d in state.digests.items())
        raise PushError(
            f"The tags landed with different digests ({listing}); the local image changed "
            "during the push.",
            landed=list(state.digests),
            not_landed=[],
            digests=state.digests,
            hint="Make sure nothing else tags or rebuilds these images while publishing.",
        )
    return PushOutcome(
        digest=unique[0] if unique else "",
        digests={ref: state.digests[ref] for ref, _, _ in pairs},
        size=state.size,
        uploaded=state.uploaded,
        seconds=clock() - started,
    )


def _outcome(work: Callable[[], PushedTag]) -> PushedTag | Exception:
    """The result, or the Exception instead of raising it (a BaseException, such as a
    cancellation, still goes up)."""
    try:
        return work()
    except Exception as exc:  # collected per ref; push() reports them all
        return exc


def _concurrently(
    work: Callable[[tuple[str, str, str]], PushedTag],
    pairs: Sequence[tuple[str, str, str]],
    parallel: int,
) -> list[tuple[str, PushedTag | Exception]]:
    """``work`` over ``pairs`` on daemon threads, at most ``parallel`` at a time, results in
    the order of ``pairs``."""
    gate = threading.BoundedSemaphore(max(1, parallel))
    results: dict[int, PushedTag | Exception] = {}

    def run(index: int, pair: tuple[str, str, str]) -> None:
        with gate:
            results[index] = _outcome(lambda: work(pair))

    threads = [
        threading.Thread(target=run, args=(i, pair), name=f"push-{pair[2]}", daemon=True)
        for i, pair in enumerate(pairs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [(pair[0], results[i]) for i, pair in enumerate(pairs)]


class NotOurImage(_Failure):
    """The registry got another image than the one this run built (a shared daemon).
    Not transient: pushing again would race the other run again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


NOT_OURS_HINT = (
    "Another build on the same Docker daemon moved this tag while we pushed (self-hosted "
    "runners running jobs side by side). Run publishes of the same tags one at a time, e.g. "
    "with a workflow `concurrency:` group, or give each job its own tags."
)

def _point_at_built(client: Any, built: BuiltImage, ref: str) -> None:
    """Re-point ``ref`` at the built image just before its push. On the containerd image
    store an image lives only while a name points at it: when another run moved ``ref``
    (its only name) the built image is gone, and the daemon answers "No such image"."""
    try:
        tag(client, built.image_id, ref)
    except DaemonError as exc:
        if "No such image" not in str(exc):
            raise
        raise NotOurImage(
            f"{ref} was moved by another run and the image this run built "
            f"({built.image_id}) is gone from the daemon with its last name; what {ref} "
            "holds now is not the image this run built"
        ) from exc


def _moved_meanwhile(ref: str, built: BuiltImage, message: str) -> NotOurImage:
    """The daemon found no ``ref`` to push just after we pointed it at the built image: on
    the containerd store another run re-tagging it (delete, then create) was half-way."""
    return NotOurImage(
        f"{ref} was being moved by another run on this daemon as we pushed it ({message}); "
        f"what it holds now is not the image this run built ({built.image_id})"
    )


#: ``confirm(digest)`` -> whether the manifest ``digest`` is the built image (None: the
#: registry could not say); ``registry_api.manifest_is_image`` bound to a client.
Confirm = Callable[[str], "bool | None"]


@dataclass
class BuiltImage:
    """The image a run built, and how to ask the registry whether a manifest is it."""

    image_id: str
    confirm: Confirm
    _answers: dict[str, bool | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, ref: str, digest: str, log: Log) -> None:
        """Raise NotOurImage when ``digest`` (what landed for ``ref``) is another image.
        One registry read per distinct digest: every tag of one image shares it."""
        with self._lock:
            if digest not in self._answers:
                self._answers[digest] = self.confirm(digest)
            answer = self._answers[digest]
        if answer is None:
            log.warning(f"{ref}: could not read {digest} back from the registry to confirm "
                        f"it is the built image {self.image_id}")
        elif not answer:
            raise NotOurImage(
                f"the registry now holds {digest} for {ref}, which is not the image this run "
                f"built ({self.image_id})"
            )


#: ``verify(ref)`` -> our own read of ``ref``: the digest the registry holds when it is our
#: image, and the 429/5xx the read met (``registry_api.check_pushed`` bound to a client and
#: the built image's ID).
Verify = Callable[[str], PushCheck]


def _landed_anyway(check: PushCheck, ref: str, failure: str, log: Log) -> PushedTag | None:
    """After a failure whose outcome is unknown, the registry's answer decides before
    retrying or failing (a client-side timeout is not a failure until it has been asked)."""
    digest = check.digest
    if not digest:
        log.info(f"{ref}: not in the registry after '{failure}'")
        return None
    log.warning(f"{ref}: the push reported '{failure}', but the registry holds the image "
                f"as {digest}; not pushing again")
    return PushedTag(digest, 0)


# --- pull ---------------------------------------------------------------------------------


def pull(
    client: Any,
    ref: str,
    credential: Credential | None,
    log: Log,
    *,
    retry: RetryPolicy = RetryPolicy(),
    clock: Clock = time.monotonic,
    progress_interval: float = 5.0,
    platform: str | None = None,
) -> str:
    """Pull ``ref`` (``repo:tag`` or ``repo@sha256:...``) and return the digest the registry
    reported. ``credential`` None (or anonymous): pull without credentials. ``platform``
    (``os/arch[/variant]``) picks a variant of a multi-platform image; None means the
    daemon's own."""
    auth_config = _auth_config(credential)
    if "@" in ref:
        # The Engine API's /images/create takes a digest where the tag goes.
        repo, _, tag_ = ref.partition("@")
    else:
        repo, tag_ = split_ref(ref)

    def attempt() -> str:
        progress = ProgressReporter(log, "pull", interval=progress_interval, clock=clock)
        try:
            chunks = client.pull(
                repo,
                tag=tag_,
                stream=True,
                decode=True,
                auth_config=auth_config,
                platform=platform,
            )
            digest = read_pull_stream(chunks, progress, log)
        except _DAEMON_ERRORS as exc:
            # Not-found and denied come back as HTTP errors before the stream starts.
            progress.flush()
            raise _failure(exc) from exc
        progress.flush()
        log.info(f"Pulled {ref}: {digest}; {progress.summary()}")
        return digest

    try:
        return _retrying(retry, log, f"Pull of {ref}")(attempt)
    except _Failure as exc:
        raise RegistryError(
            f"Pulling {ref} failed: {exc}",
            hint=denial_hint(str(exc), {"image": repo, "registry": repo.split("/", 1)[0]}),
        ) from exc
