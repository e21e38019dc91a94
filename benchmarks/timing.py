"""Timing of one render path against another, shared by the serving-overhead benchmarks."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable


def interleaved_medians(
    render: Callable[[bool, int], object],
    renders: int,
    block: int,
    *,
    setting: Callable[[bool], contextlib.AbstractContextManager] = (
        lambda flag: contextlib.nullcontext()),
) -> dict:
    """Median wall and CPU milliseconds of ``render(False, i)`` against ``render(True, i)``.

    The two run in alternating blocks of ``block`` renders (the order swapped
    every block), each block inside ``setting(flag)``, so drifts of a shared
    machine fall on both sides alike. Returns ``off``/``on``/``extra``/``ratio``
    (wall) and ``cpu_off``/``cpu_on``/``cpu_extra`` (this thread's CPU time).
    """
    wall = {False: [], True: []}
    cpu = {False: [], True: []}
    for number, start in enumerate(range(0, renders, block)):
        for flag in (False, True) if number % 2 else (True, False):
            with setting(flag):
                for i in range(start, start + block):
                    began, began_cpu = time.perf_counter_ns(), time.thread_time_ns()
                    render(flag, i)
                    cpu[flag].append((time.thread_time_ns() - began_cpu) / 1e6)
                    wall[flag].append((time.perf_counter_ns() - began) / 1e6)
    off, on = statistics.median(wall[False]), statistics.median(wall[True])
    cpu_off, cpu_on = statistics.median(cpu[False]), statistics.median(cpu[True])
    return {"off": off, "on": on, "extra": on - off, "ratio": on / off,
            "cpu_off": cpu_off, "cpu_on": cpu_on, "cpu_extra": cpu_on - cpu_off}
