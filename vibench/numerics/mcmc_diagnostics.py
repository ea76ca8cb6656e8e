"""MCMC convergence diagnostics in JAX: rank-normalized split R-hat and bulk ESS.

As Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), term by term as ArviZ
0.23's ``rhat(method="rank")`` and ``ess(method="bulk")`` (Geyer's initial monotone
sequence with its final-term correction), but pure JAX, so a sampler can report
them from inside a compiled, vmapped fit. Draws are ``(chains, n)`` per scalar
quantity; only the first ``num_valid`` draws of each chain count (a traced integer,
so a run stopped early by a budget keeps static shapes). Degenerate input (constant
draws) gives NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

from vibench.core import Array

BLOM_OFFSET = 3 / 8


def split_chains(draws: Array, num_valid: Array) -> tuple[Array, Array]:
    """``(2·chains, n // 2)`` halves of each chain's valid draws (the middle draw of an
    odd count dropped), and the mask of the valid columns."""
    half = num_valid // 2
    columns = jnp.arange(draws.shape[1] // 2)
    first = draws[:, columns]
    second = jnp.take(draws, num_valid - half + columns, axis=1, mode="clip")
    return jnp.concatenate([first, second]), columns < half


def _pooled_sorted(values: Array, mask: Array) -> tuple[Array, Array]:
    """Valid values of ``values`` sorted (invalid ones last, as +inf), and their count."""
    mask = jnp.broadcast_to(mask, values.shape)
    return jnp.sort(jnp.where(mask, values, jnp.inf).ravel()), jnp.sum(mask)


def z_scale(values: Array, mask: Array) -> Array:
    """Normal scores of the pooled average ranks r: Φ⁻¹((r − 3/8) / (N + 1/4)) (Blom)."""
    ordered, count = _pooled_sorted(values, mask)
    below = jnp.searchsorted(ordered, values, side="left")
    through = jnp.searchsorted(ordered, values, side="right")
    rank = (below + through + 1) / 2
    return ndtri((rank - BLOM_OFFSET) / (count - 2 * BLOM_OFFSET + 1))


def _masked_median(values: Array, mask: Array) -> Array:
    ordered, count = _pooled_sorted(values, mask)
    return 0.5 * (ordered[(count - 1) // 2] + ordered[count // 2])


def _chain_moments(values: Array, mask: Array) -> tuple[Array, Array, Array]:
    """Per-chain means, per-chain variances (ddof 1) and the valid length."""
    length = jnp.sum(mask)
    mean = jnp.sum(jnp.where(mask, values, 0.0), axis=1) / length
    centred = jnp.where(mask, values - mean[:, None], 0.0)
    return mean, jnp.sum(centred**2, axis=1) / (length - 1), length


def basic_rhat(values: Array, mask: Array) -> Array:
    """sqrt(((m − 1)/m · W + B/m) / W), B/m the variance of the chain means."""
    mean, var, length = _chain_moments(values, mask)
    between = length * jnp.var(mean, ddof=1)
    within = jnp.mean(var)
    return jnp.sqrt((between / within + length - 1) / length)


def autocovariance(values: Array, mask: Array) -> Array:
    """Per-chain autocovariance at every lag (biased, divided by the valid length), by FFT."""
    mean, _, length = _chain_moments(values, mask)
    centred = jnp.where(mask, values - mean[:, None], 0.0)
    n = values.shape[1]
    size = 1 << (2 * n - 1).bit_length()
    spectrum = jnp.fft.rfft(centred, n=size, axis=1)
    return jnp.fft.irfft(spectrum * jnp.conj(spectrum), n=size, axis=1)[:, :n] / length


def basic_ess(values: Array, mask: Array) -> Array:
    """ESS of the mean of ``values`` (chains, n): N / τ, τ from Geyer's initial monotone
    sequence of the combined-chain autocorrelations, with ArviZ's last-term correction."""
    chains, n = values.shape
    mean, _, length = _chain_moments(values, mask)
    acov = jnp.mean(autocovariance(values, mask), axis=0)
    mean_var = acov[0] * length / (length - 1)
    var_plus = mean_var * (length - 1) / length + (jnp.var(mean, ddof=1) if chains > 1 else 0.0)
    rho = (1 - (mean_var - acov) / var_plus).at[0].set(1.0)
    rho = jnp.pad(rho, (0, n % 2))
    pairs = rho[0::2] + rho[1::2]
    k = jnp.arange(pairs.shape[0])
    # Pair k ≥ 1 is formed while 2k − 1 < length − 3 and every earlier pair sum is > 0;
    # ``last`` is the last pair formed (0 if none).
    continues = ((2 * k - 1 < length - 3) & (jnp.roll(pairs, 1) > 0)).at[0].set(True)
    last = jnp.sum(jnp.cumprod(continues)) - 1
    monotone = jax.lax.cummin(pairs)
    even = rho[2 * last]
    tail = jnp.where((even > 0) | (pairs[last] >= 0), even, 0.0)
    tau = -1 + 2 * jnp.sum(jnp.where(k < last, monotone, 0.0)) + tail
    total = chains * length
    return total / jnp.maximum(tau, 1 / jnp.log10(total))


def ess_bulk(draws: Array, num_valid: Array) -> Array:
    """Bulk ESS of draws ``(chains, n)``: the ESS of the rank-normalized split chains."""
    split, mask = split_chains(draws, num_valid)
    return basic_ess(z_scale(split, mask), mask)


def rhat(draws: Array, num_valid: Array) -> Array:
    """Rank-normalized split R-hat of draws ``(chains, n)``: the larger of the bulk's and
    the folded draws' (|x − median|, the tails') R-hat."""
    split, mask = split_chains(draws, num_valid)
    folded = jnp.abs(split - _masked_median(split, mask))
    return jnp.maximum(basic_rhat(z_scale(split, mask), mask), basic_rhat(z_scale(folded, mask), mask))


def worst_case(draws: Array, num_valid: Array) -> dict[str, Array]:
    """The smallest bulk ESS and the largest R-hat over the coordinates of draws
    ``(chains, n, dim)``."""
    per_coordinate = jax.vmap(lambda x: (ess_bulk(x, num_valid), rhat(x, num_valid)), in_axes=2)
    ess, r = per_coordinate(draws)
    return {"ess_bulk_min": jnp.min(ess), "rhat_max": jnp.max(r)}
