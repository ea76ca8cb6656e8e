"""Two results directories read, their runs paired, each pair's environment compared,
and every judged metric given a verdict (:mod:`vibench.compare.verdict`).

An *entry* is one side's runs of a kind (benchmark or SBC) with the same
:data:`vibench.report.summary.RUN_IDENTITY` but the seed (task label, method label,
device): its seeds are replicates. Entries pair by that key; an entry whose key has no
partner pairs with the other side's one entry of the same task and method label when
each side ran it on exactly one device (a CI machine with another GPU): the device
change is then environment drift. What is left is ``incomparable`` (only in one side).

A pair's *fingerprint* per side: package versions (the rows' ``versions``), device,
host and git commit, task and method versions. A task or method version change makes
every row of the pair ``incomparable`` (its numbers mean something else); a changed
package version (vibench's own excepted: it is the code under test), device or host
turns a significant speed change into ``drift``. Only metrics with a direction in
:mod:`vibench.metrics.records`, the speed and exact-count metrics, ``sbc_rejected``
(SBC entries) and the run status are judged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vibench.compare import verdict as rules
from vibench.compare.verdict import INCOMPARABLE, VERDICTS, Judgement, Thresholds
from vibench.harness.timings import read_timings
from vibench.metrics.records import direction, metric_order
from vibench.report.summary import RUN_IDENTITY, failure_text, load_results

KEY: tuple[str, ...] = tuple(c for c in RUN_IDENTITY if c != "seed")
"""The columns an entry is identified by: a run's identity but its seed."""
VERSION_COLUMNS = ("task_version", "method_version")
ENVIRONMENT_COLUMNS = ("device", "host", "git_commit")
OWN_PACKAGE = "vibench"


@dataclass(frozen=True, eq=False)
class Store:
    """A results directory as a comparison reads it: benchmark metric rows (latest run
    per identity, with ``elbo_gap``), SBC metric rows, one row per run of either kind,
    and the repeated timings of :mod:`vibench.harness.timings`."""

    path: Path
    metrics: pd.DataFrame
    sbc: pd.DataFrame
    runs: pd.DataFrame
    timings: pd.DataFrame


def load(path: Path) -> Store:
    """Read ``path`` (:func:`vibench.report.summary.load_results`; raises
    :class:`~vibench.harness.store.NotResultsError` for a directory without results)."""
    results = load_results(Path(path))
    runs = pd.concat([results.runs, results.sbc_runs], ignore_index=True)
    return Store(Path(path), results.metrics, results.sbc_metrics, runs, read_timings(path))


@dataclass(frozen=True)
class Row:
    """One judged metric of one pair: ``kind`` (``run`` or ``sbc``), task label, method
    label, ``device`` (``BASE → NEW`` when it changed) and the :class:`Judgement`."""

    kind: str
    task: str
    label: str
    device: str
    metric: str
    judgement: Judgement

    @property
    def verdict(self) -> str:
        return self.judgement.verdict


def versions(texts) -> dict[str, str]:
    """The package versions of the ``versions`` JSON texts (a package with several
    versions among them: joined by ``|``; an unreadable or missing text adds nothing)."""
    found: dict[str, set[str]] = {}
    for text in texts:
        try:
            parsed = json.loads(text) if isinstance(text, str) else {}
        except json.JSONDecodeError:
            parsed = {}
        for name, version in (parsed.items() if isinstance(parsed, dict) else ()):
            found.setdefault(str(name), set()).add(str(version))
    return {name: "|".join(sorted(v)) for name, v in sorted(found.items())}


def fingerprint(runs: pd.DataFrame) -> dict[str, str]:
    """What ``runs`` ran with: each of :data:`VERSION_COLUMNS` and
    :data:`ENVIRONMENT_COLUMNS` (distinct values joined by ``|``) and every package version."""
    found = {c: "|".join(sorted(runs[c].fillna("").astype(str).unique())) for c in (*VERSION_COLUMNS, *ENVIRONMENT_COLUMNS)}
    found.update({f"package {k}": v for k, v in versions(runs["versions"]).items()})
    return found


def changes(base: dict[str, str], new: dict[str, str], names) -> list[str]:
    """``name a → b`` for each of ``names`` that differs between the fingerprints."""
    return [f"{n} {base.get(n, '?')} → {new.get(n, '?')}" for n in names if base.get(n) != new.get(n)]


def drift_of(base: dict[str, str], new: dict[str, str]) -> str:
    """What changed that makes speed incomparable: packages (but vibench), device, host."""
    packages = sorted(k for k in {*base, *new} if k.startswith("package ") and k != f"package {OWN_PACKAGE}")
    return "; ".join(changes(base, new, ["device", "host", *packages]))


def _entries(frame: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    return {key: group for key, group in frame.groupby(list(KEY), sort=False)}


def pair_keys(base: list[tuple], new: list[tuple]) -> tuple[list[tuple[tuple, tuple]], list[tuple], list[tuple]]:
    """``(pairs, only_base, only_new)`` of entry keys (see the module doc)."""
    pairs = [(k, k) for k in base if k in set(new)]
    left_base = [k for k in base if k not in set(new)]
    left_new = [k for k in new if k not in set(base)]

    def by_label(keys):
        grouped: dict[tuple, list[tuple]] = {}
        for k in keys:
            grouped.setdefault(tuple(v for c, v in zip(KEY, k) if c != "device"), []).append(k)
        return grouped

    lone_base, lone_new = by_label(left_base), by_label(left_new)
    for label, keys in lone_base.items():
        if len(keys) == 1 and len(lone_new.get(label, ())) == 1:
            pairs.append((keys[0], lone_new[label][0]))
    paired_base, paired_new = {b for b, _ in pairs}, {n for _, n in pairs}
    return pairs, [k for k in left_base if k not in paired_base], [k for k in left_new if k not in paired_new]


def judged(kind: str, metrics) -> list[str]:
    """The metrics of ``metrics`` a comparison of entries of ``kind`` judges."""
    if kind == "sbc":
        return [rules.SBC_METRIC] if rules.SBC_METRIC in set(metrics) else []
    names = [m for m in metrics if m != rules.RUN_METRIC]
    return [m for m in metric_order(names) if direction(m) is not None or m in rules.SPEED_METRICS]


def _timing_samples(store: Store, ok: pd.DataFrame, metric: str) -> np.ndarray:
    """Raw timings of ``metric`` over an entry's ok rows: each run's repeated timings
    where recorded, else its one value; compile time once per compilation (the seeds of
    one ``vibench run`` share it, so equal values are one sample)."""
    rows = ok[ok["metric"] == metric]
    if metric == "time_compile_s":
        return np.unique(rows["value"].to_numpy(np.float64))
    repeated = store.timings[store.timings["run_id"].isin(set(rows["run_id"]))]
    single = rows[~rows["run_id"].isin(set(repeated["run_id"]))]["value"]
    return np.concatenate([repeated["seconds"].to_numpy(np.float64), single.to_numpy(np.float64)])


def _failures(runs: pd.DataFrame) -> list[str]:
    bad = runs[runs["status"] != "ok"]
    return [failure_text(s, e) for s, e in zip(bad["status"], bad["error"])]


def judge_pair(kind: str, stores: tuple[Store, Store], groups: tuple[pd.DataFrame, pd.DataFrame],
               thresholds: Thresholds) -> list[tuple[str, Judgement]]:
    """``[(metric, judgement)]`` of one paired entry (rows of each side in ``groups``)."""
    run_frames = [s.runs[s.runs["run_id"].isin(set(g["run_id"]))] for s, g in zip(stores, groups)]
    prints = [fingerprint(r) for r in run_frames]
    oks = [g[g["status"] == "ok"] for g in groups]
    names = judged(kind, dict.fromkeys([*oks[0]["metric"], *oks[1]["metric"]]))
    versions_changed = changes(*prints, VERSION_COLUMNS)
    if versions_changed:
        note = "; ".join(versions_changed) + " (not judged)"
        return [(m, Judgement(INCOMPARABLE, note=note)) for m in [rules.RUN_METRIC, *names]]
    found = [(rules.RUN_METRIC, rules.runs(_failures(run_frames[0]), len(run_frames[0]),
                                           _failures(run_frames[1]), len(run_frames[1])))]
    drift = drift_of(*prints)
    for metric in names:
        rows = [ok[ok["metric"] == metric] for ok in oks]
        if rows[0].empty or rows[1].empty:
            side = "base" if rows[1].empty else "new"
            found.append((metric, Judgement(INCOMPARABLE, note=f"only in {side}")))
        elif metric in rules.SPEED_METRICS:
            samples = [_timing_samples(s, ok, metric) for s, ok in zip(stores, oks)]
            found.append((metric, rules.speed(*samples, thresholds, drift)))
        elif metric in rules.EXACT_METRICS:
            found.append((metric, rules.exact(metric, *(r["value"].to_numpy(np.float64) for r in rows))))
        elif metric == rules.SBC_METRIC:
            found.append((metric, rules.sbc(*(r["value"].to_numpy(np.float64) for r in rows))))
        else:
            pairs = [(r["value"].to_numpy(np.float64), r["stderr"].to_numpy(np.float64)) for r in rows]
            found.append((metric, rules.accuracy(metric, *pairs, thresholds)))
    return found


def compare_stores(base: Store, new: Store, thresholds: Thresholds) -> list[Row]:
    """Every judged row of ``base`` against ``new``, most urgent verdict first."""
    found: list[Row] = []
    for kind, column in (("run", "metrics"), ("sbc", "sbc")):
        sides = _entries(getattr(base, column)), _entries(getattr(new, column))
        pairs, only_base, only_new = pair_keys(list(sides[0]), list(sides[1]))
        for b, n in pairs:
            device = b[2] if b[2] == n[2] else f"{b[2]} → {n[2]}"
            for metric, judgement in judge_pair(kind, (base, new), (sides[0][b], sides[1][n]), thresholds):
                found.append(Row(kind, b[0], b[1], device, metric, judgement))
        for keys, where in ((only_base, "base"), (only_new, "new")):
            for key in keys:
                found.append(Row(kind, key[0], key[1], key[2], rules.RUN_METRIC,
                                 Judgement(INCOMPARABLE, note=f"only in {where}")))
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return sorted(found, key=lambda row: rank[row.verdict])


@dataclass(frozen=True)
class Comparison:
    """A whole comparison: its rows, what changed in the environment between the sides
    (``name a → b``, over all their runs) and the thresholds it was judged by."""

    base: Path
    new: Path
    rows: list[Row]
    environment: list[str]
    thresholds: Thresholds

    @property
    def exit_code(self) -> int:
        """1 when any row regressed, else 0."""
        return int(any(row.verdict == rules.REGRESSED for row in self.rows))


def compare(base: Path, new: Path, thresholds: Thresholds = Thresholds()) -> Comparison:
    """Compare the results directories ``base`` and ``new`` (see the module doc)."""
    stores = load(base), load(new)
    prints = [fingerprint(s.runs) for s in stores]
    packages = sorted(k for k in {*prints[0], *prints[1]} if k.startswith("package "))
    names = [*ENVIRONMENT_COLUMNS, *packages]
    return Comparison(Path(base), Path(new), compare_stores(*stores, thresholds), changes(*prints, names), thresholds)
