"""How many threads a kernel may use, and keeping BLAS from oversubscribing.

One helper resolves ``num_threads`` for every kernel: 0 means "the cores
available to this process", which respects OMP_NUM_THREADS, the CPU affinity
mask (taskset, Celery's --autoscale on pinned workers) and a cgroup CPU quota
(containers), whichever is smallest.
"""

from __future__ import annotations

import math
import operator
import os
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits


def _cgroup_cpu_limit() -> int | None:
    """CPUs allowed by a cgroup v2 (cpu.max) or v1 (cfs quota) limit, if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def available_cores() -> int:
    """Cores this process may run on (affinity mask and cgroup quota)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(cores, limit) if limit else cores)


def resolve_num_threads(num_threads: int = 0) -> int:
    """Turn a kernel's ``num_threads`` argument into a positive thread count.

    0 means all available cores, capped by OMP_NUM_THREADS when it is set.
    Raises ValueError for a negative or non-integer value.
    """
    if num_threads is None:
        num_threads = 0
    try:
        num_threads = operator.index(num_threads)  # int and numpy integers, not floats
    except TypeError:
        raise ValueError(f"num_threads must be an integer, got {num_threads!r}") from None
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0 = all cores), got {num_threads}")
    if num_threads > 0:
        return num_threads
    cores = available_cores()
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        cores = min(cores, int(env))
    return cores


@contextmanager
def limit_blas_threads(num_threads: int):
    """Cap BLAS (OpenBLAS, MKL) at ``num_threads`` while a kernel runs.

    The kernels parallelise with OpenMP themselves and call BLAS from inside
    their threads; letting BLAS spawn its own threads on top would
    oversubscribe a Celery worker's cores.
    """
    with threadpool_limits(limits=num_threads, user_api="blas"):
        yield
