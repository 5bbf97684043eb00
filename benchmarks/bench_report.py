"""Wall time, CPU time and peak memory of each section of ``alliancestats report``.

Runs :func:`alliancestats.report.run_report` on the bundled data set (1x: 40 therapists,
117 patients, 6 sessions) and on simulated PRN data sets 10x and 100x that size
(``simulate_prn(400, 1170, 6)``, ``simulate_prn(4000, 11700, 6)``; issue target: the 100x
report in at most 60 s on 2 cores). Section times are read from the report's progress
lines, with the process CPU time (``time.process_time``, all threads) beside the wall
time, since on a shared machine the wall time depends on its load; memory is sampled
(``VmRSS`` from ``/proc/self/status``, Linux) every 10 ms on a background thread, and each
section's peak is the largest sample between its progress lines minus the resident size
when it started. Plain script:

    python benchmarks/bench_report.py            # 1x and 10x
    python benchmarks/bench_report.py --sizes 1 10 100
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import sys
import tempfile
import threading
import time
import warnings
from typing import Any

from alliancestats import datasets, simulate_prn
from alliancestats.report import run_report

SIZES = {1: None, 10: (400, 1170, 6), 100: (4000, 11700, 6)}


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.perf_counter(), _rss_mb()))
            time.sleep(0.01)


class _Lines(io.TextIOBase):
    """stderr replacement that timestamps the report's progress lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.lines.append((time.perf_counter(), time.process_time(), line))
        return len(text)


def run(size: int) -> dict[str, Any]:
    shape = SIZES[size]
    data = datasets.load("prn") if shape is None else simulate_prn(*shape, rng=2026)
    sampler, lines = _Sampler(), _Lines()
    sampler.start()
    old, sys.stderr = sys.stderr, lines
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as out:
            warnings.simplefilter("ignore")
            report = run_report(data, out=out, progress=True)
    finally:
        sys.stderr = old
        total = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        sampler.stop.set()
        sampler.join()
    marks = [(t, c, m.group(1)) for t, c, line in lines.lines
             if (m := re.match(r"alliancestats report: (.*?) \.\.\.$", line))]
    ends = [(t, c) for t, c, line in lines.lines if re.search(r": .* \(\d+\.\d s\)$", line)]
    rows = []
    for (t0, c0, title), (t1, c1) in zip(marks, ends, strict=False):
        inside = [rss for t, rss in sampler.samples if t0 <= t <= t1]
        before = max((rss for t, rss in sampler.samples if t <= t0), default=_rss_mb())
        rows.append((title, t1 - t0, c1 - c0, max(inside, default=before) - before,
                     max(inside, default=before)))
    return {"size": size, "rows": len(data), "total": total, "cpu": cpu, "sections": rows,
            "ok": report.ok, "statuses": report.sections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10],
                        choices=sorted(SIZES))
    args = parser.parse_args()
    print(f"{platform.platform()}; Python {platform.python_version()}; "
          f"{os.cpu_count()} CPUs")
    for size in args.sizes:
        res = run(size)
        print(f"\n{size}x ({res['rows']} rows): {res['total']:.1f} s wall, "
              f"{res['cpu']:.1f} s CPU, ok={res['ok']}")
        print(f"  {'section':<62} {'wall s':>7} {'CPU s':>7} {'+MB':>7} {'peak MB':>8}")
        for title, secs, cpu, grow, peak in res["sections"]:
            print(f"  {title[:62]:<62} {secs:7.1f} {cpu:7.1f} {grow:7.0f} {peak:8.0f}")
        for title, status in res["statuses"]:
            if status != "done":
                print(f"  status: {title}: {status}")


if __name__ == "__main__":
    main()
