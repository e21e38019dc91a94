"""A test-only algorithm whose fit waits while a file exists: a run that is
deterministically "in the middle of compute" for as long as a test needs."""

from __future__ import annotations

import os
import time

from django_recs.algorithms import ItemKNN

#: The file whose existence holds fit (the tests set it in the worker's environment).
HOLD_FILE_VARIABLE = "DJANGO_RECS_TEST_HOLD_FILE"
MAX_HOLD_SECONDS = 120


class HeldItemKNN(ItemKNN):
    name = "held-itemknn"

    def fit(self, matrix, *, progress=None, **kwargs):
        hold = os.environ.get(HOLD_FILE_VARIABLE)
        deadline = time.monotonic() + MAX_HOLD_SECONDS
        while hold and os.path.exists(hold) and time.monotonic() < deadline:
            if progress is not None:
                progress(0.1)
            time.sleep(0.1)
        return super().fit(matrix, progress=progress, **kwargs)
