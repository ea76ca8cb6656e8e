"""Stored, versioned references: computed once by long NUTS runs, checked when loaded.

Tasks without a closed form get their ground truth from a long multi-chain NUTS run
held to posteriordb's bar (:mod:`vibench.reference.make`, judged by
:mod:`vibench.reference.summary`), stored as an artifact per (task label, task
version) with draws, moments and their MCSEs, diagnostics, provenance and sha256
checksums (:mod:`vibench.reference.artifact`); ``vibench reference --task SPEC``
(:mod:`vibench.reference.command`) makes one.

How a run uses one: the artifact is loaded for the task it was made for and put in
the task's place of ground truth::

    from dataclasses import replace
    from vibench.reference.artifact import artifact_path, load_reference

    task = registry.task("gaussian[dim=50,rho=0.95]")
    task = replace(task, reference=load_reference(artifact_path("references", task), task))

Loading refuses a stale, corrupt, unknown or failed artifact with a one-line error,
so a run never silently measures against the wrong truth. (A later ``vibench run
--references DIR`` does exactly this for each task with an artifact in DIR.) Tasks
with a closed form keep it; a stored reference of one serves to validate this code.

This package's ``__init__`` imports nothing, so the CLI can load
:mod:`vibench.reference.command` without JAX.
"""
