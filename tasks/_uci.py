"""The computation of :mod:`vibench.tasks.uci` (declared there, with its parameters), the
grid of a set's splits (:func:`split_grid`) and the protocol's summary over splits
(:func:`split_table`)."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from jax.flatten_util import ravel_pytree

from vibench.core import Array, Data, ModelFn, Reference, Task
from vibench.data.uci import DIRECTORIES, SPLITS, Split, load_split
from vibench.spec import canonical_label, parse_spec
from vibench.structure.minibatch import Subsample
from vibench.structure.predictive import Predictive
from vibench.structure.predictive_draw import PredictiveDraw
from vibench.tasks.uci import VERSION, UCIParams

PRECISION_PRIOR = (6.0, 6.0)
"""Gamma(shape, rate) prior of the noise precision on the normalized targets (PBP's)."""
PROTOCOL_HIDDEN = {"protein": 100}
"""Hidden units of the protocol where they are not the default 50."""


class Normalized:
    """A split normalized with its training part's mean and sd (an sd of 0 kept at 1)."""

    def __init__(self, split: Split) -> None:
        self.x_mean, self.x_sd = split.x_train.mean(0), split.x_train.std(0)
        self.x_sd = np.where(self.x_sd > 0, self.x_sd, 1.0)
        self.y_mean, self.y_sd = float(split.y_train.mean()), float(split.y_train.std())
        self.x_train = jnp.asarray((split.x_train - self.x_mean) / self.x_sd, jnp.float32)
        self.y_train = jnp.asarray((split.y_train - self.y_mean) / self.y_sd, jnp.float32)
        self.x_test = jnp.asarray((split.x_test - self.x_mean) / self.x_sd, jnp.float32)
        self.y_test = jnp.asarray(split.y_test, jnp.float32)  # original units


def network(params: dict[str, Array], x: Array) -> Array:
    """f(x) = w₂ᵀ relu((W₁ᵀx + b₁)/√(d+1))/√(H+1) + b₂/√(H+1), one value per row of x."""
    d, h = params["w1"].shape
    hidden = jax.nn.relu((x @ params["w1"] + params["b1"]) / math.sqrt(d + 1))
    return (hidden @ params["w2"] + params["b2"]) / math.sqrt(h + 1)


def model_of(x: Array, hidden: int, prior_scale: float) -> ModelFn:
    """The model of the normalized targets ``data["y"]`` at the normalized inputs ``x``."""
    d = x.shape[1]

    def model(data: Data) -> None:
        weight = dist.Normal(0.0, prior_scale)
        params = {
            "w1": numpyro.sample("w1", weight.expand([d, hidden]).to_event(2)),
            "b1": numpyro.sample("b1", weight.expand([hidden]).to_event(1)),
            "w2": numpyro.sample("w2", weight.expand([hidden]).to_event(1)),
            "b2": numpyro.sample("b2", weight),
        }
        precision = numpyro.sample("precision", dist.Gamma(*PRECISION_PRIOR))
        numpyro.sample("y", dist.Normal(network(params, x), jax.lax.rsqrt(precision)).to_event(1), obs=data["y"])

    return model


def unflatten_of(d: int, hidden: int):
    """``unflatten(z) -> (weights, precision)`` of the flat unconstrained latent, in the
    order :func:`vibench.logdensity.derive_logdensity` gives (sites sorted by name; the
    precision's unconstrained coordinate is its log)."""
    prototype = {
        "w1": jnp.zeros((d, hidden)), "b1": jnp.zeros(hidden), "w2": jnp.zeros(hidden),
        "b2": jnp.zeros(()), "precision": jnp.zeros(()),
    }
    _, unravel = ravel_pytree(prototype)

    def unflatten(z: Array) -> tuple[dict[str, Array], Array]:
        sites = unravel(z)
        return {k: v for k, v in sites.items() if k != "precision"}, jnp.exp(sites["precision"])

    return unflatten


def predictive(data: Normalized, hidden: int) -> tuple[Predictive, PredictiveDraw]:
    """Test points ``{"x": normalized inputs, "y": targets in original units}``:
    y* | z ~ N(m + s f(x*), s²/γ), m and s the training targets' mean and sd."""
    unflatten = unflatten_of(data.x_train.shape[1], hidden)
    m, s = data.y_mean, data.y_sd

    def mean_and_sd(z: Array, held_out: Data) -> tuple[Array, Array]:
        params, precision = unflatten(z)
        return m + s * network(params, held_out["x"]), s * jax.lax.rsqrt(precision)

    def log_lik(z: Array, held_out: Data) -> Array:
        return dist.Normal(*mean_and_sd(z, held_out)).log_prob(held_out["y"])

    def mean(z: Array, held_out: Data) -> Array:
        return mean_and_sd(z, held_out)[0]

    def draw(z: Array, held_out: Data, key: jax.Array) -> Array:
        loc, scale = mean_and_sd(z, held_out)
        return loc + scale * jax.random.normal(key, loc.shape, loc.dtype)

    return Predictive(log_lik, target="y", kind="regression", mean=mean), PredictiveDraw(draw)


NO_REFERENCE = Reference(
    provenance="no closed form; compare in predictive space with a stored NUTS reference "
    "(vibench.metrics.reference_predictive.predictive_reference)"
)


def build(p: UCIParams) -> Task:
    data = Normalized(load_split(p.dataset, p.split))
    x, n = data.x_train, data.x_train.shape[0]
    model = model_of(x, p.hidden, p.prior_scale)
    d = x.shape[1]

    def simulate(key: jax.Array) -> tuple[dict[str, Array], Data]:
        keys = jax.random.split(key, 6)
        params = {
            "w1": p.prior_scale * jax.random.normal(keys[0], (d, p.hidden)),
            "b1": p.prior_scale * jax.random.normal(keys[1], (p.hidden,)),
            "w2": p.prior_scale * jax.random.normal(keys[2], (p.hidden,)),
            "b2": p.prior_scale * jax.random.normal(keys[3], ()),
        }
        shape, rate = PRECISION_PRIOR
        precision = jax.random.gamma(keys[4], shape) / rate
        y = network(params, x) + jax.lax.rsqrt(precision) * jax.random.normal(keys[5], (n,))
        return {**params, "precision": precision}, {"y": y}

    subsample = Subsample(size=n, per_datum=("y",), restrict=lambda index: model_of(x[index], p.hidden, p.prior_scale))
    held_out_predictive, draw = predictive(data, p.hidden)
    return Task(
        name="uci",
        label="uci",
        version=VERSION,
        tags=frozenset({"real-data", "neural-net", "minibatch", "multimodal"}),
        model=model,
        data={"y": data.y_train},
        reference=NO_REFERENCE,
        simulate=simulate,
        held_out={"x": data.x_test, "y": data.y_test},
        extensions=(subsample, held_out_predictive, draw),
    )


# --------------------------------------------------------------------- the protocol over splits
def split_grid(dataset: str) -> list[str]:
    """The task SPECs of every split of ``dataset`` with the protocol's hidden units
    (``vibench run --task SPEC`` for each covers the protocol)."""
    if dataset not in DIRECTORIES:
        raise ValueError(f"unknown UCI data set {dataset!r}; valid: {', '.join(DIRECTORIES)}")
    hidden = PROTOCOL_HIDDEN.get(dataset, UCIParams.hidden)
    return [
        canonical_label("uci", UCIParams(dataset=dataset, split=split, hidden=hidden))
        for split in range(SPLITS[dataset])
    ]


def _setting(task_label: str) -> tuple[str, int]:
    """(the task label without its split, the split) of a ``uci`` label."""
    _, params = parse_spec(task_label)
    split = int(params.pop("split", UCIParams.split))
    return canonical_label("uci", UCIParams(**{k: _typed(k, v) for k, v in params.items()})), split


def _typed(name: str, value: str):
    return {"split": int, "hidden": int, "prior_scale": float}.get(name, str)(value)


def split_table(results: str | Path, metrics: tuple[str, ...] = ("test_lpd", "test_rmse")) -> pd.DataFrame:
    """The protocol's summary of a results directory's ``uci`` runs: per (task setting
    without the split, method label, metric) the mean over splits and its standard error
    sd/√k over the k splits run (each split's value first averaged over its seeds).
    Only ok runs count, the latest per (task label, method label, seed, device)."""
    from vibench.harness.store import read_metrics

    table = read_metrics(Path(results))
    columns = ["setting", "method", "metric", "mean", "se", "splits"]
    rows = table[(table["task"] == "uci") & (table["kind"] == "run") & (table["status"] == "ok")]
    rows = rows[rows["metric"].isin(metrics)].sort_values("timestamp")
    rows = rows.drop_duplicates(["task_label", "label", "seed", "device", "metric"], keep="last")
    if rows.empty:
        return pd.DataFrame(columns=columns)
    setting = rows["task_label"].map(_setting)
    rows = rows.assign(setting=setting.map(lambda s: s[0]), split=setting.map(lambda s: s[1]))
    per_split = rows.groupby(["setting", "label", "metric", "split"], sort=True)["value"].mean()
    summary = per_split.groupby(level=["setting", "label", "metric"]).agg(
        mean="mean", se=lambda v: v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan, splits="size"
    )
    return summary.reset_index().rename(columns={"label": "method"})[columns]
