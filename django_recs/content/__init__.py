"""Content-based similarity with the database: item features declared in ITEM_FEATURES.

:mod:`.config` (the settings), :mod:`.loading` (reading the items),
:mod:`.artifacts` (the stored feature matrix), :mod:`.updates` (one item's
neighbours after a save) and :mod:`.signals` (noticing that save). The
numeric pieces (TF-IDF, feature matrices, the content index) are ORM-free
and live in :mod:`django_recs.algorithms` (``tfidf``, ``features``,
``content_index``); they are importable from here too. See docs/content.md.
"""

from __future__ import annotations

from ..algorithms.content_index import ContentIndex, nearest_items
from ..algorithms.features import FeatureBlock, ItemFeatures, build_item_features
from ..algorithms.tfidf import TfidfVocabulary, fit_tfidf, tokenize, transform_tfidf

__all__ = [
    "ContentIndex",
    "FeatureBlock",
    "ItemFeatures",
    "TfidfVocabulary",
    "build_item_features",
    "fit_tfidf",
    "nearest_items",
    "tokenize",
    "transform_tfidf",
]
