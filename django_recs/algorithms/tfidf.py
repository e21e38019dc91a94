r"""TF-IDF of short shop texts with numpy and scipy. No ORM here.

The weighting is scikit-learn's ``TfidfVectorizer`` with its defaults, so a
result can be checked against it (the tests do) and read with its
documentation:

- tokens: lowercased text, words of two or more word characters
  (``(?u)\b\w\w+\b``);
- ``tf(t, d)``: the count of token t in document d;
- ``idf(t) = ln((1 + n) / (1 + df(t))) + 1`` with n documents and
  ``df(t)`` the documents containing t ("smooth" idf: a word in every
  document still counts a little);
- each document's vector ``tf * idf`` is scaled to unit length (L2);
- the vocabulary is sorted, optionally pruned by ``min_df``/``max_df``
  (document counts when int, fractions of n when float) and stop words.
"""

from __future__ import annotations

import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["TOKEN_PATTERN", "TfidfVocabulary", "fit_tfidf", "tokenize", "transform_tfidf"]

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``: lowercased words of two or more word characters."""
    return TOKEN_PATTERN.findall(text.lower()) if text else []


@dataclass(frozen=True)
class TfidfVocabulary:
    """The fitted vocabulary: sorted tokens and their idf.

    Attributes
    ----------
    tokens : ndarray, shape (n_terms,), str, sorted
    idf : ndarray, shape (n_terms,), float64
    """

    tokens: np.ndarray
    idf: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self) -> dict[str, int]:
        """token -> column."""
        return {str(token): column for column, token in enumerate(self.tokens)}


#: Documents tokenised before their counts are summed: bounds the raw token buffer.
COUNT_CHUNK_DOCUMENTS = 4_096


def _count_matrix(
    documents: Iterable[str], vocabulary: dict[str, int], *, grow: bool, stop_words=frozenset()
) -> sp.csr_matrix:
    """Documents x terms token counts (float32 CSR, canonical).

    With ``grow`` the vocabulary takes every new token (its column is its
    arrival order); without, unknown tokens are dropped. Tokens are counted
    in chunks of documents, so memory follows the distinct (document, word)
    pairs rather than the raw token stream.
    """
    lookup = defaultdict(int, vocabulary)
    if grow:
        lookup.default_factory = lookup.__len__  # a new token gets the next column
    chunks: list[sp.csr_matrix] = []
    indices = array("q")  # 8 bytes per token, no Python list of the chunk's tokens
    lengths = array("q")

    def flush() -> None:
        if not lengths:
            return
        index_array = np.frombuffer(indices, dtype=np.int64).astype(np.int32) if indices else (
            np.zeros(0, np.int32))
        indptr = np.concatenate(([0], np.cumsum(np.frombuffer(lengths, dtype=np.int64))))
        chunk = sp.csr_matrix(  # float32 counts are exact and half the size
            (np.ones(len(index_array), dtype=np.float32), index_array, indptr),
            shape=(len(lengths), max(len(lookup), 1)),
        )
        chunk.sum_duplicates()  # also sorts each row's columns
        chunks.append(chunk)
        del indices[:], lengths[:]

    for text in documents:
        tokens = tokenize(text)
        before = len(indices)
        if grow:
            if stop_words:
                tokens = [t for t in tokens if t not in stop_words]
            indices.extend([lookup[t] for t in tokens])
        else:
            indices.extend([lookup[t] for t in tokens if t in lookup])
        lengths.append(len(indices) - before)
        if len(lengths) >= COUNT_CHUNK_DOCUMENTS:
            flush()
    flush()
    if grow:
        vocabulary.clear()
        vocabulary.update(lookup)
    n_terms = len(vocabulary)
    if not chunks:
        return sp.csr_matrix((0, n_terms), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate([c.data for c in chunks]), np.concatenate([c.indices for c in chunks]),
         np.concatenate([[0], np.cumsum(np.concatenate([np.diff(c.indptr) for c in chunks]))])),
        shape=(sum(c.shape[0] for c in chunks), n_terms),
    )


def _document_limit(value: int | float, n_documents: int) -> float:
    return float(value) if isinstance(value, (int, np.integer)) else value * n_documents


def fit_tfidf(
    documents: Sequence[str],
    *,
    min_df: int | float = 1,
    max_df: int | float = 1.0,
    stop_words: Iterable[str] = (),
) -> tuple[sp.csr_matrix, TfidfVocabulary]:
    """Fit the vocabulary of ``documents`` and return their TF-IDF vectors.

    Parameters
    ----------
    documents : sequence of str, length n
        Empty strings are documents without tokens (they count in n).
    min_df, max_df : int or float
        Keep tokens with ``min_df <= df <= max_df``; an int counts documents,
        a float is a fraction of n.
    stop_words : iterable of str
        Tokens never kept (lowercase).

    Returns
    -------
    vectors : csr_matrix, shape (n, n_terms), float64
        Rows of unit length (rows without kept tokens are empty).
    vocabulary : TfidfVocabulary

    Raises
    ------
    ValueError
        ``max_df`` keeps fewer documents than ``min_df`` asks for.
    """
    n = len(documents)
    low, high = _document_limit(min_df, n), _document_limit(max_df, n)
    if high < low:
        raise ValueError(f"max_df={max_df!r} corresponds to fewer documents than min_df={min_df!r}")
    vocabulary: dict[str, int] = {}
    counts = _count_matrix(documents, vocabulary, grow=True,
                           stop_words=frozenset(w.lower() for w in stop_words))
    tokens = np.empty(len(vocabulary), dtype=object)
    for token, column in vocabulary.items():
        tokens[column] = token
    document_frequency = np.bincount(counts.indices, minlength=len(tokens))
    kept = np.flatnonzero((document_frequency >= low) & (document_frequency <= high))
    kept = kept[np.argsort(tokens[kept].astype(str), kind="stable")]
    # Old column -> new (sorted) column, -1 for pruned tokens.
    new_column = np.full(len(tokens), -1, dtype=np.int32)
    new_column[kept] = np.arange(len(kept))
    counts = _select_columns(counts, new_column, len(kept))
    idf = np.log((1.0 + n) / (1.0 + document_frequency[kept])) + 1.0
    vocabulary_out = TfidfVocabulary(tokens=tokens[kept].astype(str), idf=idf)
    return _weighted_unit_rows(counts, idf), vocabulary_out


def transform_tfidf(documents: Sequence[str], vocabulary: TfidfVocabulary) -> sp.csr_matrix:
    """TF-IDF vectors of new documents against a fitted vocabulary (unknown tokens dropped).

    Returns a csr_matrix of shape (len(documents), len(vocabulary)), float64, unit rows.
    """
    counts = _count_matrix(documents, vocabulary.index(), grow=False)
    return _weighted_unit_rows(counts, vocabulary.idf)


def _select_columns(matrix: sp.csr_matrix, new_column: np.ndarray, n_columns: int) -> sp.csr_matrix:
    """Keep the columns with ``new_column >= 0`` and renumber them (rows stay)."""
    columns = new_column[matrix.indices]
    keep = columns >= 0
    lengths = _row_sums(matrix, keep.astype(np.int64)).astype(np.int64)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    selected = sp.csr_matrix(
        (matrix.data[keep], columns[keep], indptr), shape=(matrix.shape[0], n_columns)
    )
    selected.sort_indices()
    return selected


def _weighted_unit_rows(counts: sp.csr_matrix, idf: np.ndarray, *, copy: bool = True
                        ) -> sp.csr_matrix:
    """``counts * idf`` with unit rows (in place when ``copy`` is False)."""
    weighted = counts.astype(np.float64, copy=copy)
    weighted.data *= idf[weighted.indices]
    norms = np.sqrt(_row_sums(weighted, weighted.data**2))
    lengths = np.diff(weighted.indptr)
    weighted.data /= np.repeat(np.where(norms > 0, norms, 1.0), lengths)
    return weighted


def _row_sums(matrix: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Per-row sums of ``values`` given one per stored entry (0 for empty rows), float64."""
    sums = np.zeros(matrix.shape[0], dtype=np.float64)
    filled = np.diff(matrix.indptr) > 0
    if filled.any():
        # reduceat over the non-empty rows only: an empty row's start would repeat the next's.
        sums[filled] = np.add.reduceat(np.asarray(values, dtype=np.float64),
                                       matrix.indptr[:-1][filled])
    return sums
