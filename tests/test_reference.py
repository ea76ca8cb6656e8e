"""Stored references: a reference of an exact target made by ``vibench reference`` against
its closed form, the refusal of missing, tampered, stale, unknown and failed artifacts,
and the CLI.

The reference is the command's default run, posteriordb's full bar: 4 chains x 2500
draws after 1000 warm-up (about 30 s of CPU, once per module). Tolerances: a stored
mean or sd must lie within Z = 4 of its MCSE of the exact value, per coordinate
(two-sided normal tail 6e-5, so about 0.6 % over the 100 moments), and at most 5 % of
the 100 standardized errors may exceed 3 (0.27 % each for a calibrated MCSE; the
coordinates are correlated at rho = 0.95, so their errors move together and the count
is far from binomial: the bound is loose on purpose).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from vibench.metrics.accuracy import standardized_mean_error
from vibench.reference import command
from vibench.reference.artifact import (
    DRAWS,
    MANIFEST,
    SUMMARY,
    CorruptReferenceError,
    FailedReferenceError,
    MissingReferenceError,
    StaleReferenceError,
    UnknownFormatError,
    artifact_path,
    load_reference,
    manifest_checksum,
    read_artifact,
    write_reference,
)
from vibench.reference.summary import Criteria, CriteriaError, ReferenceRun, summarize

SPEC = "gaussian[dim=50,rho=0.95]"
Z = 4.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vibench")
    command.add_parser(parser.add_subparsers(dest="command", required=True), [])
    return parser.parse_args(argv)


def standardized_errors(reference, exact) -> np.ndarray:
    """(stored − exact) / MCSE for every coordinate's mean and sd."""
    mean_z = (np.asarray(reference.mean) - np.asarray(exact.mean)) / np.asarray(reference.mean_se)
    std_z = (np.asarray(reference.std) - np.asarray(exact.std)) / np.asarray(reference.std_se)
    return np.concatenate([mean_z, std_z])


@pytest.fixture(scope="module")
def stored(registry, tmp_path_factory) -> Path:
    """The artifact ``vibench reference --task SPEC`` writes with its defaults."""
    root = tmp_path_factory.mktemp("references")
    assert command.run(parse(["reference", "--task", SPEC, "--out", str(root)]), registry) == 0
    return artifact_path(root, registry.task(SPEC))


@pytest.fixture(scope="module")
def stored_run(stored) -> ReferenceRun:
    """The stored run again, as a :class:`ReferenceRun` to re-judge."""
    artifact = read_artifact(stored)
    return ReferenceRun(
        label=artifact.manifest["task"]["label"],
        version=artifact.manifest["task"]["version"],
        draws=artifact.draws,
        divergences=artifact.summary["diagnostics"]["divergences"],
        summary=summarize(artifact.draws),
        provenance=artifact.provenance,
    )


@pytest.fixture
def copy(stored, tmp_path) -> Path:
    """A private copy of the stored artifact, free to tamper with."""
    return Path(shutil.copytree(stored, tmp_path / stored.name))


def edit_manifest(path: Path, edit, rechecksum: bool = False) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    edit(manifest)
    if rechecksum:
        manifest["checksum"] = manifest_checksum(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_stored_reference_meets_the_bar_and_matches_the_closed_form(registry, stored):
    task = registry.task(SPEC)
    summary = json.loads((stored / SUMMARY).read_text())
    diagnostics = summary["diagnostics"]
    assert summary["passed"] and all(check["passed"] for check in summary["checks"])
    assert diagnostics["draws"] == 10_000 and diagnostics["divergences"] == 0
    assert max(diagnostics["rhat"]) < 1.01
    assert min(diagnostics["ess_bulk"]) >= 400 and min(diagnostics["ess_tail"]) >= 400
    reference = load_reference(stored, task)
    assert not reference.exact
    z = standardized_errors(reference, task.reference)
    assert np.all(np.abs(z) < Z), f"largest |standardized error| {np.max(np.abs(z)):.2f}"
    assert np.mean(np.abs(z) > 3) <= 0.05
    assert "4 chains x 2500 draws after 1000 warm-up" in reference.provenance
    provenance = json.loads((stored / "provenance.json").read_text())
    assert provenance["task"] == {"label": SPEC, "version": task.version}
    assert provenance["precision"] == "float64" and jnp.ones(1).dtype == jnp.float32  # x64 for the run only
    assert {"jax", "numpyro", "arviz", "vibench"} <= provenance["versions"].keys()
    assert provenance["vibench_commit"] and provenance["created"]


def test_sampler_draws_the_stored_draws(registry, stored_run, stored):
    reference = load_reference(stored, registry.task(SPEC))
    pooled = stored_run.draws.reshape(-1, 50)
    few = np.asarray(reference.sample(jax.random.key(1), 1000), np.float64)
    rows = {row.tobytes() for row in pooled.astype(np.float32).astype(np.float64)}
    assert len({row.tobytes() for row in few}) == 1000  # without replacement
    assert all(row.tobytes() in rows for row in few)
    assert reference.sample(jax.random.key(2), 3 * len(pooled)).shape == (3 * len(pooled), 50)


def test_a_run_uses_a_stored_reference_in_place_of_its_own(registry, stored):
    """The documented way: ``replace(task, reference=load_reference(...))``; metrics then
    carry the stored reference's MCSE (here the exact posterior mean scored against it)."""
    exact_task = registry.task(SPEC)
    task = replace(exact_task, reference=load_reference(artifact_path(stored.parent, exact_task), exact_task))
    assert task.reference.gaussian is None and task.reference.mean_se is not None
    exact_mean = np.asarray(exact_task.reference.mean, np.float64)
    error = standardized_mean_error(exact_mean, np.zeros(50), task.reference)
    noise = np.asarray(task.reference.mean_se) / np.asarray(task.reference.std)
    assert error.value < Z * np.sqrt(np.mean(noise**2)) and error.stderr > 0


def test_a_run_that_misses_the_bar_is_not_written(stored_run, tmp_path):
    assert stored_run.passed, stored_run.failures()
    with pytest.raises(CriteriaError, match=r"rhat_max = 1\.\d+ \(needs < 1\): FAILED"):
        write_reference(replace(stored_run, criteria=Criteria(max_rhat=1.0)), tmp_path)
    with pytest.raises(CriteriaError, match=r"not written: draws = 10000 \(needs >= 20000\): FAILED$"):
        write_reference(replace(stored_run, criteria=Criteria(min_draws=20_000)), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_kept_failed_run_is_refused_unless_accepted(registry, stored_run, tmp_path):
    task = registry.task(SPEC)
    failed = replace(stored_run, criteria=Criteria(min_draws=20_000))
    path = write_reference(failed, tmp_path, keep_failed=True)
    assert json.loads((path / MANIFEST).read_text())["passed"] is False
    with pytest.raises(FailedReferenceError, match=r"draws = 10000 \(needs >= 20000\)"):
        load_reference(path, task)
    assert load_reference(path, task, accept_failed=True).mean.shape == (50,)


def test_one_changed_byte_of_the_draws_is_refused(registry, copy):
    data = bytearray((copy / DRAWS).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / DRAWS).write_bytes(bytes(data))
    with pytest.raises(CorruptReferenceError, match="draws.npz does not match its sha256"):
        load_reference(copy, registry.task(SPEC))


def test_an_edited_manifest_is_refused(registry, copy):
    edit_manifest(copy, lambda m: m["task"].update(version="2"))
    with pytest.raises(CorruptReferenceError, match="manifest.json was edited"):
        load_reference(copy, registry.task(SPEC))


def test_an_artifact_of_another_task_version_is_stale(registry, stored, copy):
    task = registry.task(SPEC)
    with pytest.raises(StaleReferenceError, match=r"version 1, not gaussian\[dim=50,rho=0.95\] version 2"):
        load_reference(stored, replace(task, version="2"))
    # a forger who also rewrites the manifest's checksum still cannot pass it off
    edit_manifest(copy, lambda m: m["task"].update(version="2"), rechecksum=True)
    with pytest.raises(StaleReferenceError, match="version 2, not"):
        load_reference(copy, task)
    with pytest.raises(StaleReferenceError, match=r"not gaussian\[dim=49,rho=0.95\] version 1"):
        load_reference(stored, replace(task, label="gaussian[dim=49,rho=0.95]"))
    # a task whose code changed without a version bump: caught by its dimension
    other_model = replace(registry.task("gaussian[dim=2]"), label=SPEC)
    with pytest.raises(StaleReferenceError, match="has 50 coordinates; task .* has 2"):
        load_reference(stored, other_model)


def test_missing_files_are_refused(registry, copy, tmp_path):
    task = registry.task(SPEC)
    (copy / SUMMARY).unlink()
    with pytest.raises(CorruptReferenceError, match="summary.json is missing"):
        load_reference(copy, task)
    with pytest.raises(MissingReferenceError, match="manifest.json not found"):
        load_reference(tmp_path / "nowhere", task)


def test_an_unknown_format_version_is_refused(registry, copy):
    edit_manifest(copy, lambda m: m.update(format_version=99), rechecksum=True)
    with pytest.raises(UnknownFormatError, match="version 99 is unknown; this vibench reads version 1"):
        load_reference(copy, registry.task(SPEC))


def test_cli_rejects_bad_input(registry, tmp_path, capsys):
    assert command.run(parse(["reference", "--task", "nosuch", "--out", str(tmp_path)]), registry) == 2
    assert "unknown task 'nosuch'; valid:" in capsys.readouterr().err
    assert command.run(parse(["reference", "--task", SPEC, "--draws", "0"]), registry) == 2
    assert "--draws must be at least 4; got 0" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert command.run(parse(["reference", "--task", SPEC, "--out", str(tmp_path / "file")]), registry) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    (tmp_path / "file").unlink()
    assert list(tmp_path.iterdir()) == []


def test_cli_module_imports_no_jax():
    code = "import sys, vibench.reference.command; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_writes_nothing_when_the_bar_is_missed(registry, tmp_path, capsys):
    args = parse(["reference", "--task", "gaussian[dim=2]", "--out", str(tmp_path),
                  "--chains", "2", "--draws", "100", "--warmup", "100"])
    assert command.run(args, registry) == 1
    out, err = capsys.readouterr()
    assert "draws = 200 (needs >= 10000): FAILED" in out
    assert "not written: draws = 200" in err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_vibench_run_measures_against_stored_references(registry, stored, copy, tmp_path, capsys):
    """``vibench run --references DIR``: a task with an artifact in DIR is measured against
    it (no exact KL or evidence then: the stored reference has neither); a tampered one is
    refused before anything runs."""
    from vibench.cli import main

    out = tmp_path / "res"
    argv = ["run", "--task", SPEC, "--method", "advi[steps=200]", "--draws", "256"]
    assert main([*argv, "--references", str(stored.parent), "--out", str(out)]) == 0
    metrics = set(pd.read_parquet(out)["metric"])
    assert "mean_error" in metrics and not {"kl", "log_px"} & metrics
    (copy / "draws.npz").write_bytes(b"tampered")
    assert main([*argv, "--references", str(copy.parent), "--out", str(tmp_path / "other")]) == 2
    assert "vibench: error: " in capsys.readouterr().err and not (tmp_path / "other").exists()
