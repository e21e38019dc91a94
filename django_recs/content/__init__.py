"""Content-based similarity: item features declared in ITEM_FEATURES.

ORM-free pieces are importable from here; :mod:`.loading` (reading the
items), :mod:`.artifacts` (the stored feature matrix), :mod:`.updates` (one
item's neighbours after a save) and :mod:`.signals` use the database. See
docs/content.md.
"""

from __future__ import annotations

from .features import FeatureBlock, ItemFeatures, build_item_features
from .neighbours import ContentIndex, nearest_items
from .tfidf import TfidfVocabulary, fit_tfidf, tokenize, transform_tfidf

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
