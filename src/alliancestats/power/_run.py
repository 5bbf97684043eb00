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
import dataclasses
import hashlib
import json
import math
import os
import re
import socket
import tempfile
import time
import zipfile
import zlib
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
    "CheckpointLock",
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
    caseloads: tuple[int, ...] | None = None
    nesting: str = "full"

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
    return simulate_panel(np.random.default_rng(seed), task.sizes, task.params, task.p_missing,
                          task.caseloads, task.nesting)


def one_blas_thread() -> Any:
    """A context in which BLAS/LAPACK run single-threaded.

    Every path that computes results (serial, joblib and dask workers, the pilot fit)
    runs its arithmetic in this context: multi-threaded BLAS may sum in a different
    order, and results must not depend on where a replicate ran.
    """
    import contextlib
    import threading

    from threadpoolctl import threadpool_limits

    if threading.current_thread() is threading.main_thread():
        return threadpool_limits(limits=1, user_api="blas")
    # A worker thread (a threaded dask worker runs chunks side by side): the limit is
    # process-wide, so one chunk restoring it on exit would let another compute with
    # several BLAS threads. Worker threads set it and leave it set.
    threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


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
    df = np.full((n, k), np.nan)
    for i, rep in enumerate(range(task.start, task.stop)):
        t0 = time.perf_counter()
        panel = simulate_replicate(task, rep)
        t1 = time.perf_counter()
        out = fit_replicate(task, panel)
        seconds[i] = (t1 - t0, time.perf_counter() - t1)
        est[i], se[i], status[i], message[i] = out.estimate, out.std_error, out.status, out.message
        if out.df is not None:
            df[i] = out.df
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
        "df": df,
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
                    theta0.get(sizes), template.caseloads, template.nesting,
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


CHUNK_KEYS = ("sizes", "replicate", "estimate", "std_error", "status", "message", "seconds")
LOCK = ".lock"
QUARANTINE = "quarantine"
_CHUNK_NAME = re.compile(r"reps-(\d{7})-(\d{7})\.npz")


class CheckpointLock:
    """Exclusive lock of a checkpoint directory for the whole of one run.

    The lock is an advisory ``flock`` on ``<checkpoint>/.lock`` (``msvcrt.locking`` on
    Windows), which the operating system releases when the process ends, however it
    ends: a killed run never leaves a stale lock. The file records the holder's process
    id, host and start time, so a second run on the same directory fails at once with
    a message naming the first.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handle: Any = None

    def __enter__(self) -> CheckpointLock:
        path = self.path
        if path.exists() and not path.is_dir():
            raise ValueError(f"`checkpoint` {str(path)!r} exists and is not a directory.")
        if path.is_dir() and not (path / MANIFEST).exists() and not (path / LOCK).exists():
            _refuse_foreign(path)
        path.mkdir(parents=True, exist_ok=True)
        handle = (path / LOCK).open("a+")  # held open (and locked) for the whole run
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise BlockingIOError(
                f"`checkpoint` directory {str(path)!r} is in use by another power run "
                f"({holder}); wait for it to finish, or give another directory."
            )
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"process {os.getpid()} on {socket.gethostname()}, started {started}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            _unlock(self._handle)
            self._handle.close()
            self._handle = None


def _try_lock(handle: Any) -> bool:
    """Take an exclusive lock on an open file without waiting; False if it is held."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        handle.seek(0)
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _refuse_foreign(path: Path) -> None:
    """Refuse a non-empty directory that is not a checkpoint (never write into it).

    The lock file and leftovers of a write cut short (``.tmp-*``, e.g. a run killed
    while writing its manifest) do not count: such a directory is a checkpoint that
    never got its manifest.
    """
    if any(p.name != LOCK and not p.name.startswith(".tmp-") for p in path.iterdir()):
        raise ValueError(
            f"`checkpoint` directory {str(path)!r} is not empty and has no "
            f"{MANIFEST}; give an empty or new directory."
        )


class Checkpoint:
    """A directory of finished chunks plus a manifest of the settings that made them.

    Layout: ``manifest.json``, ``.lock`` and one ``<cell>/reps-<start>-<stop>.npz`` per
    chunk; damaged chunks are moved to ``quarantine/``. ``settings`` holds only what
    determines a replicate's numbers (design, parameters, missingness, engine, seed), so
    a checkpoint can be extended with more replicates or more grid cells, and
    re-summarised at another ``alpha``. Open it while holding its
    :class:`CheckpointLock`.
    """

    def __init__(self, path: str | os.PathLike[str], settings: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.settings = dict(settings)
        self.key = settings_hash(self.settings)
        self.quarantined: list[str] = []
        self._stored: dict[Sizes, set[int]] = {}
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"`checkpoint` {str(self.path)!r} exists and is not a directory.")
        manifest = read_manifest(self.path)
        if manifest is None:
            self.path.mkdir(parents=True, exist_ok=True)
            _refuse_foreign(self.path)
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
        """Store one finished chunk atomically; a replicate is never stored twice."""
        sizes = Sizes(*(int(v) for v in chunk["sizes"]))
        reps = {int(r) for r in chunk["replicate"]}
        stored = self._stored.setdefault(sizes, set())
        if reps & stored:
            raise RuntimeError(
                f"replicates {sorted(reps & stored)[:5]} of cell {sizes.label()} are "
                f"already stored in the checkpoint; refusing to store them twice."
            )
        target = self._file(sizes, min(reps), max(reps) + 1)
        target.parent.mkdir(exist_ok=True)
        _atomic_write(target, lambda h: np.savez(h, **chunk), binary=True)  # type: ignore[arg-type]
        stored |= reps

    def load(self, cells: Iterable[Sizes], n_terms: int) -> dict[Sizes, list[Chunk]]:
        """Every valid stored chunk of the given cells.

        Leftover temporary files are ignored. A chunk that cannot be read, lacks an
        array, has arrays of the wrong shape or type, does not match its file name, or
        repeats replicates of a chunk already accepted is moved to ``quarantine/``
        (listed in :attr:`quarantined`, with the reason); its replicates are then
        missing and are computed again.
        """
        found: dict[Sizes, list[Chunk]] = {}
        for sizes in cells:
            folder = self.path / sizes.label()
            files = sorted(folder.glob("reps-*.npz")) if folder.is_dir() else []
            chunks: list[Chunk] = []
            seen: set[int] = set()
            for file in files:
                chunk, problem = _read_chunk(file, sizes, n_terms)
                if chunk is not None and seen & {int(r) for r in chunk["replicate"]}:
                    chunk, problem = None, "repeats replicates stored in another chunk"
                if chunk is None:
                    self._quarantine(file, problem)
                    continue
                seen |= {int(r) for r in chunk["replicate"]}
                chunks.append(chunk)
            found[sizes] = chunks
            self._stored[sizes] = seen
        return found

    def _quarantine(self, file: Path, problem: str) -> None:
        folder = self.path / QUARANTINE
        folder.mkdir(exist_ok=True)
        target = folder / f"{file.parent.name}-{file.name}"
        k = 1
        while target.exists():
            target = folder / f"{file.parent.name}-{file.stem}-{k}{file.suffix}"
            k += 1
        os.replace(file, target)
        self.quarantined.append(f"{file.parent.name}/{file.name}: {problem}")


def _read_chunk(file: Path, sizes: Sizes, n_terms: int) -> tuple[Chunk | None, str]:
    """A stored chunk, checked against its cell and file name; or None and the reason."""
    try:
        with np.load(file, allow_pickle=False) as data:
            missing = [k for k in CHUNK_KEYS if k not in data.files]
            if missing:
                return None, f"no array {missing[0]!r}"
            chunk = {name: data[name] for name in CHUNK_KEYS}
            if "df" in data.files:  # optional: absent in chunks of Wald z runs
                chunk["df"] = data["df"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    name = _CHUNK_NAME.fullmatch(file.name)
    if name is None:
        return None, "file name is not reps-<start>-<stop>.npz"
    reps, cell = chunk["replicate"], chunk["sizes"]
    n = reps.shape[0] if reps.ndim == 1 else 0
    if not (cell.shape == (3,) and cell.dtype.kind in "iu"
            and tuple(int(v) for v in cell) == dataclasses.astuple(sizes)):
        return None, f"sizes do not match its cell {sizes.label()}"
    if n == 0 or reps.dtype.kind not in "iu":
        return None, "replicate indices missing or not integers"
    shapes = {"estimate": (n, n_terms), "std_error": (n, n_terms), "status": (n,),
              "message": (n,), "seconds": (n, 2),
              **({"df": (n, n_terms)} if "df" in chunk else {})}
    checks = [
        (np.array_equal(reps, np.arange(int(name.group(1)), int(name.group(2)))),
         "replicate indices do not match the file name"),
        (all(chunk[k].shape == s for k, s in shapes.items()), "arrays of the wrong shape"),
        (all(chunk[k].dtype.kind == "f" for k in ("estimate", "std_error", "seconds")
             if k in chunk) and ("df" not in chunk or chunk["df"].dtype.kind == "f"),
         "numbers are not floating point"),
        (chunk["status"].dtype.kind == "U" and chunk["message"].dtype.kind == "U"
         and bool(np.isin(chunk["status"], STATUSES).all()), "unknown fit status"),
    ]
    for ok, problem in checks:
        if not ok:
            return None, problem
    return chunk, ""


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a checkpoint directory, or None when there is none.

    Raises ValueError when the file is not a checkpoint manifest (invalid JSON, not an
    object, no settings with a seed).
    """
    file = Path(path) / MANIFEST
    if not file.is_file():
        return None
    try:
        with file.open() as handle:
            manifest = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"`checkpoint` manifest {str(file)!r} is not valid JSON ({exc}); the "
            f"checkpoint cannot be resumed: use a new directory."
        ) from exc
    settings = manifest.get("settings") if isinstance(manifest, dict) else None
    if not isinstance(settings, dict) or not {"entropy", "root_key"} <= set(settings):
        kind = type(manifest).__name__ if not isinstance(manifest, dict) else "object"
        raise ValueError(
            f"`checkpoint` manifest {str(file)!r} is damaged (a JSON {kind} without the "
            f"run's settings and seed); the checkpoint cannot be resumed: use a new "
            f"directory."
        )
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
    df = np.full((n_sims, n_terms), np.nan)
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
            if "df" in chunk:  # chunks stored before df existed are Wald z tests
                df[rep] = chunk["df"][i]
    if not seen.all():
        raise RuntimeError(f"replicates missing after the run: {np.flatnonzero(~seen)[:10]}")
    return {
        "estimate": est,
        "std_error": se,
        "status": status,
        "message": message.astype(str),
        "seconds": seconds,
        "df": df,
    }


# --------------------------------------------------------------------------- backends


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
