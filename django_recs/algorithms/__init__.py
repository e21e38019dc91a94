"""The algorithms configured in ALGORITHMS: ItemKNN, ALS, EASE, RP3beta, Popular, ContentKNN, Hybrid, UserKNN.

Each is a small class: parameters as keyword arguments, ``fit(matrix)``
returning a :class:`FitResult` of arrays. No ORM, so the pipeline stores what
they return and the evaluation scores it unchanged.
"""

from __future__ import annotations

from .als import ALS
from .base import Algorithm, FitResult
from .content import ContentKNN
from .ease import EASE
from .hybrid import Hybrid
from .itemknn import ItemKNN
from .popular import Popular
from .rp3beta import RP3beta
from .userknn import UserKNN

__all__ = ["ALS", "Algorithm", "ContentKNN", "FitResult", "Hybrid", "ItemKNN", "Popular"]
__all__ += ["EASE", "RP3beta", "UserKNN"]
