"""Stored references: one directory per (task label, task version), checked on load.

Layout of ``ROOT/<artifact_name(label, version)>/`` (format version 1):

- ``draws.npz``: the draws after warm-up, array ``draws`` of shape ``(chains, n, dim)``
  in the task's flat unconstrained space (float64);
- ``summary.json``: ``moments`` (per coordinate ``mean``, ``std``, ``mean_se``,
  ``std_se``), ``diagnostics`` (per coordinate ``rhat``, ``ess_bulk``, ``ess_tail``;
  ``divergences``, ``draws``), the ``criteria`` and their ``checks``, and ``passed``;
- ``provenance.json``: how the draws were computed (sampler, chains, warm-up, draws,
  seed, mass matrix, precision, cost), the task's label and version, library versions,
  vibench's git commit and the date;
- ``manifest.json``: ``format``, ``format_version``, ``task`` (label and version),
  ``passed``, ``files`` (the sha256 of each payload file) and ``checksum``, the sha256
  of the canonical JSON of all the other manifest fields, so editing any byte of the
  payload or any field of the manifest is detected.

:func:`load_reference` refuses, with a one-line :class:`ReferenceArtifactError` (a
``ValueError``), an artifact that is missing (:class:`MissingReferenceError`), of an
unknown format (:class:`UnknownFormatError`), altered or incomplete
(:class:`CorruptReferenceError`), made for another task label, task version or
dimension (:class:`StaleReferenceError`), or stored although it failed its criteria
(:class:`FailedReferenceError`, unless ``accept_failed``). Writes go to a staging
directory renamed into place, so a reader never sees half an artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vibench.core import Array, PRNGKey, Reference, Task
from vibench.data.files import sha256_file
from vibench.logdensity import derive_logdensity
from vibench.reference.summary import DIAGNOSTICS, MOMENTS, CriteriaError, ReferenceRun

FORMAT = "vibench-reference"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DRAWS = "draws.npz"
SUMMARY = "summary.json"
PROVENANCE = "provenance.json"
PAYLOAD = (DRAWS, SUMMARY, PROVENANCE)


class ReferenceArtifactError(ValueError):
    """A stored reference cannot be used; the message says which artifact and why."""


class MissingReferenceError(ReferenceArtifactError):
    """No artifact (no manifest) at the path."""


class UnknownFormatError(ReferenceArtifactError):
    """The manifest is not a vibench reference, or of a format version this code cannot read."""


class CorruptReferenceError(ReferenceArtifactError):
    """A payload file is missing or altered, or the manifest was edited."""


class StaleReferenceError(ReferenceArtifactError):
    """The artifact was made for another task label, task version or dimension."""


class FailedReferenceError(ReferenceArtifactError):
    """The artifact was stored although its run failed the criteria."""


class StoredReference(NamedTuple):
    """A verified artifact: its manifest, draws, summary and provenance."""

    path: Path
    manifest: dict[str, Any]
    draws: np.ndarray
    summary: dict[str, Any]
    provenance: dict[str, Any]


def artifact_name(label: str, version: str) -> str:
    """The directory name of a task version's artifact, e.g. ``gaussian_dim=50_rho=0.95--v1``."""

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")

    return f"{safe(label)}--v{safe(version)}"


def artifact_path(root: Path | str, task: Task) -> Path:
    """Where ``task``'s artifact lives under ``root``."""
    return Path(root) / artifact_name(task.label, task.version)


def _named(path: Path) -> str:
    return f"reference artifact {path}"




def manifest_checksum(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of every manifest field but ``checksum``."""
    fields = {key: value for key, value in manifest.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def write_reference(run: ReferenceRun, root: Path | str, keep_failed: bool = False) -> Path:
    """Store ``run`` under ``root`` (replacing an artifact of the same task version) and
    return its directory. A run that fails its criteria raises :class:`CriteriaError`
    and writes nothing, unless ``keep_failed``: then it is stored with ``passed: false``."""
    if not run.passed and not keep_failed:
        raise CriteriaError(
            f"reference for {run.label} (version {run.version}) not written: {run.failures()}"
        )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / artifact_name(run.label, run.version)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        np.savez(staging / DRAWS, draws=run.draws)
        summary = {
            "moments": {name: run.summary[name].tolist() for name in MOMENTS},
            "diagnostics": {
                **{name: run.summary[name].tolist() for name in DIAGNOSTICS},
                "divergences": run.divergences,
                "draws": run.total_draws,
            },
            **run.criteria_json(),
            "passed": run.passed,
        }
        _write_json(staging / SUMMARY, summary)
        _write_json(staging / PROVENANCE, run.provenance)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "task": {"label": run.label, "version": run.version},
            "passed": run.passed,
            "files": {name: sha256_file(staging / name) for name in PAYLOAD},
        }
        manifest["checksum"] = manifest_checksum(manifest)
        _write_json(staging / MANIFEST, manifest)
        if target.exists():
            retired = root / f".retired-{uuid.uuid4().hex}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not file.is_file():
        raise MissingReferenceError(f"no reference artifact at {path}: {MANIFEST} not found")
    try:
        manifest = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptReferenceError(f"{_named(path)}: {MANIFEST} is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UnknownFormatError(f"{file} is not a vibench reference manifest (no format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UnknownFormatError(
            f"{_named(path)}: format version {manifest.get('format_version')!r} is unknown; "
            f"this vibench reads version {FORMAT_VERSION}"
        )
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise CorruptReferenceError(f"{_named(path)}: {MANIFEST} was edited (its checksum does not match)")
    return manifest


def read_artifact(path: Path | str) -> StoredReference:
    """Read the artifact at ``path`` after checking its format and every checksum."""
    path = Path(path)
    manifest = _read_manifest(path)
    task, files = manifest.get("task"), manifest.get("files")
    well_formed = isinstance(task, dict) and {"label", "version"} <= task.keys() and "passed" in manifest
    if not (well_formed and isinstance(files, dict) and sorted(files) == sorted(PAYLOAD)):
        raise CorruptReferenceError(
            f"{_named(path)}: {MANIFEST} needs task (label, version), passed and files {sorted(PAYLOAD)}"
        )
    for name in PAYLOAD:
        if not (path / name).is_file():
            raise CorruptReferenceError(f"{_named(path)}: {name} is missing")
        if sha256_file(path / name) != files[name]:
            raise CorruptReferenceError(f"{_named(path)}: {name} does not match its sha256 checksum")
    with np.load(path / DRAWS) as stored:
        draws = stored["draws"]
    summary = json.loads((path / SUMMARY).read_text())
    provenance = json.loads((path / PROVENANCE).read_text())
    dim = draws.shape[-1] if draws.ndim == 3 else -1
    if dim < 1 or any(len(summary["moments"][name]) != dim for name in MOMENTS):
        raise CorruptReferenceError(f"{_named(path)}: draws {draws.shape} and moments disagree")
    return StoredReference(path, manifest, draws, summary, provenance)


def load_reference(path: Path | str, task: Task, accept_failed: bool = False) -> Reference:
    """The stored reference at ``path`` for ``task``, as a :class:`vibench.core.Reference`
    (moments with their MCSEs, a sampler over the stored draws, provenance text).

    Raises a :class:`ReferenceArtifactError` subclass for a missing, unknown, corrupt or
    stale artifact, and for one that failed its criteria unless ``accept_failed``.
    """
    stored = read_artifact(path)
    made_for = stored.manifest["task"]
    if (made_for["label"], made_for["version"]) != (task.label, task.version):
        raise StaleReferenceError(
            f"{_named(stored.path)} is for task {made_for['label']} version {made_for['version']}, "
            f"not {task.label} version {task.version}: recompute it with "
            f"`vibench reference --task {task.label!r}`"
        )
    dim = derive_logdensity(task).dim
    if stored.draws.shape[-1] != dim:
        raise StaleReferenceError(
            f"{_named(stored.path)} has {stored.draws.shape[-1]} coordinates; "
            f"task {task.label} has {dim}: recompute it"
        )
    if not stored.manifest["passed"] and not accept_failed:
        raise FailedReferenceError(
            f"{_named(stored.path)} failed its criteria when made "
            f"({_failed_checks(stored.summary)}); pass accept_failed=True to use it anyway"
        )
    moments = {name: jnp.asarray(stored.summary["moments"][name]) for name in MOMENTS}
    return Reference(
        provenance=provenance_text(stored),
        sample=draw_sampler(stored.draws),
        **moments,
    )


def draw_sampler(draws: np.ndarray):
    """``sample(key, n)``: ``n`` of the pooled stored draws, chosen at random without
    replacement when ``n`` is at most their number, with replacement beyond."""
    pooled = jnp.asarray(draws.reshape(-1, draws.shape[-1]))

    def sample(key: PRNGKey, n: int) -> Array:
        index = jax.random.choice(key, pooled.shape[0], (n,), replace=n > pooled.shape[0])
        return pooled[index]

    return sample


def _failed_checks(summary: dict[str, Any]) -> str:
    return "; ".join(
        f"{c['name']} = {c['measured']:.6g} (needs {c['relation']} {c['bound']:g})"
        for c in summary.get("checks", ())
        if not c["passed"]
    )


def provenance_text(stored: StoredReference) -> str:
    """One paragraph saying how the stored draws were computed and checked."""
    p, diagnostics = stored.provenance, stored.summary["diagnostics"]
    versions = p.get("versions", {})
    mass = "dense" if p.get("dense_mass") else "diagonal"
    return (
        f"stored reference {stored.path.name} (sha256 {stored.manifest['checksum'][:16]}): "
        f"{p.get('sampler')}; "
        f"{p.get('chains')} chains x {p.get('draws_per_chain')} draws after {p.get('warmup')} warm-up, "
        f"seed {p.get('seed')}, {mass} mass, {p.get('precision')}; "
        f"R-hat max {max(diagnostics['rhat']):.4f}, bulk ESS min {min(diagnostics['ess_bulk']):.0f}, "
        f"tail ESS min {min(diagnostics['ess_tail']):.0f}, {diagnostics['divergences']} divergences; "
        f"vibench {versions.get('vibench')} at {p.get('vibench_commit')}, numpyro {versions.get('numpyro')}, "
        f"jax {versions.get('jax')}; made {p.get('created')}"
    )
