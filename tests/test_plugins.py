"""Plug-ins: a task or method defined outside vibench runs without editing vibench."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from vibench.cli import main
from vibench.registry import discover

PLUGIN_METHOD = '''
"""A user's own method: a fixed standard normal q (it learns nothing)."""
from dataclasses import dataclass

import jax.numpy as jnp

from vibench.core import Approximation
from vibench.declarations import Method
from vibench.families.gaussian import MeanField


@dataclass(frozen=True)
class PriorGuessConfig:
    scale: float = 1.0


def fit(task, logdensity, data, key, config):
    loc = jnp.zeros(logdensity.dim)
    return Approximation(
        params={"loc": loc, "log_scale": jnp.full_like(loc, jnp.log(config.scale))},
        trace=jnp.zeros(1),
        grad_evals=jnp.asarray(0),
        family=MeanField(),
    )


prior_guess = Method(
    name="prior_guess", version="0", Config=PriorGuessConfig,
    supports=lambda task: (True, ""), fit=fit, doc=__doc__,
)
'''


@pytest.fixture
def plugin_dir(tmp_path):
    folder = tmp_path / "myplugins"
    folder.mkdir()
    (folder / "prior_guess.py").write_text(PLUGIN_METHOD)
    (folder / "_private.py").write_text("raise RuntimeError('files starting with _ are skipped')")
    return folder


def test_plugin_method_runs_through_the_cli(plugin_dir, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["run", "--task", "linreg", "--method", "prior_guess[scale=0.5]",
                 "--plugins", str(plugin_dir), "--out", str(out), "--draws", "256"])
    assert code == 0
    table = pd.read_parquet(out)
    assert set(table["label"]) == {"prior_guess[scale=0.5]"}
    assert (table["status"] == "ok").all()
    assert "elbo" in set(table["metric"])
    assert "prior_guess" in capsys.readouterr().out


def test_plugin_listed_and_unknown_without_it(plugin_dir, capsys):
    assert main(["list", "methods", "--plugins", str(plugin_dir)]) == 0
    assert "prior_guess" in capsys.readouterr().out
    assert main(["run", "--task", "linreg", "--method", "prior_guess"]) == 2


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    # An installed package declares its module in the ``vibench.plugins`` group.
    (tmp_path / "vb_ext_demo.py").write_text(PLUGIN_METHOD.replace("prior_guess", "ep_guess"))
    dist = tmp_path / "vb_ext_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vb-ext-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [vibench.plugins]
        demo = vb_ext_demo
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep_guess" in discover().methods


BROKEN = {
    "broken_import.py": ("import no_such_module_anywhere\n", "cannot be imported: ModuleNotFoundError"),
    "advi_again.py": (PLUGIN_METHOD.replace('name="prior_guess"', 'name="advi"'), "'advi' is already registered"),
    "bad_name.py": (PLUGIN_METHOD.replace('name="prior_guess"', 'name="two words"'), "is not a valid name"),
    "syntax.py": ("def (:\n", "cannot be imported: SyntaxError"),
}


@pytest.fixture
def broken_dir(plugin_dir):
    for name, (text, _) in BROKEN.items():
        (plugin_dir / name).write_text(text)
    return plugin_dir


def test_broken_plugins_are_one_line_each_and_the_rest_runs(broken_dir, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["run", "--task", "linreg", "--method", "prior_guess", "--method", "cavi",
                 "--plugins", str(broken_dir), "--out", str(out), "--draws", "256"])
    assert code == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vibench: warning:")]
    assert len(warnings) == len(BROKEN)
    for name, (_, problem) in BROKEN.items():
        [line] = [w for w in warnings if name in w]
        assert problem in line
    table = pd.read_parquet(out)
    assert set(table["label"]) == {"prior_guess", "cavi"} and (table["status"] == "ok").all()
    registry = discover((broken_dir,))
    assert registry.methods["advi"].fit.target == "vibench.methods._advi:fit"  # the built-in stays


def test_plugin_text_is_sanitized_and_long_names_cut(plugin_dir, capsys):
    doc = '"""Evil\x1b[2J doc\x07 line."""'
    (plugin_dir / "prior_guess.py").write_text(PLUGIN_METHOD.replace(
        '"""A user\'s own method: a fixed standard normal q (it learns nothing)."""', doc))
    assert main(["list", "methods", "--plugins", str(plugin_dir)]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x07" not in text and "Evil\\x1b[2J doc" in text
    assert main(["run", "--task", "linreg", "--method", "m" * 100_000]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1000 and "more characters" in err
