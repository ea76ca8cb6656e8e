"""The command line: bad input is a one-line error with the valid choices, exit 2, and
nothing written; a run writes one tidy table, and a second run appends to it."""

from __future__ import annotations

import subprocess
import sys

import jax
import pandas as pd
import pytest

from vibench.cli import main

REQUIRED = {"task", "method", "label", "seed", "metric", "value", "stderr", "status",
            "config", "schema_version", "kind", "versions", "device", "git_commit", "timestamp"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--task", "ppcaa"], "unknown task 'ppcaa'; valid: banana, funnel, gaussian, "),
        (["run", "--task", "ppca", "--method", "adv"], "unknown method 'adv'; valid: advi, amortized, bbvi, cavi"),
        (["run", "--task", "ppca", "--method", "advi[stepz=3]"], "unknown parameter 'stepz' for method advi"),
        (["run", "--task", "gaussian[dims=3]"], "unknown parameter 'dims' for task gaussian; valid: dim, rho"),
        (["run", "--task", "gaussian", "--method", "cavi[tol=abc]"], "tol must be a finite number"),
        (["run", "--task", "funnel", "--method", "cavi"], "does not support task funnel"),
        (["run", "--task", "linreg", "--seeds", "0"], "--seeds must be between 1 and 10000; got 0"),
        (["run", "--task", "linreg", "--budget", "0"], "--budget must be between 1 and 1000000000000; got 0"),
        (["run", "--task", "linreg", "--method", "nuts", "--budget", "100"], "method nuts needs a budget of at least 12004 gradient evaluations"),
        (["reference", "--task", "nosuch"], "unknown task 'nosuch'; valid: banana"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vibench: error: ") and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.skipif(bool(jax.devices("gpu") if jax.default_backend() == "gpu" else []),
                    reason="a GPU is present")
def test_gpu_requested_without_one(tmp_path, capsys):
    assert main(["run", "--task", "linreg", "--device", "gpu", "--out", str(tmp_path / "o")]) == 2
    assert "no gpu device visible to JAX; valid here: cpu" in capsys.readouterr().err


def test_run_writes_then_appends(tmp_path, capsys):
    out = tmp_path / "res"
    argv = ["run", "--task", "linreg", "--method", "advi[steps=50]", "--method", "cavi",
            "--out", str(out), "--draws", "256"]
    assert main(argv) == 0
    summary = capsys.readouterr().out
    assert "linreg / advi[steps=50]" in summary and "linreg / cavi" in summary
    first = pd.read_parquet(out)
    assert REQUIRED <= set(first.columns)
    assert set(first["label"]) == {"advi[steps=50]", "cavi"}
    assert (first["status"] == "ok").all() and (first["device"] == "cpu:cpu").all()
    assert (first["kind"] == "run").all()
    assert not (out / "_draws").exists() and not (out / "_reference").exists()  # linreg has 6 dimensions
    assert main([*argv, "--seeds", "2"]) == 0
    both = pd.read_parquet(out)
    assert len(both) > len(first) and set(both["seed"]) == {0, 1}
    assert both["run_id"].nunique() == 2 + 4


def test_budget_caps_every_method(tmp_path):
    out = tmp_path / "res"
    argv = ["run", "--task", "linreg", "--method", "advi", "--method", "nuts", "--budget", "12004",
            "--out", str(out), "--draws", "256"]
    assert main(argv) == 0
    table = pd.read_parquet(out)
    evals = table[table["metric"] == "grad_evals"].set_index("method")["value"]
    assert (evals <= 12004).all() and set(evals.index) == {"advi", "nuts"}
    assert "advi[steps=1500]" in set(table["label"])  # 12004 evaluations / 8 draws per step
    # NUTS's smallest budget: warm-up and sampling both fit, at tree depth 4.
    assert "nuts[num_warmup=100,num_samples=100,max_tree_depth=4,max_grad_evals=12004]" in set(table["label"])
    assert set(table["status"]) == {"ok"}


def test_list(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "tasks:" in text and "ppca" in text and "methods:" in text and "nuts" in text


FAILING_METHOD = '''
"""A method whose fit raises: its run is a failed row."""
from dataclasses import dataclass

from vibench.declarations import Method


@dataclass(frozen=True)
class BrokenConfig:
    pass


def fit(task, logdensity, data, key, config):
    raise RuntimeError("this method always fails")


broken = Method(name="broken", version="0", Config=BrokenConfig, fit=fit, jittable=False, doc=__doc__)
'''


def test_a_failed_run_is_written_listed_and_exits_1(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(FAILING_METHOD)
    out = tmp_path / "res"
    code = main(["run", "--task", "linreg", "--method", "broken", "--method", "cavi",
                 "--plugins", str(plugins), "--out", str(out), "--draws", "256"])
    assert code == 1
    captured = capsys.readouterr()
    assert "this method always fails" in captured.out and "did not finish ok" in captured.err
    table = pd.read_parquet(out)
    assert set(table.drop_duplicates("run_id")["status"]) == {"ok", "failed"}


def test_out_is_checked_before_any_fit(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    argv = ["run", "--task", "linreg", "--method", "cavi"]
    assert main([*argv, "--out", str(a_file)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert main([*argv, "--out", str(a_file / "below")]) == 2
    assert "is not a writable directory" in capsys.readouterr().err
    outer = tmp_path / "results"
    assert main([*argv, "--out", str(outer), "--draws", "256"]) == 0
    capsys.readouterr()
    assert main([*argv, "--out", str(outer / "gpu")]) == 2
    assert "inside the results directory" in capsys.readouterr().err and not (outer / "gpu").exists()
    assert main([*argv, "--out", str(outer / "gpu"), "--nested", "--draws", "256"]) == 0
    assert a_file.read_text() == "not a directory"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "1000000000000"], "--seeds must be between 1 and 10000"),
        (["--draws", "1"], "--draws must be between 2"),
        (["--budget", "10000000000000"], "--budget must be between 1"),
    ],
)
def test_counts_are_bounded(argv, message, tmp_path, capsys):
    assert main(["run", "--task", "linreg", *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_bad_names_are_answered_without_importing_jax():
    """The answer comes from the JAX-free declarations (importing JAX alone takes about a
    second); benchmarks/test_bench_cli.py times it."""
    code = (
        "import sys; from vibench.cli import main; "
        "assert main(['run', '--task', 'nosuch']) == 2; "
        "assert main(['run', '--task', 'ppca', '--method', 'advi[steps=0]']) == 2; "
        "assert main(['list']) == 0; "
        "heavy = [m for m in ('jax', 'numpyro', 'arviz', 'pandas', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "unknown task 'nosuch'" in done.stderr


def test_list_and_show_give_every_parameter(capsys):
    assert main(["list", "methods"]) == 0
    listing = capsys.readouterr().out
    assert "steps" in listing and "2000" in listing and "meanfield|fullrank|lowrank" in listing
    assert main(["show", "advi"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("method advi (version") and "sticking-the-landing" in shown
    assert main(["show", "nosuch"]) == 2
    assert "no task or method 'nosuch'; valid: advi, " in capsys.readouterr().err


def test_summary_has_a_legend_and_the_tasks_headline_metrics(tmp_path, capsys):
    assert main(["run", "--task", "mixture", "--method", "advi[steps=100]", "--out", str(tmp_path / "r"),
                 "--draws", "256"]) == 0
    summary = capsys.readouterr().out
    assert "mode coverage ↑" in summary and "log p(x) − ELBO ↓" in summary
    assert "± 0: exact" in summary and "± nan" in summary
