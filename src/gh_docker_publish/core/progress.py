"""Per-layer progress for push and pull streams, the way the docker CLI reports it.

The daemon sends one JSON chunk per progress tick (hundreds per layer, and a
"Retrying in N seconds" every second while it backs off). A CI log wants one line
per layer every few seconds, the final state of every layer, and one closing line
with bytes moved and seconds taken. The clock is injectable so tests can drive it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Clock = Callable[[], float]
Action = Literal["push", "pull"]

# Layer states after which the daemon sends nothing more for that layer.
TERMINAL = frozenset(
    {
        "Pushed",
        "Layer already exists",
        "Mounted from",
        "Pull complete",
        "Already exists",
        "Download complete",
    }
)
# States whose bytes count as moved over the wire in the closing line.
_MOVED = {"push": frozenset({"Pushed"}), "pull": frozenset({"Download complete", "Pull complete"})}
_LAYER_ID = re.compile(r"[0-9a-f]{12}|sha256:[0-9a-f]{64}")
_BYTE_PHASES = {"push": frozenset({"Pushing"}), "pull": frozenset({"Downloading"})}


class Log(Protocol):
    """What engine and builders need from the logger (gha.py or the CLI provides it)."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


def human_bytes(n: float) -> str:
    """Decimal units, as the docker CLI prints them (1 MB = 10^6 bytes)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


@dataclass
class _Layer:
    status: str = ""
    current: int = 0
    total: int = 0
    last_line_at: float | None = None
    pending: bool = False  # state changed since the last line we printed


@dataclass
class ProgressReporter:
    """Turns stream chunks into rate-limited per-layer lines and one closing line."""

    log: Log
    action: Action
    interval: float = 5.0
    clock: Clock = time.monotonic
    _layers: dict[str, _Layer] = field(default_factory=dict)
    _started: float | None = None

    def __post_init__(self) -> None:
        self._started = self.clock()

    def feed(self, chunk: Mapping[str, Any]) -> None:
        """Record a chunk that has an ``id`` and a ``status``; others are the caller's."""
        layer_id = chunk.get("id")
        status = chunk.get("status")
        if not isinstance(layer_id, str) or not isinstance(status, str):
            return
        layer = self._layers.setdefault(layer_id, _Layer())
        detail = chunk.get("progressDetail") or {}
        if status in _BYTE_PHASES[self.action] and isinstance(detail, Mapping):
            layer.current = int(detail.get("current") or layer.current)
            layer.total = int(detail.get("total") or layer.total)
        if status == layer.status and status not in _BYTE_PHASES[self.action]:
            return
        layer.status = status
        layer.pending = True
        now = self.clock()
        terminal = status.split(" from ")[0] in TERMINAL or status in TERMINAL
        if terminal or layer.last_line_at is None or now - layer.last_line_at >= self.interval:
            self._emit(layer_id, layer, now)

    def flush(self) -> None:
        """Print layers whose latest state was held back by the rate limit."""
        now = self.clock()
        for layer_id, layer in self._layers.items():
            if layer.pending:
                self._emit(layer_id, layer, now)

    def summary(self) -> str:
        """The closing line: layers, bytes moved, seconds taken."""
        elapsed = self.clock() - (self._started or 0.0)
        layers = self._real_layers()
        moved = self.bytes_moved()
        reused = sum(
            1
            for layer in layers
            if layer.status in {"Layer already exists", "Already exists"}
            or layer.status.startswith("Mounted from")
        )
        verb = "uploaded" if self.action == "push" else "downloaded"
        return (
            f"{len(layers)} layers ({reused} already present), "
            f"{human_bytes(moved)} {verb} in {elapsed:.1f} s"
        )

    def bytes_moved(self) -> int:
        """Bytes of the layers that were really uploaded (or downloaded), not reused."""
        return sum(
            max(layer.current, layer.total)
            for layer in self._real_layers()
            if layer.status in _MOVED[self.action]
        )

    def _real_layers(self) -> list[_Layer]:
        # The pull stream's first chunk has the tag as its id ("1: Pulling from x").
        return [v for k, v in self._layers.items() if _LAYER_ID.fullmatch(k)]

    def _emit(self, layer_id: str, layer: _Layer, now: float) -> None:
        text = layer.status
        if layer.status in _BYTE_PHASES[self.action] and layer.total:
            pct = min(100, int(layer.current * 100 / layer.total))
            text = f"{text} {pct}% of {human_bytes(layer.total)}"
        self.log.info(f"{layer_id}: {text}")
        layer.last_line_at = now
        layer.pending = False
