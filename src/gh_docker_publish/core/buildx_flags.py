"""docker/build-push-action's pass-through inputs, each one buildx flag (issue 14 item 3).

A workflow moving from build-push-action pastes ``load``, ``outputs``, ``build-contexts``,
``ssh``, ``network``, ``add-hosts``, ``shm-size``, ``ulimit``, ``allow``,
``no-cache-filters`` and ``call`` as they are; this module checks their syntax before any
network call and turns them into ``docker buildx build`` arguments (docs.docker.com,
"docker buildx build" reference). ``annotations`` is metadata-action's input too: its
computed ``LEVEL:KEY=VALUE`` lines become ``--annotation`` (core/metadata.py makes them).

The classic builder (Engine API ``/build``) can do ``network``, ``add-hosts`` and
``shm-size``; the others need BuildKit, and :func:`classic_conflicts` names them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gh_docker_publish.errors import InputError

#: buildx ``--call`` methods (build is the default: nothing is passed).
CALL_METHODS = ("build", "check", "outline", "targets")
#: BuildKit entitlements (``--allow``).
ENTITLEMENTS = ("network.host", "security.insecure")
#: buildx flags whose input is spelled otherwise (the rest are the same word).
FLAG_INPUTS = {
    "output": "outputs", "annotation": "annotations", "build-context": "build-contexts",
    "add-host": "add-hosts", "no-cache-filter": "no-cache-filters",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_IP = re.compile(r"[0-9.]+|\[?[0-9A-Fa-f:]+\]?|host-gateway")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)i?b?", re.IGNORECASE)
_ULIMIT = re.compile(r"([a-z]+)=(-?[0-9]+)(?::(-?[0-9]+))?")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# The ulimit names Docker knows (docker/go-units ulimit.go).
ULIMITS = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
)


@dataclass(frozen=True)
class BuildxFlags:
    """The pass-through inputs, checked. Empty values pass nothing (buildx's defaults)."""

    load: bool = True
    outputs: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()  # LEVEL:KEY=VALUE, filled from the computed metadata
    build_contexts: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    network: str = ""
    add_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int = 0  # bytes
    ulimits: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    no_cache_filters: tuple[str, ...] = ()
    call: str = "build"
    apply_annotations: bool = field(default=False, compare=False)  # `annotations` was given

    @property
    def builds_image(self) -> bool:
        """False for ``call: check|outline|targets``: buildx evaluates, nothing is built."""
        return self.call.partition(",")[0] == "build"

    @property
    def loads_image(self) -> bool:
        """Whether the image lands in the Docker daemon (``--load``), from which we push."""
        return self.load and not self.outputs and self.builds_image

    def argv(self) -> list[str]:
        """The buildx arguments, in the reference's spelling."""
        args: list[str] = []
        for spec in self.outputs:
            args += ["--output", spec]
        for line in self.annotations:
            args += ["--annotation", line]
        for spec in self.build_contexts:
            args += ["--build-context", spec]
        for spec in self.ssh:
            args += ["--ssh", spec]
        if self.network:
            args += ["--network", self.network]
        for host, ip in self.add_hosts:
            args += ["--add-host", f"{host}:{ip}"]
        if self.shm_size:
            args += ["--shm-size", str(self.shm_size)]
        for spec in self.ulimits:
            args += ["--ulimit", spec]
        for entitlement in self.allow:
            args += ["--allow", entitlement]
        for stage in self.no_cache_filters:
            args += ["--no-cache-filter", stage]
        if not self.builds_image:
            args += [f"--call={self.call}"]
        return args

    @staticmethod
    def input_of(flag: str) -> str:
        """The input behind a buildx flag (``no-cache-filter`` -> ``no-cache-filters``)."""
        return FLAG_INPUTS.get(flag, flag)

    def classic_kwargs(self) -> dict[str, object]:
        """What the Engine API's ``/build`` takes of these (docker-py ``build()`` names)."""
        kwargs: dict[str, object] = {}
        if self.network:
            kwargs["network_mode"] = self.network
        if self.add_hosts:
            kwargs["extra_hosts"] = dict(self.add_hosts)
        if self.shm_size:
            kwargs["shmsize"] = self.shm_size
        return kwargs


_bad = InputError.bad_item


def parse_size(raw: str, input_name: str = "shm-size") -> int:
    """``2g``, ``512m``, ``1024`` (bytes): Docker's binary units (docker/go-units RAMInBytes)."""
    match = _SIZE.fullmatch(raw.strip())
    if not match or float(match[1]) <= 0:
        raise _bad(input_name, raw, "is not a size", "shm-size: 2g (units b, k, m, g)")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def parse_add_hosts(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``host:ip`` or ``host=ip`` (build-push-action and docker both take either)."""
    hosts = []
    for item in items:
        sep = "=" if "=" in item else ":"
        host, found, ip = item.partition(sep)
        if not found or not _HOST.fullmatch(host) or not _IP.fullmatch(ip):
            raise _bad("add-hosts", item, "is not host:ip", "add-hosts: docker:10.180.0.1")
        hosts.append((host, ip.strip("[]")))
    return tuple(hosts)


def _check_named(items: Sequence[str], input_name: str, example: str) -> tuple[str, ...]:
    """``NAME=VALUE`` specs (``build-contexts``); ``ssh`` also takes a bare ``default``."""
    for item in items:
        name, sep, value = item.partition("=")
        if input_name == "ssh" and not sep:
            value = "-"
        if not _NAME.fullmatch(name) or (sep and not value) or (input_name != "ssh" and not sep):
            raise _bad(input_name, item, "is not NAME=VALUE", example)
    return tuple(items)


def _check_outputs(items: Sequence[str]) -> tuple[str, ...]:
    """``type=local,dest=out`` or a bare path (buildx's shorthand for type=local)."""
    for item in items:
        if "=" in item and not re.search(r"(^|,)\s*type=", item):
            raise _bad("outputs", item, "has no type=", "outputs: type=local,dest=out")
    return tuple(items)


def _check_ulimits(items: Sequence[str]) -> tuple[str, ...]:
    for item in items:
        match = _ULIMIT.fullmatch(item)
        if not match or match[1] not in ULIMITS:
            raise _bad("ulimit", item, "is not NAME=SOFT[:HARD] with a known name",
                       "ulimit: nofile=1024:1024")
    return tuple(items)


def _check_allow(items: Sequence[str]) -> tuple[str, ...]:
    for item in items:
        if item not in ENTITLEMENTS:
            raise InputError.not_one_of(
                "allow", item, ENTITLEMENTS,
                hint="BuildKit grants only these entitlements (the builder must allow them too).",
            )
    return tuple(items)


def _check_call(raw: str) -> str:
    value = raw.strip().lower() or "build"
    method = value.partition(",")[0]
    if method not in CALL_METHODS:
        raise InputError.not_one_of(
            "call", method, CALL_METHODS,
            hint="call: check runs the Dockerfile checks and builds nothing; build is the default.",
        )
    return value


def _check_network(raw: str) -> str:
    value = raw.strip()
    if value and not re.fullmatch(r"default|none|host|[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise _bad("network", value, "is not a network mode", "network: host")
    return value


def parse_flags(
    get: Callable[[str], str],
    get_list: Callable[[str, bool], tuple[str, ...]],
    parse_bool: Callable[[str, str, bool], bool],
) -> BuildxFlags:
    """Read the pass-through inputs with settings' own readers. ``get_list(name, commas)``:
    specs holding commas (``type=local,dest=out``) are one per line, as in build-push-action.

    Raises:
        InputError: naming the first bad input, before any network call.
    """
    shm = get("shm-size")
    return BuildxFlags(
        load=parse_bool(get("load"), "load", True),
        outputs=_check_outputs(get_list("outputs", False)),
        build_contexts=_check_named(
            get_list("build-contexts", False), "build-contexts", "build-contexts: alpine=docker-image://alpine:3"
        ),
        ssh=_check_named(get_list("ssh", False), "ssh", "ssh: default or ssh: github=/path/to/key"),
        network=_check_network(get("network")),
        add_hosts=parse_add_hosts(get_list("add-hosts", True)),
        shm_size=parse_size(shm) if shm else 0,
        ulimits=_check_ulimits(get_list("ulimit", False)),
        allow=_check_allow(get_list("allow", True)),
        no_cache_filters=_check_stages(get_list("no-cache-filters", True)),
        call=_check_call(get("call")),
        apply_annotations=bool(get("annotations")),
    )


def _check_stages(items: Sequence[str]) -> tuple[str, ...]:
    for item in items:
        if not _NAME.fullmatch(item):
            raise _bad("no-cache-filters", item, "is not a stage name", "no-cache-filters: deps")
    return tuple(items)


def classic_conflicts(flags: BuildxFlags, *, chosen: bool = True) -> list[str]:
    """The inputs set here that the classic builder cannot honour (it has no such option).

    ``chosen=False`` (``builder: auto`` fell back to classic): ``annotations`` is left out,
    since metadata-action's meaning, the ``annotations`` output, still holds."""
    used = [
        name for name, value in (
            ("outputs", flags.outputs),
            ("annotations", flags.apply_annotations and chosen),
            ("build-contexts", flags.build_contexts),
            ("ssh", flags.ssh),
            ("ulimit", flags.ulimits),
            ("allow", flags.allow),
            ("no-cache-filters", flags.no_cache_filters),
        ) if value
    ]
    if not flags.builds_image:
        used.append("call")
    return used
