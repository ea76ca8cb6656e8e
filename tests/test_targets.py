"""The targets built to break VI (tasks/targets.py): every exact reference checked.

The model's log density must equal log p(x) + the reference's log pdf everywhere
(exact, in float64); the reference's log pdf must equal an independent scipy
formula; the exact sampler must match the exact moments within Monte Carlo error and
the exact 1-d marginal CDFs (Kolmogorov–Smirnov); the mixture's modes must be what
its :class:`vibench.modes.Modes` extension says.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from vibench.cli import main
from vibench.logdensity import derive_logdensity
from vibench.registry import discover
from vibench.spec import SpecError
from vibench.structure.modes import MODE_TAIL, Modes
from vibench.tasks._targets import draw_mixture, mixture_centers
from vibench.tasks.targets import banana, funnel, mixture, student_t

FAMILIES = {f.name: f for f in (student_t, funnel, mixture, banana)}
KS_LEVEL = 1e-3  # a fixed seed; the test fails only for a sampler off its CDF
N_SE = 4.0


def build(family, **params):
    return family.build(family.Params(**params))


def exact_draws(task, key, n: int) -> jax.Array:
    """``n`` draws from the task's exact sampler (compiled: eager dispatch is slow)."""
    return jax.jit(task.reference.sample, static_argnums=1)(key, n)


def model_log_density(task, z) -> np.ndarray:
    logdensity = derive_logdensity(task)
    return np.asarray(jax.jit(jax.vmap(logdensity.logp, (0, None)))(z, task.data))


def reference_log_prob(task, z) -> np.ndarray:
    return np.asarray(jax.jit(jax.vmap(task.reference.log_prob))(z))


def probe_points(seed: int, dim: int, n: int = 64) -> jax.Array:
    """Points near the bulk, in the tails and far out: N(0, 3²), N(0, 30²) and U(−50, 50)."""
    rng = np.random.default_rng(seed)
    points = 3 * rng.standard_normal((n, dim)), 30 * rng.standard_normal((n, dim))
    return jnp.asarray(np.concatenate([*points, rng.uniform(-50, 50, (n, dim))]))


def scipy_log_prob(name: str, params: dict, z: np.ndarray) -> np.ndarray:
    """Independent float64 formulas for each target's log density."""
    p = FAMILIES[name].Params(**params)
    if name == "student_t":
        shape = (1 - p.rho) * np.eye(p.dim) + p.rho * np.ones((p.dim, p.dim))
        return stats.multivariate_t(np.zeros(p.dim), shape, df=p.df).logpdf(z).reshape(-1)
    if name == "funnel":
        v, x = z[:, 0], z[:, 1:]
        x_sd = np.exp(v / 2)[:, None]
        return stats.norm.logpdf(v, 0, p.v_scale) + stats.norm.logpdf(x, 0, x_sd).sum(1)
    if name == "mixture":
        with jax.enable_x64(True):
            centers = np.asarray(mixture_centers(p.n_modes, p.separation, p.dim))
        per_mode = np.stack([stats.norm.logpdf(z - c).sum(1) for c in centers])
        return special.logsumexp(per_mode, axis=0) - np.log(p.n_modes)
    untwisted = z.copy()
    untwisted[:, 1] -= p.twist * (z[:, 0] ** 2 - 100)
    sd = np.ones(p.dim)
    sd[0] = 10.0
    return stats.norm.logpdf(untwisted, 0, sd).sum(1)


def assert_exact_log_density(name: str, params: dict, seed: int) -> None:
    """log p_model(z) = log p(x) + log_prob(z) (exactly, in float64), and log_prob is scipy's."""
    with jax.enable_x64(True):
        task = build(FAMILIES[name], **params)
        z = probe_points(seed, derive_logdensity(task).dim)
        assert z.dtype == jnp.float64
        model, ours = model_log_density(task, z), reference_log_prob(task, z)
    assert task.reference.log_evidence == 0.0
    np.testing.assert_allclose(model, task.reference.log_evidence + ours, rtol=1e-12, atol=1e-9)
    expected = scipy_log_prob(name, params, np.asarray(z))
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-9)


CASES = [
    ("student_t", {}),
    ("student_t", {"df": 1.0, "dim": 3, "rho": -0.3}),
    ("student_t", {"df": 7.5, "dim": 1}),
    ("funnel", {}),
    ("funnel", {"dim": 2, "v_scale": 1.0}),
    ("mixture", {}),
    ("mixture", {"n_modes": 3, "dim": 1, "separation": 3.0}),
    ("mixture", {"n_modes": 6, "dim": 5}),
    ("banana", {}),
    ("banana", {"dim": 6, "twist": 0.03}),
]


@pytest.mark.parametrize("name,params", CASES)
def test_log_density_is_exact(name, params):
    assert_exact_log_density(name, params, seed=0)


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(sorted(FAMILIES)),
    dim=st.integers(2, 6),
    shape=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_log_density_is_exact_over_random_params(name, dim, shape, seed):
    params = {
        "student_t": {"dim": dim, "df": 1 + 9 * shape, "rho": 0.9 * shape - 0.2},
        "funnel": {"dim": dim, "v_scale": 0.2 + 3.8 * shape},
        "mixture": {"dim": dim, "n_modes": dim, "separation": 1 + 14 * shape},
        "banana": {"dim": dim, "twist": 0.2 * shape},
    }[name]
    assert_exact_log_density(name, params, seed)


@pytest.mark.parametrize("name", FAMILIES)
def test_model_density_in_float32_at_defaults(name):
    """The harness's float32 path: the same identity up to float32 rounding."""
    task = build(FAMILIES[name])
    z = jnp.asarray(
        3 * np.random.default_rng(1).standard_normal((256, derive_logdensity(task).dim))
    )
    assert z.dtype == jnp.float32
    model, ref = model_log_density(task, z), reference_log_prob(task, z)
    assert np.all(np.isfinite(model))
    np.testing.assert_allclose(model, ref, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- sampler vs moments
def assert_moments_match(draws: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    """Sample mean and variance within N_SE standard errors of the exact ones (needs E z⁴ < ∞)."""
    n = draws.shape[0]
    centered = draws - draws.mean(0)
    mean_se = draws.std(0, ddof=1) / np.sqrt(n)
    var_se = (centered**2).std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(draws.mean(0) - mean) < N_SE * mean_se), (draws.mean(0), mean, mean_se)
    assert np.all(np.abs(draws.var(0, ddof=1) - std**2) < N_SE * var_se), (draws.std(0), std)


@pytest.mark.parametrize(
    "name,params",
    [
        ("student_t", {"df": 8.0}),  # E z⁴ < ∞ needs df > 4
        ("funnel", {"v_scale": 1.0}),  # E x⁴ = 3 e^{2 s²}: tame only for a small s
        ("mixture", {}),
        ("mixture", {"n_modes": 3, "dim": 1, "separation": 2.0}),
        ("banana", {}),
        ("banana", {"dim": 4, "twist": 0.03}),
    ],
)
def test_exact_sampler_matches_exact_moments(name, params):
    task = build(FAMILIES[name], **params)
    draws = np.asarray(exact_draws(task, jax.random.key(3), 40_000), np.float64)
    assert draws.shape == (40_000, derive_logdensity(task).dim)
    assert_moments_match(draws, np.asarray(task.reference.mean), np.asarray(task.reference.std))


def test_funnel_default_moments():
    """Neal's funnel: sd(v) = 3, E x_i = 0, Var x_i = e^{4.5}; v's are checkable by sampling."""
    task = build(funnel)
    np.testing.assert_allclose(task.reference.mean, 0.0)
    np.testing.assert_allclose(task.reference.std, [3.0] + [np.exp(2.25)] * 9, rtol=1e-6)
    v = np.asarray(exact_draws(task, jax.random.key(4), 40_000)[:, :1], np.float64)
    assert_moments_match(v, np.zeros(1), np.array([3.0]))


def test_student_t_moments_exist_only_where_they_should():
    assert build(student_t, df=1.0).reference.mean is None
    assert build(student_t, df=1.0).reference.std is None
    two = build(student_t, df=2.0).reference
    np.testing.assert_array_equal(two.mean, np.zeros(5))
    assert two.std is None
    np.testing.assert_allclose(build(student_t, df=3.0).reference.std, np.full(5, np.sqrt(3.0)))


# ---------------------------------------------------------------- sampler vs exact CDFs
def mixed_normal_cdf(t: np.ndarray, conditional_cdf, mixing_sd: float) -> np.ndarray:
    """F(t) = E_u[conditional_cdf(t, u)], u ~ N(0, mixing_sd²), by the trapezoid rule on a
    fine grid (spectrally accurate for these smooth, Gaussian-weighted integrands)."""
    grid = np.linspace(-12.0, 12.0, 4801)
    weights = stats.norm.pdf(grid) * (grid[1] - grid[0])
    return conditional_cdf(t[:, None], mixing_sd * grid[None, :]) @ weights


def ks_pvalue(samples: np.ndarray, cdf) -> float:
    return stats.kstest(samples, cdf).pvalue


@pytest.mark.parametrize("df", [1.0, 2.0])
def test_student_t_sampler_marginal_and_radial_laws(df):
    """z_1 ~ t_ν(0, 1) and zᵀΣ⁻¹z / d ~ F(d, ν): exact laws of the multivariate t."""
    p = student_t.Params(df=df)
    z = np.asarray(exact_draws(build(student_t, df=df), jax.random.key(5), 4000), np.float64)
    shape = (1 - p.rho) * np.eye(p.dim) + p.rho * np.ones((p.dim, p.dim))
    radial = np.einsum("ni,ij,nj->n", z, np.linalg.inv(shape), z) / p.dim
    assert ks_pvalue(z[:, 0], stats.t(df).cdf) > KS_LEVEL
    assert ks_pvalue(radial, stats.f(p.dim, df).cdf) > KS_LEVEL


def test_funnel_sampler_marginal_laws():
    """v ~ N(0, 9); x_1 has CDF E_v[Φ(t e^{-v/2})]; x_1 e^{-v/2} ~ N(0, 1)."""
    z = np.asarray(exact_draws(build(funnel), jax.random.key(6), 2000), np.float64)
    v, x1 = z[:, 0], z[:, 1]
    assert ks_pvalue(v, stats.norm(0, 3).cdf) > KS_LEVEL
    assert ks_pvalue(x1 * np.exp(-v / 2), stats.norm.cdf) > KS_LEVEL

    def x1_cdf(t):
        return mixed_normal_cdf(t, lambda t, v: special.ndtr(t * np.exp(-v / 2)), 3.0)

    assert ks_pvalue(x1, x1_cdf) > KS_LEVEL


def test_banana_sampler_marginal_laws():
    """y_1 ~ N(0, 100); y_2 has CDF E_{x1}[Φ(t − b(x1² − 100))]; the untwist is N(0, 1)."""
    b = banana.Params().twist
    y = np.asarray(exact_draws(build(banana), jax.random.key(7), 2000), np.float64)
    assert ks_pvalue(y[:, 0], stats.norm(0, 10).cdf) > KS_LEVEL
    assert ks_pvalue(y[:, 1] - b * (y[:, 0] ** 2 - 100), stats.norm.cdf) > KS_LEVEL

    def y2_cdf(t):
        return mixed_normal_cdf(t, lambda t, x1: special.ndtr(t - b * (x1**2 - 100)), 10.0)

    assert ks_pvalue(y[:, 1], y2_cdf) > KS_LEVEL


def test_mixture_sampler_marginal_law():
    task = build(mixture)
    modes = task.extension(Modes)
    centers, weights = np.asarray(modes.centers), np.asarray(modes.weights)
    z = np.asarray(exact_draws(task, jax.random.key(8), 2000), np.float64)

    def cdf(t):
        return special.ndtr(t[:, None] - centers[None, :, 0]) @ weights

    assert ks_pvalue(z[:, 0], cdf) > KS_LEVEL


def test_mixed_normal_cdf_quadrature_is_accurate():
    """The quadrature behind the KS tests, against a case with a closed form:
    E_u[Φ(t − u)], u ~ N(0, s²) is Φ(t / √(1 + s²))."""
    t = np.linspace(-8.0, 8.0, 33)
    got = mixed_normal_cdf(t, lambda t, u: special.ndtr(t - u), 2.0)
    np.testing.assert_allclose(got, special.ndtr(t / np.sqrt(5.0)), atol=1e-10)


# ---------------------------------------------------------------- mixture modes
def test_mixture_mass_of_exact_draws_matches_weights():
    task = build(mixture)
    modes = task.extension(Modes)
    n = 20_000
    mass = np.asarray(modes.mass(exact_draws(task, jax.random.key(9), n)))
    weights = np.asarray(modes.weights)
    np.testing.assert_allclose(weights, 0.25)
    assert np.all(np.abs(mass - weights) < N_SE * np.sqrt(weights * (1 - weights) / n)), mass


@pytest.mark.parametrize("params", [{}, {"n_modes": 8, "dim": 3}, {"n_modes": 5, "dim": 1}])
def test_mixture_modes_are_well_separated(params):
    """Assignment recovers the generating component of essentially every draw.

    A draw is misassigned only if it lies beyond the midpoint to a neighbour: probability
    at most (M − 1) Φ(−separation / 2) (union bound), 3e-7 per neighbour at the default;
    or left off-mode, beyond the radius that holds all but MODE_TAIL of its component.
    """
    task = build(mixture, **params)
    modes = task.extension(Modes)
    n = 20_000
    labels, z = draw_mixture(jax.random.key(10), n, modes.centers, modes.weights)
    np.testing.assert_allclose(z, exact_draws(task, jax.random.key(10), n), rtol=1e-6, atol=1e-6)
    wrong = int(np.sum(np.asarray(modes.assign(z)) != np.asarray(labels)))
    p = mixture.Params(**params)
    expected = n * ((p.n_modes - 1) * special.ndtr(-p.separation / 2) + MODE_TAIL)
    assert wrong <= expected + N_SE * np.sqrt(expected) + 1, (wrong, expected)


@settings(max_examples=15, deadline=None)
@given(n_modes=st.integers(2, 12), dim=st.integers(1, 5), separation=st.floats(0.5, 50.0))
def test_mixture_centers_neighbours_are_separation_apart(n_modes, dim, separation):
    centers = np.asarray(mixture_centers(n_modes, separation, dim), np.float64)
    distances = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_allclose(distances.min(axis=1), separation, rtol=1e-5)
    np.testing.assert_allclose(centers.mean(axis=0), 0.0, atol=1e-5 * separation * n_modes)


# ---------------------------------------------------------------- tasks, registry, validation
@pytest.mark.parametrize("name", FAMILIES)
def test_task_shape_and_simulate(name):
    task = build(FAMILIES[name])
    logdensity = derive_logdensity(task)
    params, data = task.simulate(jax.random.key(11))
    assert data == {} and task.data == {}
    assert {k: tuple(np.shape(v)) for k, v in params.items()} == logdensity.site_shapes
    assert {"exact", "synthetic"} <= task.tags
    for moment in (task.reference.mean, task.reference.std):
        assert moment is None or moment.shape == (logdensity.dim,)


def test_funnel_flat_order_is_v_then_x():
    task = build(funnel, dim=4)
    logdensity = derive_logdensity(task)
    z = exact_draws(task, jax.random.key(12), 1)[0]
    sites = logdensity.unflatten(z)
    assert float(sites["v"]) == float(z[0])
    np.testing.assert_array_equal(sites["x"], z[1:])


@pytest.mark.parametrize(
    "spec,valid",
    [
        ("student_t[df=0.5]", "1 <= df <= 10"),
        ("student_t[df=11]", "1 <= df <= 10"),
        ("student_t[rho=1]", "rho < 1"),
        ("student_t[dim=0]", "1 <= dim"),
        ("funnel[dim=1]", "2 <= dim"),
        ("funnel[v_scale=0]", "0 < v_scale <= 10"),
        ("mixture[n_modes=1]", "2 <= n_modes"),
        ("mixture[separation=-1]", "0 < separation"),
        ("mixture[dim=0]", "1 <= dim"),
        ("banana[dim=1]", "2 <= dim"),
        ("banana[twist=-0.1]", "0 <= twist"),
    ],
)
def test_invalid_params_are_user_errors_that_say_what_is_valid(spec, valid):
    with pytest.raises(SpecError, match=valid.replace("(", r"\(")):
        discover().task(spec)


def test_registry_and_cli_list_the_targets(capsys):
    registry = discover()
    assert set(FAMILIES) <= set(registry.tasks)
    np.testing.assert_allclose(registry.task("student_t[df=3]").reference.std, np.sqrt(3.0))
    assert main(["list", "tasks"]) == 0
    listing = capsys.readouterr().out
    for name in FAMILIES:
        assert f"  {name} " in listing
