"""The pipeline: runs that turn interactions into the stored rows serving reads.

- :mod:`.runs` — a run's life: start (single flight), load, matrix, compute,
  write, swap, cleanup, failure;
- :mod:`.tracking` — its stage, progress, timings and heartbeat;
- :mod:`.writing` and :mod:`.results` — a FitResult as table columns, written in bulk;
- :mod:`.artifacts` — files a run stores (ALS item factors, content features);
- :mod:`.foldin` — one user's ALS recommendations refreshed from those factors;
- :mod:`.sharding`, :mod:`.shards`, :mod:`.snapshot` — one run over several
  workers (docs/scaling.md).

No Celery task is imported here: :mod:`django_recs.dispatch` sends runs to
the workers and :mod:`django_recs.tasks` runs them there.
"""

from __future__ import annotations

from .runs import (
    STAGES,
    PreparedRun,
    active_run,
    base_metrics,
    build_matrix,
    clean_up_after,
    complete_run,
    delete_run_rows,
    execute_run,
    fail_lost_run,
    fail_stale_runs,
    prepare_run,
    recompute_order,
    run_claimed,
    start_run,
    swap_active_run,
    sweep_runs,
)
from .tracking import RunTracker
from .writing import store_rows, write_results

__all__ = [
    "STAGES",
    "PreparedRun",
    "RunTracker",
    "active_run",
    "base_metrics",
    "build_matrix",
    "clean_up_after",
    "complete_run",
    "delete_run_rows",
    "execute_run",
    "fail_lost_run",
    "fail_stale_runs",
    "prepare_run",
    "recompute_order",
    "run_claimed",
    "start_run",
    "store_rows",
    "swap_active_run",
    "sweep_runs",
    "write_results",
]
