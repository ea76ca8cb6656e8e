"""The command line: bad input is a one-line error with the valid choices, exit 2, and
nothing written; a run writes one tidy table, and a second run appends to it."""

from __future__ import annotations

import jax
import pandas as pd
import pytest

from vibench.cli import main

REQUIRED = {"task", "method", "label", "seed", "metric", "value", "stderr", "status",
            "config", "schema_version", "kind", "versions", "device", "git_commit", "timestamp"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--task", "ppcaa"], "unknown task 'ppcaa'; valid: banana, funnel, gaussian, linreg"),
        (["run", "--task", "ppca", "--method", "adv"], "unknown method 'adv'; valid: advi, bbvi, cavi"),
        (["run", "--task", "ppca", "--method", "advi[stepz=3]"], "unknown parameter 'stepz' for method advi"),
        (["run", "--task", "gaussian[dims=3]"], "unknown parameter 'dims' for task gaussian; valid: dim, rho"),
        (["run", "--task", "gaussian", "--method", "cavi[tol=abc]"], "tol must be a finite number"),
        (["run", "--task", "funnel", "--method", "cavi"], "does not support task funnel"),
        (["run", "--task", "linreg", "--seeds", "0"], "--seeds must be at least 1"),
        (["run", "--task", "linreg", "--budget", "0"], "--budget must be at least 1"),
        (["run", "--task", "linreg", "--method", "nuts", "--budget", "100"], "method nuts needs a budget of at least 12004 gradient evaluations"),
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
    argv = ["run", "--task", "linreg", "--method", "advi", "--method", "nuts", "--budget", "8000",
            "--out", str(out), "--draws", "256"]
    assert main(argv) == 0
    table = pd.read_parquet(out)
    evals = table[table["metric"] == "grad_evals"].set_index("method")["value"]
    assert (evals <= 8000).all() and set(evals.index) == {"advi", "nuts"}
    assert "advi[steps=1000]" in set(table["label"])  # 8000 evaluations / 8 draws per step
    # NUTS's warm-up (500 iterations) spends the whole budget here: an honest failure row.
    nuts = table[table["method"] == "nuts"]
    assert set(nuts["status"]) == {"failed"} and "no draws" in nuts["error"].iloc[0]


def test_list(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "tasks:" in text and "ppca" in text and "methods:" in text and "nuts" in text
