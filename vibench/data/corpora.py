"""Text corpora for topic models: the Lee background corpus (Lee, Pincombe & Welsh 2005),
300 short news documents from the Australian Broadcasting Corporation, one per line,
as gensim ships it in its test data (``gensim/test/test_data/lee_background.cor``,
LGPL-2.1).

The file is looked up as ``ROOT/lda/lee_background.cor`` in the data roots of
:func:`vibench.data.files.data_roots` and checked against :data:`LEE_SHA256`. Its text
is tokenized by :func:`tokenize` (lower case, runs of letters a–z of length 3 or more)
and reduced to a vocabulary by :func:`vocabulary`. Imports no JAX.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from vibench.data.files import data_roots, locate

COLLECTION = "lda"
LEE_FILE = "lee_background.cor"
LEE_SHA256 = "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
LEE_DOCUMENTS = 300
HINT = "; gensim ships it as gensim/test/test_data/lee_background.cor"

_WORD = re.compile(r"[a-z]{3,}")


def lee_path(data_dir: str | os.PathLike | None = None) -> Path:
    """The verified Lee corpus file (:class:`vibench.data.files.DataFileError` if missing or altered)."""
    return locate(f"{COLLECTION}/{LEE_FILE}", LEE_SHA256, data_roots(data_dir), HINT)


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of at least three letters a–z (digits and punctuation split words)."""
    return _WORD.findall(text.lower())


def lee_documents(data_dir: str | os.PathLike | None = None) -> list[list[str]]:
    """The Lee corpus as token lists, one per document, in file order."""
    with open(lee_path(data_dir), encoding="utf-8") as handle:
        documents = [tokenize(line) for line in handle if line.strip()]
    if len(documents) != LEE_DOCUMENTS:
        raise ValueError(f"{LEE_FILE}: expected {LEE_DOCUMENTS} documents, read {len(documents)}")
    return documents


def vocabulary(documents: list[list[str]], size: int, max_doc_fraction: float = 0.5) -> list[str]:
    """The ``size`` most frequent words (ties by the word) among those in at least two
    documents and at most ``max_doc_fraction`` of them (the frequent function words)."""
    frequency = Counter(word for doc in documents for word in doc)
    document_frequency = Counter(word for doc in documents for word in set(doc))
    limit = max_doc_fraction * len(documents)
    kept = [w for w, df in document_frequency.items() if 2 <= df <= limit]
    kept.sort(key=lambda w: (-frequency[w], w))
    if len(kept) < size:
        raise ValueError(f"the corpus has only {len(kept)} words in 2 .. {limit:g} documents; asked for {size}")
    return kept[:size]
