"""Local latents on minibatches: the flat layout, the unbiased scaled minibatch log joint
(with a global latent whose log-Jacobian is not scaled), and SVI's local step on ppca
(N = 100 points, every latent local) reaching the full-batch mean-field optimum.

Tolerances: a Monte Carlo mean lies within Z = 4 of its standard errors of the truth.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import fit
from jax.flatten_util import ravel_pytree
from synthetic import task_of

from vibench.core import Reference
from vibench.harness.runner import logdensity_of
from vibench.logdensity import derive_logdensity
from vibench.methods.svi import svi
from vibench.metrics.evaluation import evaluate
from vibench.structure.local import LatentLayout, SiteLayout, latent_layout, local_minibatch_logp
from vibench.structure.minibatch import Subsample, minibatch_logp, sample_index

Z = 4.0
N = 20  # points of the hierarchical toy model


def hierarchical_model(data):
    """tau ~ HalfNormal (global, constrained: a log-Jacobian), z_i ~ N(0, tau), x_i ~ N(z_i, 1)."""
    tau = numpyro.sample("tau", dist.HalfNormal(1.0))
    z = numpyro.sample("z", dist.Normal(0.0, tau).expand([data["x"].shape[0]]).to_event(1))
    numpyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=data["x"])


@pytest.fixture(scope="module")
def hierarchical():
    x = jax.random.normal(jax.random.key(0), (N,)) * 2.0
    subsample = Subsample(size=N, per_datum=("x",), restrict=lambda index: hierarchical_model, local=("z",))
    task = dataclasses.replace(
        task_of(hierarchical_model, Reference(provenance="none"), (subsample,)), data={"x": x}
    )
    ld = derive_logdensity(task)
    return task, ld, subsample, latent_layout(subsample, ld)


def test_layout_splits_and_joins_the_flat_vector_of_ravel_pytree():
    n = 4
    sites = {
        "a": jnp.arange(3.0),
        "w": 10 + jnp.arange(n * 1.0).reshape(n, 1),
        "z": 20 + jnp.arange(n * 2.0).reshape(n, 2),
    }
    flat, _ = ravel_pytree(sites)
    layout = LatentLayout(
        (SiteLayout("a", (3,), False), SiteLayout("w", (1,), True), SiteLayout("z", (2,), True))
    )
    globals_, locals_ = layout.split(jnp.stack([flat, -flat]))  # a leading batch axis
    np.testing.assert_array_equal(globals_[0], sites["a"])
    np.testing.assert_array_equal(locals_[0], jnp.concatenate([sites["w"], sites["z"]], axis=1))
    np.testing.assert_array_equal(layout.join(globals_, locals_), jnp.stack([flat, -flat]))
    values = layout.site_values(globals_[0], locals_[0, 1:3])
    np.testing.assert_array_equal(values["z"], sites["z"][1:3])
    np.testing.assert_array_equal(values["a"], sites["a"])


def test_layout_refuses_a_local_site_without_a_row_per_point(hierarchical):
    _, ld, subsample, layout = hierarchical
    assert layout.global_sites == ("tau",) and layout.per_point == 1
    with pytest.raises(ValueError, match="rows"):
        latent_layout(dataclasses.replace(subsample, local=("tau",)), ld)
    with pytest.raises(ValueError, match="not latent sites"):
        latent_layout(dataclasses.replace(subsample, local=("nope",)), ld)
    with pytest.raises(ValueError, match="local latents"):
        minibatch_logp(subsample, ld)


def test_local_minibatch_logp_is_the_log_joint_on_all_points_and_unbiased(hierarchical):
    # With S = every point the estimate is the log joint (log-Jacobian of tau included);
    # over random minibatches its mean is the log joint, within Z standard errors of the
    # mean. Scaling tau's log-Jacobian by N/|S| too would shift that mean by
    # (N/|S| − 1)·log|d tau / d u| = 3·u, far outside at u = 1.
    task, ld, subsample, layout = hierarchical
    logp = local_minibatch_logp(subsample, layout)
    z = jnp.concatenate([jnp.ones(1), jax.random.normal(jax.random.key(1), (N,))])
    globals_, locals_ = layout.split(z)
    everything = jnp.arange(N)
    np.testing.assert_allclose(
        logp(globals_, locals_, task.data, everything), ld.logp(z, task.data), rtol=1e-6
    )

    def estimate(key):
        index = sample_index(key, N, 5)
        return logp(globals_, locals_[index], subsample.select(task.data, index), index)

    values = np.asarray(jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(2), 4000)), np.float64)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - float(ld.logp(z, task.data))) <= Z * se


# --------------------------------------------------------------------- SVI, local step
def test_local_step_moves_only_the_points_of_the_minibatch(registry):
    # One step: the points outside the minibatch keep their initial factors exactly.
    task = registry.task("ppca")
    ld = logdensity_of(task)
    choice = registry.method("svi[steps=1]")
    key = jax.random.key(3)
    approx = choice.method.fit(task, ld, task.data, key, choice.config)
    init = ld.init(jax.random.split(key)[0]).reshape(-1, 2)
    loc = np.asarray(approx.params["loc"]).reshape(-1, 2)
    log_scale = np.asarray(approx.params["log_scale"]).reshape(-1, 2)
    moved = np.any(loc != init, axis=1)
    assert moved.sum() == choice.config.batch_size
    assert np.all(log_scale[~moved] == 0.0) and np.all(log_scale[moved] != 0.0)


def test_local_svi_reaches_the_full_batch_meanfield_optimum(registry):
    # ppca's latents are all local, so SVI's minibatches of |S| = 10 of N = 100 points
    # update each point's factor on about 1 step in 10. At the default ADVI's budget
    # (16000 full-data gradients: 20000 steps x 8 draws x |S|/N), the mean-field q must
    # be at the known mean-field optimum within noise: family_gap (optimum's ELBO minus
    # the ELBO estimate from 4096 draws) within Z of its Monte Carlo se of 0, within Z
    # combined se of full-batch ADVI's (independent evaluation keys), and the exact KL's
    # excess over the optimum's (no Monte Carlo error: the optimizer's residual) below
    # Z se of the ELBO estimate, i.e. not resolvable by it. Measured: excess 0.048 nats
    # (ADVI 0.041), se 0.10.
    task, ld, local = fit(registry, "ppca", "svi[steps=20000]")
    assert float(local.grad_evals) == 20000 * 8 * 10 / 100
    _, _, full = fit(registry, "ppca", "advi")
    m_local = evaluate(task, ld, local, jax.random.key(1), 4096)
    m_full = evaluate(task, ld, full, jax.random.key(2), 4096)
    gap, gap_full = m_local["family_gap"], m_full["family_gap"]
    assert abs(gap.value) <= Z * gap.stderr
    assert abs(gap.value - gap_full.value) <= Z * np.hypot(gap.stderr, gap_full.stderr)
    excess = m_local["kl"].value - (task.reference.log_evidence - task.reference.meanfield_elbo)
    assert -1e-3 <= excess <= Z * gap.stderr


def test_local_latents_need_the_meanfield_reparam_svi(registry):
    task = registry.task("ppca")
    ld = logdensity_of(task)
    assert svi.supports(task) == (True, "")
    for spec, message in (("svi[family=fullrank]", "meanfield"), ("svi[mode=natural]", "reparam")):
        choice = registry.method(spec)
        with pytest.raises(ValueError, match=message):
            choice.method.fit(task, ld, task.data, jax.random.key(0), choice.config)


def test_budget_counts_data_passes_of_local_svi(registry):
    task = registry.task("ppca")  # N = 100; a step draws 8 minibatches of 10: 0.8 passes
    assert svi.budget(svi.Config(), 16000, task).steps == 20000
