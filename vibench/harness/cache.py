"""JAX's persistent compilation cache, on by default for ``vibench run`` and ``sbc``.

A compiled program is stored on disk under :func:`default_cache_dir`
(``$XDG_CACHE_HOME/vibench/jax``, else ``~/.cache/vibench/jax``), so a repeated run, in a
fresh process, loads it instead of compiling again. JAX's cache key is the lowered
program itself with the compile options, the backend and device, and the JAX and jaxlib
versions: everything that changes the program (a task's data shapes, a method's
config, the precision) changes the key. :func:`enable_compile_cache` caches every
program, however small or quick to compile (JAX's defaults skip programs compiled in
under a second).

``time_compile_s`` is still measured, load included; :class:`CacheEvents` counts JAX's
``/jax/compilation_cache/*`` monitoring events so a run can record whether the cache
served its compile (the metric ``compile_cache_hit``).

This module imports JAX only inside its functions, so the CLI can name the default
folder without loading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REQUEST_EVENT = "/jax/compilation_cache/compile_requests_use_cache"
HIT_EVENT = "/jax/compilation_cache/cache_hits"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vibench/jax``, or ``~/.cache/vibench/jax`` when that is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vibench" / "jax"


def enable_compile_cache(directory: Path | None = None) -> Path:
    """Turn JAX's persistent compilation cache on in ``directory`` (default:
    :func:`default_cache_dir`) for every program; call it before anything is compiled."""
    import jax

    directory = Path(directory) if directory is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return directory


@dataclass
class CacheEvents:
    """Counts of the compilations that asked the persistent cache (``requests``) and
    of those it served (``hits``) while a :func:`cache_events` block ran."""

    requests: int = 0
    hits: int = 0

    @property
    def served(self) -> bool:
        """Every compilation in the block came from the cache (and there was one)."""
        return self.requests > 0 and self.hits == self.requests


_open: list[CacheEvents] = []
_listening = False


def _listen(event: str, **_: object) -> None:
    for counts in _open:
        if event == REQUEST_EVENT:
            counts.requests += 1
        elif event == HIT_EVENT:
            counts.hits += 1


@contextmanager
def cache_events() -> Iterator[CacheEvents]:
    """Within: the persistent-cache events of this process counted into the yielded
    :class:`CacheEvents` (none when the cache is off)."""
    global _listening
    if not _listening:
        import jax.monitoring

        jax.monitoring.register_event_listener(_listen)
        _listening = True
    counts = CacheEvents()
    _open.append(counts)
    try:
        yield counts
    finally:
        _open.remove(counts)
