r"""The features x items matrix of content-based similarity. No ORM here.

Each declared field of an item model is a *block* of feature rows:

- a text field: one row per word of its TF-IDF vocabulary (fitted on the
  items of that model, see :mod:`django_recs.algorithms.tfidf`); an item's
  column holds its unit-length TF-IDF vector;
- a categorical field: one row per distinct value (``"<category pk>"``,
  ``"<brand name>"``, each tag); an item with m values holds
  :math:`1/\sqrt{m}` at each of them (one-hot for a single value), again a
  unit-length vector.

Every block of an item is then scaled by :math:`\sqrt{w}`, ``w`` the
field's weight, so the cosine of two items' columns is the weighted mean of
their per-field cosines:

.. math::

    \cos(a, b) = \frac{\sum_f w_f \cos_f(a, b)}
                      {\sqrt{\sum_{f \in F_a} w_f}\,\sqrt{\sum_{f \in F_b} w_f}}

with :math:`F_a` the fields item a has a value for. Two products of the same
category (weight 1) and brand (weight 1) with unrelated names (weight 2)
score 0.5. Blocks of different item models never share a row, so items of
different models are never similar. An item without any value has an empty
column: it gets no content neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .tfidf import TfidfVocabulary, fit_tfidf, transform_tfidf

__all__ = ["FeatureBlock", "ItemFeatures", "build_item_features"]


@dataclass(frozen=True)
class FeatureBlock:
    """The values of one declared field, as read from the items (the builder's input).

    Attributes
    ----------
    label : str
        The item model, ``"app_label.Model"``.
    kind : {"text", "categorical"}
    path : str
        The field path as configured.
    weight : float > 0
    columns : ndarray, shape (m,), int
        The item column of each value.
    values : sequence of str, length m
        Text fields: an item's text (several values of one item are joined).
        Categorical fields: one value per entry, any number per item.
    documents : ndarray of int, optional
        Text fields: the columns of every item of the model — the documents
        the idf counts, including items whose text is empty. Default: the
        distinct ``columns``.
    min_df, max_df, stop_words : TF-IDF vocabulary pruning (text fields only).
    """

    label: str
    kind: str
    path: str
    weight: float
    columns: np.ndarray
    values: Sequence[str]
    documents: np.ndarray | None = None
    min_df: int | float = 1
    max_df: int | float = 1.0
    stop_words: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.kind not in ("text", "categorical"):
            raise ValueError(f"FeatureBlock kind must be 'text' or 'categorical', got {self.kind!r}")
        if not (np.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"FeatureBlock {self.path!r}: weight must be > 0, got {self.weight!r}")
        if len(self.columns) != len(self.values):
            raise ValueError(
                f"FeatureBlock {self.path!r}: {len(self.columns)} columns for "
                f"{len(self.values)} values"
            )


@dataclass(frozen=True)
class ItemFeatures:
    """Item features as a features x items matrix (features play the users).

    Attributes
    ----------
    matrix : csr_matrix, shape (n_features, n_items), float32
        Column j is item j's feature vector (see the module docstring).
    labels, kinds, paths : ndarray, shape (n_blocks,), str
        Item model, kind and path of each block.
    weights : ndarray, shape (n_blocks,), float64
    block_starts : ndarray, shape (n_blocks + 1,), int64
        Block b owns feature rows ``block_starts[b]:block_starts[b + 1]``.
    tokens : ndarray, shape (n_features,), str
        The word (text) or value (categorical) of each feature row.
    idf : ndarray, shape (n_features,), float64
        The idf of each text feature (1 for categorical ones).
    """

    matrix: sp.csr_matrix
    labels: np.ndarray
    kinds: np.ndarray
    paths: np.ndarray
    weights: np.ndarray
    block_starts: np.ndarray
    tokens: np.ndarray
    idf: np.ndarray

    @property
    def n_features(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @cached_property
    def items_with_features(self) -> np.ndarray:
        """Boolean mask, shape (n_items,): True where the item has any feature."""
        return np.diff(self.matrix.tocsc().indptr) > 0

    @cached_property
    def column_norms(self) -> np.ndarray:
        """Length of each item's feature vector, shape (n_items,), float64."""
        squared = self.matrix.multiply(self.matrix).sum(axis=0)
        return np.sqrt(np.asarray(squared, dtype=np.float64).reshape(-1))

    @cached_property
    def _block_lookup(self) -> dict[tuple[str, str, str], tuple[int, dict[str, int]]]:
        lookup = {}
        for block, (label, kind, path) in enumerate(zip(self.labels, self.kinds, self.paths)):
            start, stop = int(self.block_starts[block]), int(self.block_starts[block + 1])
            rows = {str(token): start + offset for offset, token in enumerate(self.tokens[start:stop])}
            lookup[(str(label), str(kind), str(path))] = (block, rows)
        return lookup

    def vector_of(self, label: str, values: dict[tuple[str, str], Sequence[str]]) -> sp.csr_matrix:
        """The feature vector of one item of model ``label``, against this vocabulary.

        Parameters
        ----------
        label : str
            The item's model, ``"app_label.Model"``.
        values : dict
            ``(kind, path)`` -> the item's values of that field (text: its
            texts; categorical: its values). Fields the matrix does not know
            and unknown words or values are ignored.

        Returns
        -------
        csr_matrix, shape (1, n_features), float64
            Built exactly as a column of :attr:`matrix` is.
        """
        rows: list[int] = []
        data: list[float] = []
        for (kind, path), field_values in values.items():
            found = self._block_lookup.get((label, kind, path))
            if found is None or not field_values:
                continue
            block, row_of = found
            scale = np.sqrt(float(self.weights[block]))
            start, stop = int(self.block_starts[block]), int(self.block_starts[block + 1])
            if kind == "text":
                vocabulary = TfidfVocabulary(self.tokens[start:stop], self.idf[start:stop])
                vector = transform_tfidf([" ".join(field_values)], vocabulary)
                rows.extend((vector.indices + start).tolist())
                data.extend((vector.data * scale).tolist())
            else:
                distinct = sorted({str(value) for value in field_values})
                share = scale / np.sqrt(len(distinct))
                known = [row_of[value] for value in distinct if value in row_of]
                rows.extend(known)
                data.extend([share] * len(known))
        return sp.csr_matrix(
            (np.asarray(data, dtype=np.float64), (np.zeros(len(rows), dtype=np.int64), rows)),
            shape=(1, self.n_features),
        )


def build_item_features(blocks: Iterable[FeatureBlock], n_items: int) -> ItemFeatures:
    """The features x items matrix of ``blocks`` over ``n_items`` item columns.

    Raises
    ------
    ValueError
        A column outside ``0 <= column < n_items`` or a bad block.
    """
    parts: list[sp.csr_matrix] = []
    tokens: list[np.ndarray] = []
    idfs: list[np.ndarray] = []
    labels, kinds, paths, weights = [], [], [], []
    for block in blocks:
        columns = np.asarray(block.columns, dtype=np.int64).reshape(-1)
        if columns.size and (columns.min() < 0 or columns.max() >= n_items):
            raise ValueError(f"FeatureBlock {block.path!r}: a column is outside 0..{n_items - 1}")
        if block.kind == "text":
            part, block_tokens, idf = _text_block(block, columns, n_items)
        else:
            part, block_tokens, idf = _categorical_block(block, columns, n_items)
        part.data *= np.sqrt(block.weight)
        parts.append(part.astype(np.float32).tocsr())
        tokens.append(block_tokens)
        idfs.append(idf)
        labels.append(block.label)
        kinds.append(block.kind)
        paths.append(block.path)
        weights.append(float(block.weight))
    sizes = [part.shape[0] for part in parts]
    if parts:
        matrix = sp.vstack(parts, format="csr", dtype=np.float32)
    else:
        matrix = sp.csr_matrix((0, n_items), dtype=np.float32)
    matrix.sort_indices()
    return ItemFeatures(
        matrix=matrix,
        labels=np.asarray(labels, dtype=str),
        kinds=np.asarray(kinds, dtype=str),
        paths=np.asarray(paths, dtype=str),
        weights=np.asarray(weights, dtype=np.float64),
        block_starts=np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
        tokens=np.concatenate(tokens).astype(str) if tokens else np.zeros(0, dtype=str),
        idf=np.concatenate(idfs) if idfs else np.zeros(0),
    )


def _text_block(block: FeatureBlock, columns: np.ndarray, n_items: int):
    """Words x items TF-IDF of one text field; documents are the model's items."""
    documents = (
        np.unique(columns) if block.documents is None
        else np.unique(np.asarray(block.documents, dtype=np.int64))
    )
    missing = np.setdiff1d(columns, documents)
    if missing.size:
        raise ValueError(f"FeatureBlock {block.path!r}: columns {missing[:5].tolist()} are not "
                         "among its documents")
    position = np.searchsorted(documents, columns)
    texts = [""] * len(documents)
    for index, text in zip(position.tolist(), block.values):
        if text:
            texts[index] = f"{texts[index]} {text}" if texts[index] else str(text)
    vectors, vocabulary = fit_tfidf(
        texts, min_df=block.min_df, max_df=block.max_df, stop_words=block.stop_words
    )
    # documents x words (CSR) is words x documents (CSC); placing document d in
    # column documents[d] (ascending) only spreads the column pointers.
    lengths = np.zeros(n_items, dtype=np.int64)
    lengths[documents] = np.diff(vectors.indptr)
    part = sp.csc_matrix(
        (vectors.data, vectors.indices, np.concatenate(([0], np.cumsum(lengths)))),
        shape=(len(vocabulary), n_items),
    )
    return part, vocabulary.tokens, vocabulary.idf


def _categorical_block(block: FeatureBlock, columns: np.ndarray, n_items: int):
    """Values x items one-hot of one categorical field, 1/sqrt(m) for m values of an item."""
    values = np.asarray([str(value) for value in block.values], dtype=str)
    present = np.asarray([value != "" for value in values], dtype=bool)
    values, columns = values[present], columns[present]
    block_tokens, value_rows = np.unique(values, return_inverse=True)
    pairs = sp.csr_matrix(
        (np.ones(len(columns)), (value_rows.reshape(-1), columns)),
        shape=(len(block_tokens), n_items), dtype=np.float64,
    )
    pairs.sum_duplicates()
    pairs.data[:] = 1.0  # an item listing a value twice has it once
    values_per_item = np.bincount(pairs.indices, minlength=n_items)
    pairs.data /= np.sqrt(values_per_item[pairs.indices])
    return pairs, block_tokens, np.ones(len(block_tokens))
