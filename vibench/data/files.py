"""Where data files are found, how they are checked, and how they are downloaded.

Roots are searched in order: an explicit ``data_dir``, ``$VIBENCH_DATA``, then
:data:`CACHE` (``~/.cache/vibench``). A file is looked up as ``ROOT/<relative path>`` in
each root; the first root holding it is used, and the file must match its sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

ENV_VAR = "VIBENCH_DATA"
CACHE = Path("~/.cache/vibench")


class DataFileError(ValueError):
    """A data file is missing or does not match its checksum; the message is one line."""


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched, in order: ``data_dir``, ``$VIBENCH_DATA``, the user cache."""
    roots = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]))
    roots.append(CACHE.expanduser())
    return roots


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(relative: str, sha256: str, roots: list[Path], hint: str = "") -> Path:
    """The verified file ``ROOT/relative`` of the first root that has it.

    Raises :class:`DataFileError` when no root has it (naming the roots searched and
    ``hint``, how to get it) or when the found file's sha256 is not ``sha256``.
    """
    for root in roots:
        path = root / relative
        if path.is_file():
            got = sha256_file(path)
            if got != sha256:
                raise DataFileError(
                    f"data file {path} is altered: sha256 {got[:16]}… does not match the expected "
                    f"{sha256[:16]}… (replace it with the original file)"
                )
            return path
    searched = ", ".join(str(root) for root in roots)
    raise DataFileError(
        f"data file {relative} not found in {searched} (set {ENV_VAR} or pass data_dir){hint}"
    )


def download(url: str, target: Path, sha256: str) -> Path:
    """Download ``url`` to ``target`` (atomically: a temporary file in the same directory,
    renamed once its sha256 matches); an existing verified ``target`` is kept."""
    if target.is_file() and sha256_file(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".download-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        got = sha256_file(Path(temporary))
        if got != sha256:
            raise DataFileError(f"download of {url} has sha256 {got[:16]}…, expected {sha256[:16]}…")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
