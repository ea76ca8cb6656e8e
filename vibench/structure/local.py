"""Local (per-datum) latents: where they sit in the flat latent vector, and the minibatch
log joint over them.

A task declares its local latent sites in :attr:`vibench.structure.minibatch.Subsample.local`:
sites with one row per data point along axis 0 (ppca's ``z`` of shape (N, K)). The flat
unconstrained vector of the task's :class:`vibench.core.LogDensity` (the sites in
flattening order, each raveled row-major) then splits into a global part of G
coordinates and a local part of shape (N, L), row i holding point i's L local
coordinates (the local sites' rows, concatenated in flat order). :class:`LatentLayout`
does the split and its inverse with slices, reshapes and concatenations, over any
leading batch axes, and reads N from the arrays' shapes, so one layout serves any number
of points (an amortized family on held-out data).

For a minibatch S the model restricted to S (``Subsample.restrict``) holds the local
sites of S only; :func:`local_minibatch_logp` evaluates the unbiased estimate

    log p̂_S = log p(g) + (N/|S|) Σ_{i∈S} [log p(z_i | g) + log p(x_i | z_i, g)]

at the global coordinates g and the local rows z_S, every site but the global latents
scaled by N/|S| (:class:`vibench.structure.minibatch.scale_per_datum`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
from numpyro.infer.util import potential_energy

from vibench.core import Array, Data, LogDensity
from vibench.structure.minibatch import Subsample, scale_per_datum


@dataclass(frozen=True)
class SiteLayout:
    """One latent site: ``shape`` is the site's shape (global) or one point's row (local)."""

    name: str
    shape: tuple[int, ...]
    local: bool

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class LatentLayout:
    """The flat latent vector as (global part (G,), local part (N, L)); ``sites`` in flat order."""

    sites: tuple[SiteLayout, ...]

    @property
    def n_global(self) -> int:
        """G: the global coordinates."""
        return sum(s.size for s in self.sites if not s.local)

    @property
    def per_point(self) -> int:
        """L: the local coordinates of one data point."""
        return sum(s.size for s in self.sites if s.local)

    @property
    def global_sites(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sites if not s.local)

    def points(self, z: Array) -> int:
        """N: the data points of a flat vector ``z`` of shape (..., G + N·L)."""
        return (z.shape[-1] - self.n_global) // self.per_point

    def split(self, z: Array) -> tuple[Array, Array]:
        """``(..., G + N·L) -> ((..., G), (..., N, L))``."""
        n, batch = self.points(z), z.shape[:-1]
        globals_, locals_, offset = [z[..., :0]], [z[..., :0].reshape(batch + (n, 0))], 0
        for site in self.sites:
            width = site.size * (n if site.local else 1)
            part = z[..., offset : offset + width]
            if site.local:
                locals_.append(part.reshape(batch + (n, site.size)))
            else:
                globals_.append(part)
            offset += width
        return jnp.concatenate(globals_, -1), jnp.concatenate(locals_, -1)

    def join(self, globals_: Array, locals_: Array) -> Array:
        """``((..., G), (..., N, L)) -> (..., G + N·L)``: the inverse of :meth:`split`."""
        batch, n = locals_.shape[:-2], locals_.shape[-2]
        parts, g, loc = [], 0, 0
        for site in self.sites:
            if site.local:
                parts.append(locals_[..., loc : loc + site.size].reshape(batch + (n * site.size,)))
                loc += site.size
            else:
                parts.append(globals_[..., g : g + site.size])
                g += site.size
        return jnp.concatenate(parts, -1)

    def site_values(self, globals_: Array, locals_: Array) -> dict[str, Array]:
        """The unconstrained value of every site, from one point's ``(G,)`` global part and
        the ``(n, L)`` local rows of n points (a restricted model's sites)."""
        n = locals_.shape[0]
        values, g, loc = {}, 0, 0
        for site in self.sites:
            if site.local:
                values[site.name] = locals_[:, loc : loc + site.size].reshape((n,) + site.shape)
                loc += site.size
            else:
                values[site.name] = globals_[g : g + site.size].reshape(site.shape)
                g += site.size
        return values


def latent_layout(subsample: Subsample, logdensity: LogDensity) -> LatentLayout:
    """The layout of ``logdensity``'s flat vector, with ``subsample.local`` as the local sites."""
    if not subsample.local:
        raise ValueError("latent_layout needs a Subsample with local latent sites (Subsample.local)")
    shapes = logdensity.site_shapes
    unknown = sorted(set(subsample.local) - set(shapes))
    if unknown:
        raise ValueError(f"Subsample.local names {unknown}, not latent sites; valid: {sorted(shapes)}")
    sites = []
    for name in jax.tree_util.tree_leaves({name: name for name in shapes}):  # ravel_pytree's order
        shape, local = shapes[name], name in subsample.local
        if local and (not shape or shape[0] != subsample.size):
            raise ValueError(
                f"local site {name!r} has shape {shape}; a local site needs {subsample.size} rows "
                "(one per point)"
            )
        sites.append(SiteLayout(name, shape[1:] if local else shape, local))
    return LatentLayout(tuple(sites))


def local_minibatch_logp(
    subsample: Subsample, layout: LatentLayout
) -> Callable[[Array, Array, Data, Array], Array]:
    """``logp(globals_, locals_, batch, index)``: the estimate log p̂_S of the module doc at
    the global coordinates ``(G,)`` and the local rows ``(|S|, L)`` of the points
    ``index`` (static size |S|), for ``batch = subsample.select(data, index)``,
    log-Jacobians included (as :attr:`vibench.core.LogDensity.logp`)."""

    def logp(globals_: Array, locals_: Array, batch: Data, index: Array) -> Array:
        model = scale_per_datum(
            subsample.restrict(index), subsample.size / index.shape[0], layout.global_sites
        )
        return -potential_energy(model, (batch,), {}, layout.site_values(globals_, locals_))

    return logp
