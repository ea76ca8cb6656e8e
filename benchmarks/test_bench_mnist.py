"""Epoch time of the ``vae`` method's backends: JAX (one compiled epoch under ``lax.scan``)
against PyTorch eager and ``torch.compile``, at the default architecture (784-200-200-50).

CPU (default suite; random binary MNIST-shaped images, ``CPU_IMAGES`` of them, batch 100,
K = 1; each backend's epoch time is its mean over the epochs after the first, compile
excluded; the ratios are printed)::

    pytest benchmarks/test_bench_mnist.py -n 0 -p no:cacheprovider -s

GPU (``@pytest.mark.gpu``; skipped cleanly where JAX sees no GPU): an epoch of 60 000
images at batch 100, K = 1, in at most 0.1 s for JAX, and PyTorch (compiled) within 2×
of it (issue 15's targets).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from vibench.methods import _vae
from vibench.methods.vae import VAEConfig
from vibench.tasks._mnist import DEFAULT_ARCHITECTURE, generative_task

CPU_IMAGES, GPU_IMAGES = 2000, 60_000
EPOCHS = 3


def _gpu() -> jax.Device | None:
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


def _task(n: int):
    images = (np.random.default_rng(0).random((n, 784)) < 0.13).astype(np.uint8)
    return generative_task("bench", "bench", images, images[:10], DEFAULT_ARCHITECTURE, eval_k=10)


def epoch_seconds(task, device, **config) -> float:
    """Mean epoch time (after the first) of one fit on ``device``."""
    cfg = VAEConfig(batch_size=100, epochs=EPOCHS, schedule="constant", **config)
    with jax.default_device(device):
        data = jax.device_put(task.data, device)
        approx = _vae.fit(task, None, data, jax.random.key(0), cfg)
    return float(approx.diagnostics["epoch_time_s"])


def backend_times(task, device) -> dict[str, float]:
    """Epoch seconds per backend; the torch ones only where the torch extra is installed.
    On a shared CPU, torch's default intra-op threads can spin against other processes,
    so eager torch is timed with one thread too."""
    times = {"jax": epoch_seconds(task, device)}
    try:
        import torch
    except ImportError:
        print("torch backends not timed: the torch extra is not installed")
        return times
    times["torch eager"] = epoch_seconds(task, device, backend="torch")
    if device.platform == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            times["torch eager, 1 thread"] = epoch_seconds(task, device, backend="torch")
        finally:
            torch.set_num_threads(threads)
    try:
        times["torch.compile"] = epoch_seconds(task, device, backend="torch", compile=True)
    except Exception as err:  # noqa: BLE001 - torch.compile needs a working toolchain
        print(f"torch.compile unavailable here: {type(err).__name__}: {str(err).splitlines()[0]}")
    return times


def _print(times: dict[str, float], images: int, where: str) -> None:
    print(f"\nvae epoch of {images} images, batch 100, K=1, on {where}:")
    for name, seconds in times.items():
        print(f"  {name:14s} {seconds:8.3f} s   ({seconds / times['jax']:.1f}x JAX)")


def test_cpu_epoch_time_jax_vs_torch():
    task = _task(CPU_IMAGES)
    times = backend_times(task, jax.devices("cpu")[0])
    _print(times, CPU_IMAGES, "CPU")
    assert all(np.isfinite(list(times.values())))


@pytest.mark.gpu
@pytest.mark.skipif(_gpu() is None, reason="no GPU visible to JAX")
def test_gpu_epoch_of_60k_at_batch_100():
    times = backend_times(_task(GPU_IMAGES), _gpu())
    _print(times, GPU_IMAGES, "GPU")
    assert times["jax"] <= 0.1, times
    best_torch = min(v for k, v in times.items() if k != "jax")
    assert best_torch <= 2 * times["jax"], f"PyTorch's best epoch is {best_torch / times['jax']:.1f}x JAX's"
