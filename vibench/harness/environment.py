"""Where the numbers came from: package versions, git commit, host and device."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import jax

PACKAGES = ("vibench", "jax", "jaxlib", "numpyro", "optax", "numpy", "arviz", "pandas", "pyarrow", "torch")


@lru_cache(maxsize=1)
def versions_json() -> str:
    """JSON of Python's and the installed packages' versions (``null`` when absent)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return json.dumps(found, sort_keys=True)


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the vibench source tree, with ``-dirty`` if it has local changes;
    ``unknown`` for an installed copy outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def host() -> str:
    return socket.gethostname()


def resolve_device(kind: str | None) -> jax.Device:
    """The first JAX device of ``kind`` (``cpu`` or ``gpu``), or JAX's default device."""
    if kind is None:
        return jax.devices()[0]
    try:
        return jax.devices(kind)[0]
    except RuntimeError:
        visible = sorted({d.platform for d in jax.devices()} | {"cpu"})
        raise ValueError(f"no {kind} device visible to JAX; valid here: {', '.join(visible)}") from None


def describe_device(device: jax.Device) -> str:
    """``platform:device kind``, e.g. ``gpu:NVIDIA H100 80GB HBM3`` or ``cpu:cpu``."""
    return f"{device.platform}:{device.device_kind}"
