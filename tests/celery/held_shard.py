"""A test-only ItemKNN whose similarity shards can be slowed down or held.

``DJANGO_RECS_TEST_SHARD_DELAY`` (seconds) slows every shard, so two workers
both get some. With ``DJANGO_RECS_TEST_HOLD_FILE`` set and the file present,
the first shard after the first item range to start writes ``<file>.taken``
(its process id and first item) and waits while the file exists: a worker that is
deterministically in the middle of a shard, to be killed. A copy of that
shard delivered again finds ``.taken`` and runs through.
"""

from __future__ import annotations

import os
import time

from django_recs.algorithms import ItemKNN
from tests.celery.held_algorithm import HOLD_FILE_VARIABLE, MAX_HOLD_SECONDS

DELAY_VARIABLE = "DJANGO_RECS_TEST_SHARD_DELAY"


def taken_file(hold_file) -> str:
    return f"{hold_file}.taken"


class HeldShardItemKNN(ItemKNN):
    name = "held-shard-itemknn"

    def neighbours(self, matrix, *, items=None, num_threads=0):
        if items is not None:
            time.sleep(float(os.environ.get(DELAY_VARIABLE) or 0))
            hold = os.environ.get(HOLD_FILE_VARIABLE)
            if hold and items[0] > 0 and os.path.exists(hold) and self._take(hold, items[0]):
                deadline = time.monotonic() + MAX_HOLD_SECONDS
                while os.path.exists(hold) and time.monotonic() < deadline:
                    time.sleep(0.05)
        return super().neighbours(matrix, items=items, num_threads=num_threads)

    @staticmethod
    def _take(hold: str, start: int) -> bool:
        """True for the one shard that holds (the file is created exclusively)."""
        try:
            handle = os.open(taken_file(hold), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(handle, f"{os.getpid()} {start}".encode())
        os.close(handle)
        return True
