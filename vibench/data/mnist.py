"""Statically binarized MNIST in Larochelle's split (Larochelle & Murray 2011;
Salakhutdinov & Murray 2008): train 50 000, valid 10 000, test 10 000 images of 28 × 28
pixels in {0, 1}.

The files live under ``ROOT/binarized_mnist/`` for the first root that has them (the
``data_dir`` a caller passes, ``$VIBENCH_DATA``, then ``~/.cache/vibench``:
:func:`vibench.data.files.data_roots`), each checked against :data:`SHA256` before it is
read. Despite the ``.amat`` names the distributed copies are MATLAB v5 files
(``scipy.io.loadmat(path)["X"]``, uint8). The test set is grouped by digit class: shuffle
(or subsample at random) before minibatching or taking a subset. These files hold no grey
levels, so dynamic binarization cannot be done from them. :func:`download` fetches them
into the user cache from a public copy (:data:`URL`, at :data:`COMMIT`), verified before
use. Imports no JAX.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vibench.data.files import CACHE, data_roots, locate
from vibench.data.files import download as download_file

COLLECTION = "binarized_mnist"
SPLITS = ("train", "valid", "test")
SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
PIXELS = 784
SHA256 = {
    "binarized_mnist_train.amat": "79a0312c7389d855cfc97e3812de3998417c5829d8a51543b56a90a91252ae7e",
    "binarized_mnist_valid.amat": "7436afc856959075c7787025bb8a4ba2b520b9230ee39667c66aa7dd2819dd68",
    "binarized_mnist_test.amat": "5bc30222e1e7896cbccd1e1db6b28540cc1230f4d2d5473841a5f6cc54be8d38",
}
COMMIT = "bac893cfcec486bbd00b755b12cf8402053b0e84"
URL = "https://raw.githubusercontent.com/mingzhang-yin/ARM-gradient/{commit}/{file}"
"""The public copy the checksums were taken from (repository mingzhang-yin/ARM-gradient)."""


def file_name(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown binarized MNIST split {split!r}; valid: {', '.join(SPLITS)}")
    return f"binarized_mnist_{split}.amat"


def load(split: str, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The images of ``split`` as a uint8 array (n, 784) of 0/1, the file verified first
    (a missing or altered file is a one-line :class:`vibench.data.files.DataFileError`)."""
    from scipy.io import loadmat

    name = file_name(split)
    path = locate(f"{COLLECTION}/{name}", SHA256[name], data_roots(data_dir),
                  "; vibench.data.mnist.download() fetches it")
    images = np.asarray(loadmat(str(path))["X"], np.uint8)
    if images.shape != (SIZES[split], PIXELS) or images.max() > 1:
        raise ValueError(f"data file {path} holds {images.shape} values up to {images.max()}; "
                         f"expected ({SIZES[split]}, {PIXELS}) binary pixels")
    return images


def download(root: str | os.PathLike | None = None) -> Path:
    """Fetch the three files into ``root`` (default: the user cache), each verified by
    its sha256 before it is moved into place; returns the collection's directory."""
    base = Path(root) if root is not None else CACHE.expanduser()
    for split in SPLITS:
        name = file_name(split)
        download_file(URL.format(commit=COMMIT, file=name), base / COLLECTION / name, SHA256[name])
    return base / COLLECTION
