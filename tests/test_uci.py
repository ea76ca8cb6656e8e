"""The uci task: its parameters, the checksummed data loader, the network's predictive in
original units, the split grid and summary table, and the predictive-space reference metrics."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibench.core import Approximation, Reference
from vibench.data.files import ENV_VAR, DataFileError
from vibench.data.uci import DIRECTORIES, SPLITS, load_split, split_files
from vibench.data.uci_sha256 import SHA256
from vibench.families.gaussian import MeanField
from vibench.harness.store import METRICS_SCHEMA
from vibench.logdensity import derive_logdensity
from vibench.metrics import reference_predictive
from vibench.metrics.evaluation import Evaluation
from vibench.metrics.predictive import pointwise_predictions
from vibench.metrics.records import COMPUTED
from vibench.registry import discover
from vibench.spec import SpecError
from vibench.structure.minibatch import Subsample, minibatch_logp
from vibench.structure.predictive import Predictive
from vibench.tasks._uci import network, split_grid, split_table, unflatten_of

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (SHARED / "uci").is_dir(), reason=f"no UCI data at {SHARED}")


@pytest.fixture(scope="module")
def registry():
    return discover()


# --------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "spec, words",
    [
        ("uci[dataset=mnist]", ["dataset", "boston", "concrete", "yacht", "mnist"]),
        ("uci[split=20]", ["split", "0", "19", "20"]),
        ("uci[dataset=protein,split=5]", ["split", "0-4", "protein", "5"]),
    ],
)
def test_bad_parameters_are_one_line_errors_naming_the_valid_ones(registry, spec, words):
    with pytest.raises(SpecError) as err:
        registry.task_family(spec)
    message = str(err.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_split_grid_covers_every_split_with_the_protocols_hidden_units(registry):
    boston, protein = split_grid("boston"), split_grid("protein")
    assert boston[0] == "uci" and boston[1:] == [f"uci[split={i}]" for i in range(1, 20)]
    assert protein == ["uci[dataset=protein,hidden=100]"] + [
        f"uci[dataset=protein,split={i},hidden=100]" for i in range(1, 5)
    ]
    assert {registry.task_family(spec)[1].split for spec in protein} == set(range(5))
    with pytest.raises(ValueError, match="valid: boston, concrete"):
        split_grid("mnist")


# --------------------------------------------------------------------- the loader
def write_set(root: Path, directory: str, table: np.ndarray, train: list[int], test: list[int]) -> dict:
    """A small set in ``root/uci/directory`` (target in the last column) and its checksums."""
    folder = root / "uci" / directory
    folder.mkdir(parents=True)
    d = table.shape[1] - 1
    contents = {
        "data.txt": "\n".join(" ".join(f"{v:g}" for v in row) for row in table),
        "index_features.txt": "\n".join(map(str, range(d))),
        "index_target.txt": str(d),
        "index_train_0.txt": "\n".join(map(str, train)),
        "index_test_0.txt": "\n".join(map(str, test)),
    }
    for name, text in contents.items():
        (folder / name).write_text(text + "\n")
    return {directory: {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in contents}}


@pytest.fixture
def small_set(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    table = np.arange(15.0).reshape(5, 3)
    sums = write_set(tmp_path, "yacht", table, [0, 2, 4], [1, 3])
    return tmp_path, table, sums


def test_loader_reads_a_verified_split(small_set):
    root, table, sums = small_set
    split = load_split("yacht", 0, data_dir=root, checksums=sums)
    np.testing.assert_array_equal(split.x_train, table[[0, 2, 4], :2])
    np.testing.assert_array_equal(split.y_test, table[[1, 3], 2])


def test_loader_searches_the_argument_then_the_environment(small_set, tmp_path_factory, monkeypatch):
    root, _, sums = small_set
    monkeypatch.setenv(ENV_VAR, str(root))
    empty = tmp_path_factory.mktemp("empty")
    assert load_split("yacht", 0, data_dir=empty, checksums=sums).x_train.shape == (3, 2)


def test_missing_file_is_one_line_naming_it_and_the_roots(small_set):
    root, _, sums = small_set
    (root / "uci" / "yacht" / "index_test_0.txt").unlink()
    with pytest.raises(DataFileError) as err:
        load_split("yacht", 0, data_dir=root, checksums=sums)
    message = str(err.value)
    assert "\n" not in message and "uci/yacht/index_test_0.txt" in message and str(root) in message
    assert ".cache/vibench" in message and ENV_VAR in message


def test_altered_file_is_one_line_naming_it(small_set):
    root, _, sums = small_set
    path = root / "uci" / "yacht" / "data.txt"
    path.write_text(path.read_text().replace("14", "15"))
    with pytest.raises(DataFileError) as err:
        load_split("yacht", 0, data_dir=root, checksums=sums)
    assert "\n" not in str(err.value) and str(path) in str(err.value) and "sha256" in str(err.value)


def test_loader_refuses_an_unknown_set_or_split(small_set):
    root, _, sums = small_set
    with pytest.raises(ValueError, match="valid: boston, concrete, energy"):
        load_split("mnist", 0, data_dir=root, checksums=sums)
    with pytest.raises(ValueError, match="splits 0-19; got 20"):
        load_split("yacht", 20, data_dir=root, checksums=sums)


def test_every_read_file_has_a_committed_checksum():
    for name, directory in DIRECTORIES.items():
        needed = {f for split in range(SPLITS[name]) for f in split_files(name, split)}
        assert needed == set(SHA256[directory]), name


@needs_data
@pytest.mark.parametrize("name", list(DIRECTORIES))
def test_real_files_load_with_the_committed_checksums(name):
    for split in (0, SPLITS[name] - 1):
        s = load_split(name, split, data_dir=SHARED)
        assert s.x_train.shape[0] + s.x_test.shape[0] == s.x_train.shape[0] + len(s.y_test)
        assert s.x_train.shape[1] == s.x_test.shape[1] and np.isfinite(s.x_train).all()


# --------------------------------------------------------------------- the task
@pytest.fixture(scope="module")
def boston(registry):
    if not (SHARED / "uci").is_dir():
        pytest.skip(f"no UCI data at {SHARED}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_VAR, str(SHARED))
        task = registry.task("uci")
    return task, derive_logdensity(task)


def test_flat_layout_matches_the_derived_log_density(boston):
    task, logdensity = boston
    assert logdensity.dim == 13 * 50 + 50 + 50 + 1 + 1
    z = jax.random.normal(jax.random.key(0), (logdensity.dim,))
    weights, precision = unflatten_of(13, 50)(z)
    sites = logdensity.constrain(z, task.data)
    for name, value in weights.items():
        np.testing.assert_array_equal(value, sites[name])
    np.testing.assert_allclose(precision, sites["precision"], rtol=1e-6)


def test_predictive_is_in_original_units(boston):
    """log p(y* | z) = log N((y* − m)/s; f(x*), 1/γ) − log s and E[y* | z] = m + s f(x*),
    with m, s the training targets' mean and sd, recomputed here from the raw split."""
    task, logdensity = boston
    raw = load_split("boston", 0, data_dir=SHARED)
    m, s = raw.y_train.mean(), raw.y_train.std()
    z = 0.3 * jax.random.normal(jax.random.key(1), (logdensity.dim,))
    weights, precision = unflatten_of(13, 50)(z)
    f = np.asarray(network(weights, task.held_out["x"]), np.float64)
    y = raw.y_test
    expected = -0.5 * math.log(2 * math.pi) + 0.5 * math.log(float(precision)) - 0.5 * float(precision) * (
        (y - m) / s - f
    ) ** 2 - math.log(s)
    predictive = task.extension(Predictive)
    np.testing.assert_allclose(predictive.log_lik(z, task.held_out), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(predictive.mean(z, task.held_out), m + s * f, rtol=1e-4)
    np.testing.assert_allclose(task.held_out["y"], y, rtol=1e-6)


def test_full_minibatch_is_the_log_joint(boston):
    task, logdensity = boston
    subsample = task.extension(Subsample)
    z = 0.3 * jax.random.normal(jax.random.key(2), (logdensity.dim,))
    index = jnp.arange(subsample.size)
    full = minibatch_logp(subsample, logdensity)(z, subsample.select(task.data, index), index)
    np.testing.assert_allclose(full, logdensity.logp(z, task.data), rtol=1e-5)


def test_training_targets_are_normalized_on_the_training_split(boston):
    task, _ = boston
    y = np.asarray(task.data["y"], np.float64)
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-5


# --------------------------------------------------------------------- reference metrics
def test_w2_of_shifted_samples_is_the_shift():
    a = np.random.default_rng(0).normal(size=(500, 3))
    np.testing.assert_allclose(reference_predictive.w2_per_point(a, a[::-1] + 2.5), 2.5, rtol=1e-12)


def evaluation(task, logdensity, params, reference_params):
    family = MeanField()
    reference = Reference(provenance="test", sample=lambda key, n: family.sample(reference_params, key, n))
    approx = Approximation(params=params, trace=jnp.zeros(1), grad_evals=jnp.asarray(0), family=family)
    return Evaluation(replace(task, reference=reference), logdensity, approx, jax.random.key(3), n_draws=1000)


def test_reference_metrics_apply_but_parameter_moments_do_not(boston):
    task, logdensity = boston
    params = {"loc": jnp.zeros(logdensity.dim), "log_scale": jnp.full(logdensity.dim, -2.0)}
    ev = evaluation(task, logdensity, params, params)
    applying = {m.name for m in COMPUTED if m.applies(ev)}
    assert {"test_lpd_gap", "predictive_w2", "test_lpd", "test_rmse"} <= applying
    assert not applying & {"mean_error", "std_error", "w1_mean", "w1_sliced", "mmd", "psis_mean_error"}


def test_lpd_gap_to_the_same_distribution_is_zero_and_w2_sees_a_shift(boston):
    """Reference = q: the gap is 0 within its standard errors. Shifting the reference's
    output bias b₂ by δ shifts every predictive by c = s·δ/√(H+1), so the W₂ to it lies
    within W₂(q, q) of c (triangle inequality; the same reference draws on both sides)."""
    task, logdensity = boston
    key = jax.random.key(4)
    loc = 0.5 * jax.random.normal(key, (logdensity.dim,))
    params = {"loc": loc, "log_scale": jnp.full(logdensity.dim, -2.0)}
    same = evaluation(task, logdensity, params, params)
    gap = reference_predictive.test_lpd_gap(same)
    # Monte Carlo sd of each point's lpd difference (two independent sets of S draws):
    # sqrt(2 Var_s[w] / (S E[w]²)), w = p(y*_i | z_s); the sd of the mean over correlated
    # points is at most the mean of these sds.
    draws = reference_predictive.paired_draws(same).approx
    log_lik = pointwise_predictions(task.extension(Predictive), draws, task.held_out).log_lik
    w = np.exp(log_lik - log_lik.max(axis=0))
    mc_sd = np.sqrt(2 * w.var(axis=0) / (w.shape[0] * w.mean(axis=0) ** 2))
    assert abs(gap.value) < 4 * mc_sd.mean(), (gap, mc_sd.mean())
    delta, b2 = 3.0 * math.sqrt(51), 50  # sites sorted by name: b1 (50), b2, precision, w1, w2
    shifted = {"loc": loc.at[b2].add(delta), "log_scale": params["log_scale"]}
    s = float(load_split("boston", 0, data_dir=SHARED).y_train.std())
    w2 = reference_predictive.predictive_w2
    floor, moved = w2(same).value, w2(evaluation(task, logdensity, params, shifted)).value
    assert abs(moved - 3.0 * s) <= floor + 1e-3 * s, (moved, 3 * s, floor)


# --------------------------------------------------------------------- the summary over splits
def write_rows(folder: Path, rows: list[dict]) -> None:
    base = {name: None for name in METRICS_SCHEMA.names}
    base.update(kind="run", task="uci", method="svi", seed=0, status="ok", device="cpu", stderr=0.0)
    table = pa.Table.from_pylist([{**base, **row} for row in rows], schema=METRICS_SCHEMA)
    pq.write_table(table, folder / "rows.parquet")


def test_split_table_is_mean_and_standard_error_over_splits(tmp_path):
    t = np.datetime64("2026-01-01T00:00:00", "us").astype(object)
    values = {"uci": [1.0, 3.0], "uci[split=1]": [2.0], "uci[split=2]": [6.0]}
    rows = []
    for label, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            rows.append(dict(run_id=f"{label}{seed}", task_label=label, label="svi", seed=seed, metric="test_lpd",
                             value=value, timestamp=t))
    rows.append(dict(run_id="bad", task_label="uci[split=3]", label="svi", metric="test_lpd", value=99.0,
                     status="failed", timestamp=t))
    rows.append(dict(run_id="other", task_label="uci[dataset=yacht]", label="svi", metric="test_lpd", value=-1.0,
                     timestamp=t))
    write_rows(tmp_path, rows)
    table = split_table(tmp_path).set_index("setting")
    per_split = np.array([2.0, 2.0, 6.0])  # split 0 is the mean of its two seeds
    assert table.loc["uci", "mean"] == pytest.approx(per_split.mean())
    assert table.loc["uci", "se"] == pytest.approx(per_split.std(ddof=1) / math.sqrt(3))
    assert table.loc["uci", "splits"] == 3 and table.loc["uci[dataset=yacht]", "splits"] == 1
