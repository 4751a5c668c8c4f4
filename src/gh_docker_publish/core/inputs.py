"""Reading the action's inputs from the environment the runner gives the container.

Pure: a function of the environment mapping, so ``core.settings`` reads inputs without
importing the runner edge (the runner edge, ``edges.gha``, writes; this reads).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["get_input"]


def get_input(env: Mapping[str, str], name: str, *, trim: bool = True) -> str:
    """Read one action input, trimmed unless ``trim=False`` (separators: ``" "`` is one);
    ``""`` when unset.

    The runner passes ``INPUT_<NAME>`` with spaces turned into ``_`` and hyphens *kept*
    (``INPUT_BUILD-ARGS``, actions/toolkit#219). People who run the container by hand tend
    to write ``INPUT_BUILD_ARGS``, so that spelling is read when the first one is empty.
    """
    key = "INPUT_" + name.replace(" ", "_").upper()
    value = env.get(key, "")
    if not value.strip():
        value = env.get(key.replace("-", "_"), value)
    return value.strip() if trim else value
