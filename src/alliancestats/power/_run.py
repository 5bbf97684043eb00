"""Execution machinery of :func:`alliancestats.power.power`.

Seeding, chunking, checkpointing and the serial / joblib / dask backends live here, apart
from the statistics. The unit of work is a :class:`ChunkTask`: a contiguous range of
replicates of one grid cell. A replicate's random numbers come from its own
``SeedSequence(entropy, spawn_key=(*root_key, n_therapists, n_patients, n_sessions,
replicate))``, so a replicate's result depends on nothing but the settings and its
indices: not on the number of workers, the backend, the chunk boundaries, the grid it
sits in, or whether the run was interrupted and resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..simulate import PRNParams
from ._designs import Design, FitOutcome, Panel, Sizes, simulate_panel

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "ChunkTask",
    "assemble",
    "default_chunk_size",
    "execute",
    "plan_tasks",
    "replicate_seed",
    "run_chunk",
]

CHECKPOINT_FORMAT = 1
MANIFEST = "manifest.json"
STATUSES = ("ok", "singular", "not converged", "error")

#: Exceptions a numerically hopeless replicate may raise; anything else is a bug and
#: propagates.
NUMERICAL_ERRORS: tuple[type[Exception], ...] = (
    np.linalg.LinAlgError,
    ArithmeticError,
    ValueError,
    RuntimeError,
)

Chunk = dict[str, np.ndarray]


def replicate_seed(
    entropy: int, root_key: Sequence[int], sizes: Sizes, replicate: int
) -> np.random.SeedSequence:
    """The seed of one replicate: a pure function of the settings and its indices."""
    key = (*root_key, sizes.n_therapists, sizes.n_patients, sizes.n_sessions, replicate)
    return np.random.SeedSequence(entropy, spawn_key=key)


@dataclass(frozen=True)
class ChunkTask:
    """Replicates ``start .. stop-1`` of one grid cell."""

    design: Design
    sizes: Sizes
    params: PRNParams
    p_missing: float
    engine: str
    entropy: int
    root_key: tuple[int, ...]
    start: int
    stop: int
    theta0: tuple[float, ...] | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start


def fit_replicate(task: ChunkTask, panel: Panel) -> FitOutcome:
    """Fit one simulated trial; numerical failures become an "error" outcome."""
    try:
        if task.engine == "fast":
            return task.design.fit_fast(panel, task.theta0)
        return task.design.fit_public(panel.to_frame())
    except NUMERICAL_ERRORS as exc:
        nan = np.full(len(task.design.terms), np.nan)
        return FitOutcome(nan, nan, "error", f"{type(exc).__name__}: {exc}")


def simulate_replicate(task: ChunkTask, replicate: int) -> Panel:
    """The simulated trial of one replicate (deterministic in the task's settings)."""
    seed = replicate_seed(task.entropy, task.root_key, task.sizes, replicate)
    return simulate_panel(np.random.default_rng(seed), task.sizes, task.params, task.p_missing)


def one_blas_thread() -> Any:
    """A context in which BLAS/LAPACK run single-threaded.

    Every path that computes results (serial, joblib and dask workers, the pilot fit)
    runs its arithmetic in this context: multi-threaded BLAS may sum in a different
    order, and results must not depend on where a replicate ran.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def run_chunk(task: ChunkTask) -> Chunk:
    """Simulate and fit the task's replicates; a dict of arrays, one row per replicate."""
    with one_blas_thread():
        return _run_chunk(task)


def _run_chunk(task: ChunkTask) -> Chunk:
    n, k = task.size, len(task.design.terms)
    est = np.full((n, k), np.nan)
    se = np.full((n, k), np.nan)
    status = np.empty(n, dtype="U16")
    message = np.empty(n, dtype=object)
    seconds = np.zeros((n, 2))
    for i, rep in enumerate(range(task.start, task.stop)):
        t0 = time.perf_counter()
        panel = simulate_replicate(task, rep)
        t1 = time.perf_counter()
        out = fit_replicate(task, panel)
        seconds[i] = (t1 - t0, time.perf_counter() - t1)
        est[i], se[i], status[i], message[i] = out.estimate, out.std_error, out.status, out.message
    return {
        "sizes": np.array(
            [task.sizes.n_therapists, task.sizes.n_patients, task.sizes.n_sessions]
        ),
        "replicate": np.arange(task.start, task.stop, dtype=np.int64),
        "estimate": est,
        "std_error": se,
        "status": status,
        "message": message.astype(str),
        "seconds": seconds,
    }


def default_chunk_size(n_sims: int, n_workers: int) -> int:
    """About four chunks per worker and cell, between 5 and 100 replicates each."""
    return int(min(100, max(5, math.ceil(n_sims / (4 * max(n_workers, 1))))))


def plan_tasks(
    template: ChunkTask,
    cells: Sequence[Sizes],
    n_sims: int,
    done: Mapping[Sizes, set[int]],
    chunk_size: int,
    theta0: Mapping[Sizes, tuple[float, ...] | None],
) -> list[ChunkTask]:
    """Tasks covering every replicate below ``n_sims`` not in ``done``, once each."""
    tasks = []
    for sizes in cells:
        missing = sorted(set(range(n_sims)) - done.get(sizes, set()))
        for start, stop in _runs(missing, chunk_size):
            tasks.append(
                ChunkTask(
                    template.design, sizes, template.params, template.p_missing,
                    template.engine, template.entropy, template.root_key, start, stop,
                    theta0.get(sizes),
                )
            )
    return tasks


def _runs(values: Sequence[int], max_len: int) -> Iterator[tuple[int, int]]:
    """Split sorted integers into [start, stop) runs of consecutive values."""
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1 and j + 1 - i < max_len:
            j += 1
        yield values[i], values[j] + 1
        i = j + 1


# --------------------------------------------------------------------------- checkpoint


def settings_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the result-determining settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _atomic_write(path: Path, write: Callable[[Any], None], binary: bool) -> None:
    """Write through a temporary file in the same directory, then ``os.replace``.

    A reader (or a resumed run) therefore sees either the complete file or none.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Checkpoint:
    """A directory of finished chunks plus a manifest of the settings that made them.

    Layout: ``manifest.json`` and one ``<cell>/reps-<start>-<stop>.npz`` per chunk.
    ``settings`` holds only what determines a replicate's numbers (design, parameters,
    missingness, engine, seed), so a checkpoint can be extended with more replicates or
    more grid cells, and re-summarised at another ``alpha``.
    """

    def __init__(self, path: str | os.PathLike[str], settings: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.settings = dict(settings)
        self.key = settings_hash(self.settings)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"`checkpoint` {str(self.path)!r} exists and is not a directory.")
        manifest = read_manifest(self.path)
        if manifest is None:
            self.path.mkdir(parents=True, exist_ok=True)
            if any(self.path.iterdir()):
                raise ValueError(
                    f"`checkpoint` directory {str(self.path)!r} is not empty and has no "
                    f"{MANIFEST}; give an empty or new directory."
                )
            body = {"format": CHECKPOINT_FORMAT, "hash": self.key, "settings": self.settings}
            _atomic_write(
                self.path / MANIFEST,
                lambda h: json.dump(body, h, indent=2, sort_keys=True, default=str),
                binary=False,
            )
        else:
            self._check(manifest)

    def _check(self, manifest: Mapping[str, Any]) -> None:
        if manifest.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"`checkpoint` {str(self.path)!r} has format {manifest.get('format')!r}; "
                f"this version reads format {CHECKPOINT_FORMAT}. Use a new directory."
            )
        if manifest.get("hash") == self.key:
            return
        old = manifest.get("settings", {})
        new = json.loads(json.dumps(self.settings, sort_keys=True, default=str))
        diffs = _diff(old, new)
        raise ValueError(
            f"`checkpoint` {str(self.path)!r} was made with different settings, so its "
            f"replicates cannot be reused: {'; '.join(diffs[:6]) or 'settings differ'}. "
            f"Run with the original settings to resume, or use a new checkpoint directory."
        )

    def _file(self, sizes: Sizes, start: int, stop: int) -> Path:
        return self.path / sizes.label() / f"reps-{start:07d}-{stop:07d}.npz"

    def save(self, chunk: Chunk) -> None:
        """Store one finished chunk atomically."""
        sizes = Sizes(*(int(v) for v in chunk["sizes"]))
        reps = chunk["replicate"]
        target = self._file(sizes, int(reps[0]), int(reps[-1]) + 1)
        target.parent.mkdir(exist_ok=True)
        _atomic_write(target, lambda h: np.savez(h, **chunk), binary=True)  # type: ignore[arg-type]

    def load(self, cells: Iterable[Sizes]) -> dict[Sizes, list[Chunk]]:
        """Every stored chunk of the given cells (leftover temporary files are ignored)."""
        found: dict[Sizes, list[Chunk]] = {}
        for sizes in cells:
            folder = self.path / sizes.label()
            files = sorted(folder.glob("reps-*.npz")) if folder.is_dir() else []
            chunks = []
            for file in files:
                with np.load(file, allow_pickle=False) as data:
                    chunks.append({name: data[name] for name in data.files})
            found[sizes] = chunks
        return found


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a checkpoint directory, or None when there is none."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        return None
    try:
        with file.open() as handle:
            manifest: dict[str, Any] = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"`checkpoint` manifest {str(file)!r} is not valid JSON: {exc}.") from exc
    return manifest


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} was {a!r}, now {b!r}")
    return out


# --------------------------------------------------------------------------- assembly


def done_replicates(chunks: Mapping[Sizes, list[Chunk]]) -> dict[Sizes, set[int]]:
    """Replicate indices already computed, per cell."""
    return {
        sizes: {int(r) for chunk in found for r in chunk["replicate"]}
        for sizes, found in chunks.items()
    }


def assemble(chunks: Sequence[Chunk], n_sims: int, n_terms: int) -> Chunk:
    """Merge one cell's chunks into arrays ordered by replicate 0 .. n_sims-1.

    Replicates at or beyond ``n_sims`` (from a longer earlier run in the same
    checkpoint) are left out. Raises if a replicate is missing, or stored twice with
    different numbers.
    """
    est = np.full((n_sims, n_terms), np.nan)
    se = np.full((n_sims, n_terms), np.nan)
    status = np.full(n_sims, "", dtype="U16")
    message = np.full(n_sims, "", dtype=object)
    seconds = np.zeros((n_sims, 2))
    seen = np.zeros(n_sims, dtype=bool)
    for chunk in chunks:
        for i, rep in enumerate(chunk["replicate"]):
            if rep >= n_sims:
                continue
            if seen[rep]:
                same = np.array_equal(est[rep], chunk["estimate"][i], equal_nan=True)
                if not same:
                    raise RuntimeError(f"replicate {rep} is stored twice with different values.")
                continue
            seen[rep] = True
            est[rep], se[rep] = chunk["estimate"][i], chunk["std_error"][i]
            status[rep], message[rep] = chunk["status"][i], chunk["message"][i]
            seconds[rep] = chunk["seconds"][i]
    if not seen.all():
        raise RuntimeError(f"replicates missing after the run: {np.flatnonzero(~seen)[:10]}")
    return {
        "estimate": est,
        "std_error": se,
        "status": status,
        "message": message.astype(str),
        "seconds": seconds,
    }


# --------------------------------------------------------------------------- backends


def _after_chunk(chunk: Chunk) -> None:
    """Hook called in the main process after each chunk is stored (used by tests)."""


def execute(
    tasks: Sequence[ChunkTask],
    *,
    n_jobs: int,
    backend: Any,
    on_result: Callable[[Chunk], None],
) -> None:
    """Run the tasks serially, with joblib, or on a dask cluster; ``on_result`` each.

    ``on_result`` is called in the main process as chunks finish, in completion order;
    results do not depend on that order.
    """
    if not tasks:
        return
    if is_dask_backend(backend):
        _execute_dask(tasks, n_jobs, backend, on_result)
    elif backend is None and n_jobs == 1:
        for task in tasks:
            on_result(run_chunk(task))
    else:
        _execute_joblib(tasks, n_jobs, backend, on_result)


def is_dask_backend(backend: Any) -> bool:
    """True for "dask", a scheduler address or a ``distributed.Client``."""
    if isinstance(backend, str):
        return backend == "dask" or "://" in backend
    return type(backend).__name__ == "Client" and type(backend).__module__.startswith(
        "distributed"
    )


def _execute_joblib(
    tasks: Sequence[ChunkTask], n_jobs: int, backend: str | None,
    on_result: Callable[[Chunk], None],
) -> None:
    from joblib import Parallel, delayed

    try:
        parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
    except ValueError:  # joblib < 1.4: ordered generator (results do not depend on order)
        parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
    for chunk in parallel(delayed(run_chunk)(task) for task in tasks):
        on_result(chunk)


def _execute_dask(
    tasks: Sequence[ChunkTask], n_jobs: int, backend: Any,
    on_result: Callable[[Chunk], None],
) -> None:
    try:
        from distributed import as_completed
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "`backend='dask'` needs dask.distributed: pip install 'alliancestats[dask]'."
        ) from exc
    with _dask_client(backend, n_jobs) as client:
        futures = client.map(run_chunk, list(tasks), pure=False)
        try:
            for future in as_completed(futures):
                on_result(future.result())
        finally:
            client.cancel(futures)


@contextlib.contextmanager
def _dask_client(backend: Any, n_jobs: int) -> Iterator[Any]:
    """The user's Client, a Client to an address, the current default client, or a new
    LocalCluster with ``n_jobs`` single-threaded worker processes (closed afterwards)."""
    from distributed import Client, LocalCluster, default_client

    if not isinstance(backend, str):
        yield backend
        return
    if backend != "dask":
        with Client(backend) as client:
            yield client
        return
    try:
        current = default_client()
    except ValueError:  # no client running in this process
        current = None
    if current is not None:
        yield current
        return
    from joblib import cpu_count

    workers = cpu_count() if n_jobs < 0 else n_jobs
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client
