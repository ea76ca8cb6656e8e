"""The HTML report, rendered from real results of several tasks and methods (one of
them 2-d, whose draws are plotted), a failed and a NaN run whose label and error carry
markup, an SBC run, and a failed SBC run of the failing method."""

from __future__ import annotations

import base64
import html
import importlib.metadata
import io
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib import image as mpimg

from vibench.cli import main
from vibench.harness import DRAWS_STORED
from vibench.harness.store import METRICS_SCHEMA, append_runs, read_draws, read_reference_draws
from vibench.report.build import build_report, page_name
from vibench.report.figures import DPI, DRAWS_PANEL, DrawPanel, draws_figure, draws_limits, pareto_front
from vibench.report.summary import cells, load_results, separated
from vibench.report.tables import plain, split_number

MARKUP = "<script>alert(1)</script>"
BROKEN_METHOD = '''
"""A method that breaks: raises its message, or returns NaN parameters."""
from dataclasses import dataclass

import jax.numpy as jnp

from vibench.core import Approximation
from vibench.declarations import Method
from vibench.families.gaussian import MeanField


@dataclass(frozen=True)
class BoomConfig:
    message: str = "boom"
    nan: bool = False


def fit(task, logdensity, data, key, config):
    if not config.nan:
        raise RuntimeError(config.message)
    loc = jnp.full(logdensity.dim, jnp.nan)
    return Approximation(
        params={"loc": loc, "log_scale": jnp.zeros_like(loc)},
        trace=jnp.zeros(1),
        grad_evals=jnp.asarray(0),
        family=MeanField(),
    )


boom = Method(name="boom", version="0", Config=BoomConfig, supports=lambda task: (True, ""),
              fit=fit, doc=__doc__)
'''
TASKS = ("linreg", "gaussian[dim=2]")
METHODS = (
    "advi[steps=300]",
    "advi[family=fullrank,steps=300]",
    "nuts[num_warmup=100,num_samples=100,num_chains=2]",
)
FAILING = f"boom[message={MARKUP}]"
NAN = "boom[nan=true]"


def report_results(base: Path) -> Path:
    """Real results (made once per session under ``base``): two tasks × two ADVI variants
    and NUTS on linreg, two seeds each; a failing and a NaN run of a plug-in method on
    linreg; an SBC run, and a failing SBC run of the failing method (same task, label
    and seed as its failed benchmark run)."""
    out = base / "report-results"
    done = out / "_complete"
    if done.exists():
        return out
    plugins = base / "report-plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "boom.py").write_text(BROKEN_METHOD)
    common = ["--out", str(out), "--draws", "256"]
    tasks = [arg for task in TASKS for arg in ("--task", task)]
    methods = [arg for method in METHODS[:2] for arg in ("--method", method)]
    assert main(["run", *tasks, *methods, "--seeds", "2", *common]) == 0
    assert main(["run", "--task", TASKS[0], "--method", METHODS[2], "--seeds", "2", *common]) == 0
    assert main(["run", "--task", "linreg", "--method", FAILING, "--method", NAN,
                 "--plugins", str(plugins), *common]) == 1  # some run failed or gave NaN
    assert main(["sbc", "--task", "linreg", "--method", "exact", "--replicates", "20", "--draws", "9",
                 "--out", str(out)]) == 0
    assert main(["sbc", "--task", "linreg", "--method", FAILING, "--replicates", "10", "--draws", "9",
                 "--plugins", str(plugins), "--out", str(out)]) == 1
    done.touch()
    return out


def built_report(base: Path) -> Path:
    """The report of :func:`report_results` (built once per session under ``base``)."""
    out = base / "report-html"
    if not (out / "index.html").exists():
        build_report(report_results(base), out)
    return out


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    return report_results(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, results_dir) -> Path:
    return built_report(tmp_path_factory.getbasetemp())


def page(report_dir: Path, task: str) -> str:
    return (report_dir / page_name(task)).read_text()


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


# ------------------------------------------------------------------ pages and safety
def test_pages_are_written_with_safe_names(report_dir):
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == sorted(["index.html", *(page_name(t) for t in TASKS)])
    assert page_name("linreg") == "linreg.html"
    assert re.fullmatch(r"gaussian_dim=2-[0-9a-f]{10}\.html", page_name("gaussian[dim=2]"))


def test_page_names_are_safe_and_distinct():
    weird = ["index", "../etc/passwd", "a/b", "a_b", "a b", "a?b", ".hidden", "<script>"]
    names = [page_name(label) for label in weird]
    assert len(set(names)) == len(names) and "index.html" not in names
    assert all(re.fullmatch(r"[A-Za-z0-9_.=-]+\.html", n) and not n.startswith(".") for n in names)


def test_pages_are_self_contained(report_dir):
    """No script, no external reference: every src is a data: URI, every href a page of
    the report or an anchor; a Content-Security-Policy forbids the rest."""
    for path in report_dir.glob("*.html"):
        elements = Elements(path.read_text())
        tags = [tag for tag, _ in elements.tags]
        assert "script" not in tags and "link" not in tags and "iframe" not in tags, path.name
        for tag, attrs in elements.tags:
            if "src" in attrs:
                assert attrs["src"].startswith("data:image/png;base64,"), (path.name, tag)
            if "href" in attrs:
                target = attrs["href"].split("#")[0]
                assert target == "" or (report_dir / target).is_file(), (path.name, attrs["href"])
        policy = [a["content"] for t, a in elements.tags
                  if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
        assert policy == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]


def test_markup_in_labels_and_errors_shows_as_text(report_dir):
    for path in report_dir.glob("*.html"):
        text = path.read_text()
        assert "<script" not in text.lower(), path.name
    index = (report_dir / "index.html").read_text()
    linreg = page(report_dir, "linreg")
    escaped = html.escape(MARKUP, quote=False)
    assert f"boom[message={escaped}]" in linreg  # the label
    assert f"RuntimeError: {escaped}" in index and f"RuntimeError: {escaped}" in linreg  # the error
    assert MARKUP in "".join(Elements(index).text)  # the reader sees the markup as text


# ------------------------------------------------------------------ numbers
def test_cells_are_mean_and_standard_error_over_seeds(results_dir):
    raw = pd.read_parquet(results_dir)
    raw = raw[(raw["task_label"] == "linreg") & (raw["label"] == "advi[steps=300]")]
    by_seed = raw.pivot_table(index="seed", columns="metric", values="value")
    found = cells(load_results(results_dir))
    gap = (by_seed["log_px"] - by_seed["elbo"]).to_numpy()
    cell = found[("linreg", "advi[steps=300]", "elbo_gap")]
    assert cell.n == 2 and cell.runs == 2 and not cell.failures
    assert cell.mean == pytest.approx(gap.mean(), rel=1e-12)
    assert cell.se == pytest.approx(abs(gap[0] - gap[1]) / 2, rel=1e-12)  # sd/√2 of two values
    for metric in ("khat", "mean_error", "time_fit_s"):
        values = by_seed[metric].to_numpy()
        cell = found[("linreg", "advi[steps=300]", metric)]
        assert cell.mean == pytest.approx(values.mean(), rel=1e-12)
        assert cell.se == pytest.approx(values.std(ddof=1) / math.sqrt(2), rel=1e-12)


def test_overview_grid_shows_every_task_and_method(report_dir, results_dir):
    index = (report_dir / "index.html").read_text()
    found = cells(load_results(results_dir))
    for task, method in [(t, m) for t in TASKS for m in METHODS[:2]] + [(TASKS[0], METHODS[2])]:
        assert f'href="{page_name(task)}"' in index
        cell = found[(task, method, "mean_error")]
        assert html.escape(plain(split_number(cell.mean, cell.se))) in index
    for heading in ("log p(x) − ELBO", "log p(x) (IS)", "k̂", "mean error", "sd error", "fit time (s)"):
        assert f"{heading}</h2>" in index or f"{heading} <span" in index
    # The smallest gap leads; it is bold only if it beats every other beyond their errors.
    gaps = {key: c for key, c in found.items() if key[0] == "linreg" and key[2] == "elbo_gap" and c.applicable}
    leader = min(gaps.values(), key=lambda c: c.mean)
    others = [c for c in gaps.values() if c is not leader]
    assert leader.best == all(separated(leader, c) for c in others) and (leader.best or leader.tied)
    shown = html.escape(plain(split_number(leader.mean, leader.se)))
    assert (f'class="num best">{shown}' if leader.best else f'class="num tie">{shown}≈') in index


def test_failed_nan_and_unreliable_runs_are_flagged_in_colour_and_words(report_dir, results_dir):
    index = (report_dir / "index.html").read_text()
    escaped = html.escape(f"failed: RuntimeError: {MARKUP}", quote=False)
    assert re.search(r'<td class="num failed">failed<span class="note">' + re.escape(escaped), index)
    assert '<td class="num failed">NaN<span class="note">NaN: non-finite parameters' in index
    results = load_results(results_dir)
    flags = results.metrics[(results.metrics["metric"] == "khat_flag") & (results.metrics["value"] >= 2)]
    assert len(flags), "mean-field ADVI on linreg (feature correlation 0.95) has an unreliable k-hat"
    for (task, label), group in flags.groupby(["task_label", "label"]):
        runs = (results.runs["task_label"] == task) & (results.runs["label"] == label)
        words = f"k̂ &gt; τ: unreliable ({len(group)} of {runs.sum()} seeds)"
        assert words in page(report_dir, task) and words in index
    assert 'class="num unreliable"' in index or 'class="num best unreliable"' in index


# ------------------------------------------------------------------ figures, SBC, environment
def embedded_pngs(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_task_pages_have_metrics_figures_and_runs(report_dir):
    for task in TASKS:
        text = page(report_dir, task)
        for anchor in ('id="metrics"', 'id="cost"', 'id="traces"', 'id="khat"', 'id="runs"'):
            assert anchor in text, (task, anchor)
        pngs = embedded_pngs(text)
        assert len(pngs) >= 3 and all(p.startswith(b"\x89PNG\r\n\x1a\n") and len(p) > 5000 for p in pngs)
        assert "Pareto front against gradient evaluations" in text
        assert ('id="draws"' in text) == (task == "gaussian[dim=2]")  # linreg has 6 dimensions


def test_a_2d_task_keeps_draws_and_its_page_plots_them(results_dir, report_dir):
    """Each ok run on gaussian[dim=2] keeps DRAWS_STORED draws, the task its reference
    draws; linreg (6-d) keeps none. The page's draws figure is one panel per method."""
    draws, reference = read_draws(results_dir), read_reference_draws(results_dir)
    runs = pd.read_parquet(results_dir).drop_duplicates("run_id")
    two_d = runs[(runs["task_label"] == "gaussian[dim=2]") & (runs["status"] == "ok")]
    assert set(draws["task_label"]) == {"gaussian[dim=2]"} and set(reference["task_label"]) == {"gaussian[dim=2]"}
    assert set(draws["run_id"]) == set(two_d["run_id"]) and len(two_d) == 4  # 2 methods × 2 seeds
    assert (draws.groupby("run_id").size() == 2 * DRAWS_STORED).all() and len(reference) == 2 * DRAWS_STORED
    text = page(report_dir, "gaussian[dim=2]")
    section = text[text.index('id="draws"'):text.index('id="runs"')]
    assert f"over {DRAWS_STORED} draws from the task&#39;s reference posterior (grey)" in section
    (png,) = embedded_pngs(section)
    height, width = mpimg.imread(io.BytesIO(png)).shape[:2]
    assert (width, height) == (round(2 * DRAWS_PANEL * DPI), round((DRAWS_PANEL + 0.4) * DPI))  # 2 panels


def test_a_failed_sbc_run_is_an_sbc_failure_not_a_benchmark_one(results_dir, report_dir):
    """The failing method failed once as a benchmark run and once as an SBC run, on the
    same task, label and seed: two runs, each counted and listed as what it was."""
    results = load_results(results_dir)
    label = FAILING
    assert results.runs.loc[results.runs["label"] == label, "kind"].tolist() == ["run"]
    sbc = results.sbc_runs[results.sbc_runs["label"] == label]
    assert sbc["kind"].tolist() == ["sbc"] and sbc["status"].tolist() == ["failed"]
    cell = cells(results)[("linreg", label, "elbo")]
    assert cell.runs == 1 and cell.failed  # the grid holds the benchmark run only
    index = (report_dir / "index.html").read_text()
    failed = index[index.index('id="failed"'):index.index('id="environment"')]
    escaped = html.escape(label, quote=False)
    assert f'<a href="linreg.html#runs">linreg</a></td><td>benchmark</td><td>{escaped}</td>' in failed
    assert f'<a href="linreg.html#sbc">linreg</a></td><td>SBC</td><td>{escaped}</td>' in failed
    sbc_table = index[index.index('<h2 id="sbc">'):index.index('id="failed"')]
    assert escaped in sbc_table and f"failed: RuntimeError: {html.escape(MARKUP, quote=False)}" in sbc_table
    linreg = page(report_dir, "linreg")
    assert f"<h3>{escaped} (seed 0" in linreg[linreg.index('id="sbc"'):linreg.index('id="runs"')]


def test_a_results_dir_of_schema_1_without_draws_still_reports(results_dir, tmp_path):
    """Files written before ``kind`` and kept draws: runs are told apart by their rows
    (the failed SBC run, which has none, reads as a benchmark run), and the pages say
    nothing about draws."""
    table = pq.read_table(results_dir).drop_columns(["kind"])
    table = table.set_column(0, "schema_version", pa.array([1] * len(table), pa.int32()))
    pq.write_table(table, tmp_path / "runs-old.parquet")
    for side in ("_traces", "_sbc"):
        shutil.copytree(results_dir / side, tmp_path / side)
    results, new = load_results(tmp_path), load_results(results_dir)
    assert set(results.sbc_runs["run_id"]) == set(new.sbc_runs.loc[new.sbc_runs["status"] == "ok", "run_id"])
    failed_sbc = set(new.sbc_runs.loc[new.sbc_runs["status"] != "ok", "run_id"])
    # ... and, as a benchmark run with the same task, label and seed, replaces the earlier one.
    replaced = set(new.runs.loc[new.runs["label"] == FAILING, "run_id"])
    assert set(results.runs["run_id"]) == (set(new.runs["run_id"]) - replaced) | failed_sbc
    assert results.draws.empty and results.reference_draws.empty
    pages = build_report(tmp_path, tmp_path / "html")
    assert len(pages) == 1 + len(TASKS)
    assert not any('id="draws"' in p.read_text() for p in pages)


def test_sbc_results_are_shown(report_dir):
    linreg = page(report_dir, "linreg")
    assert 'id="sbc"' in linreg and "SBC of exact on linreg: 20 replicates, 9 draws" in linreg
    assert "verdict:" in linreg
    assert len(embedded_pngs(linreg)) >= 5  # cost, traces, k-hat, rank histograms, ECDF
    index = (report_dir / "index.html").read_text()
    assert 'href="linreg.html#sbc"' in index
    assert 'id="sbc"' not in page(report_dir, "gaussian[dim=2]")


def test_environment_is_recorded(report_dir):
    index = (report_dir / "index.html").read_text()
    assert f"jax {importlib.metadata.version('jax')}" in index
    assert f"numpyro {importlib.metadata.version('numpyro')}" in index
    assert "cpu:" in index and 'id="environment"' in index


# ------------------------------------------------------------------ pieces
def test_draws_figure_shares_axes_and_shows_every_draw():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(300, 2))
    panels = [DrawPanel("a", 0, rng.normal(size=(200, 2)) + 3.0), DrawPanel("b$", 2, rng.normal(size=(50, 2)))]
    fig = draws_figure(panels, reference, ["a", "b$"])
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == ["a (seed 0)", r"b\$ (seed 2)"]
    for ax, panel in zip(axes, panels):
        grey, mine = ax.collections
        np.testing.assert_array_equal(grey.get_offsets(), reference)
        np.testing.assert_array_equal(mine.get_offsets(), panel.values)
        assert ax.get_xlim() == axes[0].get_xlim() and ax.get_ylim() == axes[0].get_ylim()
    limits = draws_limits([p.values for p in panels] + [reference])
    assert axes[0].get_xlim() == tuple(limits[0]) and axes[0].get_ylim() == tuple(limits[1])
    pooled = np.concatenate([p.values for p in panels] + [reference])
    # at most 0.5% of the draws fall below each coordinate's 0.5% quantile, 0.5% above its 99.5%
    assert ((pooled >= limits[:, 0]) & (pooled <= limits[:, 1])).all(axis=1).mean() >= 1 - 2 * 0.01
    far = draws_limits([p.values for p in panels] + [np.vstack([reference, [[1e6, -1e6]]])])
    assert (np.ptp(far, axis=1) < 1.2 * np.ptp(pooled, axis=0)).all()  # one far draw does not widen the axes
    one_d = draws_figure([DrawPanel("a", 0, panels[0].values[:, :1])], reference[:, :1], ["a"])
    (ax,) = [ax for ax in one_d.axes if ax.axison]
    bars = [patch.get_height() for patch in ax.patches[:-1]]  # the reference's; the last: q's step line
    one_d_limits = draws_limits([panels[0].values[:, :1], reference[:, :1]])
    expected, _ = np.histogram(reference[:, 0], np.linspace(*one_d_limits[0], 41), density=True)
    np.testing.assert_allclose(bars, expected, rtol=1e-12)


def test_pareto_front():
    cost = np.array([1.0, 2.0, 3.0, 2.0, np.nan, 1.0])
    error = np.array([5.0, 3.0, 1.0, 4.0, 0.0, 5.0])
    # (2, 4) is beaten by (2, 3); a non-finite point is never on the front; ties both stay.
    np.testing.assert_array_equal(pareto_front(cost, error), [True, True, True, False, False, True])
    np.testing.assert_array_equal(pareto_front(np.array([1.0, 2.0]), np.array([1.0, 2.0])), [True, False])


def test_reruns_count_once_the_latest(results_dir, tmp_path):
    """A rerun of the same task, label and seed replaces the earlier run."""
    table = pd.read_parquet(results_dir)
    run = table[(table["task_label"] == "linreg") & (table["label"] == "advi[steps=300]") & (table["seed"] == 0)]
    rerun = run.assign(run_id="rerun", timestamp=run["timestamp"] + pd.Timedelta(hours=1))
    rerun.loc[rerun["metric"] == "mean_error", "value"] = 123.0
    for i, frame in enumerate((table, rerun)):
        pq.write_table(pa.Table.from_pandas(frame, schema=METRICS_SCHEMA, preserve_index=False),
                       tmp_path / f"runs-{i}.parquet")
    found = cells(load_results(tmp_path))
    cell = found[("linreg", "advi[steps=300]", "mean_error")]
    other = table[(table["task_label"] == "linreg") & (table["label"] == "advi[steps=300]")
                  & (table["seed"] == 1) & (table["metric"] == "mean_error")]["value"].iloc[0]
    assert cell.n == 2 and cell.mean == pytest.approx((123.0 + other) / 2)


def test_cli_report(results_dir, tmp_path, capsys):
    out = tmp_path / "html"
    assert main(["report", str(results_dir), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert (out / "index.html").is_file() and (out / page_name("gaussian[dim=2]")).is_file()
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "unwritten")]) == 2
    assert "is not a vibench results directory (not found" in capsys.readouterr().err
    assert not (tmp_path / "unwritten").exists()


# ------------------------------------------------------------------ hand-built stores
def hand_built(out: Path, task: str = "t", device: str = "cpu:cpu", labels=("a", "b"), elbo=(-10.0, -10.2)) -> Path:
    """One run per label on ``task`` and ``device``, the headline metrics with standard errors."""
    rows = []
    for label, value in zip(labels, elbo):
        base = {name: None for name in METRICS_SCHEMA.names}
        base.update(schema_version=2, kind="run", run_id=f"{task}-{label}-{device}", task=task, task_label=task,
                    task_version="1", method=label, label=label, seed=0, status="ok", error="", stop_reason="",
                    device=device, host="h", git_commit="c", versions="{}", config="{}",
                    timestamp=pd.Timestamp.now(tz="UTC"))
        metrics = {"elbo": (value, 0.1), "log_px": (-9.0, 0.0), "khat": (0.3, 0.01), "khat_flag": (0.0, 0.0),
                   "mean_error": (0.1, 0.01), "time_fit_s": (1.0, 0.0), "grad_evals": (100.0, 0.0)}
        rows += [{**base, "metric": m, "value": v, "stderr": se} for m, (v, se) in metrics.items()]
    append_runs(out, rows, [])
    return out


def test_report_reads_past_stray_and_corrupt_files(tmp_path, capsys):
    """Notes, a README, a report written into the results directory, a corrupt metrics
    file and a corrupt reference file: exit 0, one one-line warning per corrupt file."""
    results = hand_built(tmp_path / "results")
    (results / "notes.txt").write_text("a note")
    (results / "README.md").write_text("# results\n")
    assert main(["report", str(results), "-o", str(results)]) == 0  # a report written into it
    (results / "runs-corrupt.parquet").write_bytes(b"PAR1 torn")
    (results / "_reference").mkdir()
    (results / "_reference" / "reference-corrupt.parquet").write_bytes(b"junk")
    capsys.readouterr()
    assert main(["report", str(results), "-o", str(tmp_path / "html")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vibench: warning:")]
    assert len(warnings) == 2
    assert "runs-corrupt.parquet" in warnings[0] and "reference-corrupt.parquet" in warnings[1]
    assert main(["table", str(results)]) == 0
    assert len([line for line in capsys.readouterr().err.splitlines() if "skipped" in line]) == 2


def test_report_of_a_foreign_parquet_is_one_line_and_writes_nothing(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), foreign / "data.parquet")
    for path in (foreign, foreign / "data.parquet"):
        out = tmp_path / "html"
        assert main(["report", str(path), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a vibench results directory" in err
        assert not out.exists()


def test_a_nested_results_directory_is_not_mixed_in(tmp_path, capsys):
    results = hand_built(tmp_path / "results", task="t")
    hand_built(results / "gpu", task="u", device="gpu:H200")
    assert main(["report", str(results), "-o", str(tmp_path / "html")]) == 0
    assert f"not read: {results / 'gpu'}/" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == ["index.html", "t.html"]


def test_runs_on_two_devices_are_two_entries_and_ties_are_marked(tmp_path):
    """The same label and seed on cpu and gpu are two columns; ELBOs -10.0 and -10.2 ± 0.1
    (0.2 < 2·√2·0.1) tie: marked ≈ in the grid, not bold."""
    results = hand_built(tmp_path / "results", device="cpu:cpu")
    hand_built(results, device="gpu:H200", labels=("a",), elbo=(-12.0,))
    found = cells(load_results(results))
    assert found[("t", "a (cpu:cpu)", "elbo")].tied and found[("t", "b", "elbo")].tied
    assert found[("t", "a (gpu:H200)", "elbo")].standing == ""
    build_report(results, tmp_path / "html")
    index = (tmp_path / "html" / "index.html").read_text()
    for entry in ("a (cpu:cpu)", "a (gpu:H200)", "b"):
        assert f"<th>{entry}</th>" in index
    text = (tmp_path / "html" / "t.html").read_text()
    assert 'class="num tie">-10.00 ± 0.10≈' in text and 'class="num tie">-10.20 ± 0.10≈' in text
