"""Tests of the Monte-Carlo power machinery and the power designs.

The machinery (seeding, chunking, checkpoints, backends, bookkeeping) is tested with a
stand-in design whose "fit" is ordinary least squares on numpy arrays, so these tests are
fast and independent of the mixed-model engines; the stand-in also produces singular,
non-converged and failing replicates, deterministically from the simulated data, to
check the failure accounting. The real designs are tested against the public model
functions and for type-I error, power and monotonicity.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliancestats import PRNParams, simulate_prn
from alliancestats.exceptions import AllianceStatsWarning
from alliancestats.power import PowerResult, SizeSearch, find_size, null_effects, power
from alliancestats.power import _run as run
from alliancestats.power._designs import Design, FitOutcome, Panel, Sizes, simulate_panel

SRC = Path(__file__).parents[1] / "src"

# ----------------------------------------------------------------------------- stand-in


def _standin_columns(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """OLS design of the truth-and-bias fixed part: J* ~ T* * condition * session."""
    pat, ses = np.nonzero(panel.observed)
    truth = panel.alliance_patient[pat, ses]
    judgment = panel.alliance_therapist[pat, ses]
    centre = truth.mean()
    t, c, s = truth - centre, panel.condition[panel.therapist[pat]], ses + 1.0
    X = np.column_stack([np.ones_like(t), t, c, t * c, s, t * s, c * s, t * c * s])
    return X, judgment - centre


def standin_fit(panel: Panel, start: tuple[float, ...] | None) -> FitOutcome:
    """OLS; the first patient's first truth value decides a (deterministic) status."""
    return _standin_ols(*_standin_columns(panel), panel.alliance_patient[0, 0])


def _standin_ols(X: np.ndarray, y: np.ndarray, first_truth: float) -> FitOutcome:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    cov = resid @ resid / (len(y) - X.shape[1]) * np.linalg.inv(X.T @ X)
    flag = first_truth - 5.2
    if flag > 1.2:
        raise np.linalg.LinAlgError("stand-in numerical failure")
    status = "not converged" if flag < -1.2 else "singular" if flag > 0.9 else "ok"
    est, se = beta[[7, 1]], np.sqrt(np.diag(cov)[[7, 1]])
    return FitOutcome(est, se, status, f"flag {flag:.2f}", theta=None)


def standin_public(frame: pd.DataFrame) -> FitOutcome:
    """The same OLS from the data frame (the path engine="statsmodels" takes)."""
    truth = frame["alliance_patient"].to_numpy()
    centre = truth.mean()
    t, c = truth - centre, frame["condition"].to_numpy(float)
    s = frame["session"].to_numpy(float)
    X = np.column_stack([np.ones_like(t), t, c, t * c, s, t * s, c * s, t * c * s])
    y = frame["alliance_therapist"].to_numpy() - centre
    return _standin_ols(X, y, truth[0])


def standin_truth(params: PRNParams, sizes: Sizes) -> np.ndarray:
    return np.array([params.gamma13, np.nan])


STANDIN = Design(
    name="standin",
    model="OLS stand-in",
    terms=("truth:condition:session", "truth"),
    descriptions=("γ13", "truth force"),
    null={"gamma13": 0.0},
    fit_fast=standin_fit,
    fit_public=standin_public,
    true_values=standin_truth,
)

SMALL = {"n_therapists": [6, 10], "n_patients": 20, "n_sessions": 3}


def standin_power(**kwargs: object) -> PowerResult:
    args = {"n_sims": 30, "rng": 2024, "progress": False, "engine": "fast", **SMALL,
            **kwargs}
    return power(STANDIN, **args)  # type: ignore[arg-type]


def assert_same_results(a: PowerResult, b: PowerResult) -> None:
    """Bit-identical tables (no tolerance)."""
    for name in ("power", "estimates", "std_errors", "pvalues", "failures"):
        left, right = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(left, right, check_exact=True)
        assert left.equals(right), name


# ------------------------------------------------------------------------------ seeding


class TestSimulationMatchesSimulatePrn:
    @pytest.mark.parametrize("p_missing", [0.0, 0.2])
    def test_same_frame_for_same_seed(self, p_missing: float) -> None:
        seed = np.random.SeedSequence(5, spawn_key=(1, 2))
        params = PRNParams(gamma13=0.1)
        panel = simulate_panel(np.random.default_rng(seed), Sizes(7, 19, 4), params,
                               p_missing)
        frame = simulate_prn(7, 19, 4, params=params, p_missing=p_missing, rng=seed)
        frame.attrs = {}
        pd.testing.assert_frame_equal(panel.to_frame(), frame)

    def test_replicate_seed_depends_only_on_indices(self) -> None:
        a = run.replicate_seed(9, (), Sizes(10, 30, 6), 3).generate_state(4)
        b = run.replicate_seed(9, (), Sizes(10, 30, 6), 3).generate_state(4)
        c = run.replicate_seed(9, (), Sizes(10, 30, 6), 4).generate_state(4)
        d = run.replicate_seed(9, (), Sizes(12, 30, 6), 3).generate_state(4)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)
        assert not np.array_equal(a, d)


# ---------------------------------------------------------------------------- invariance


class TestReproducibility:
    def test_same_seed_same_results(self) -> None:
        assert_same_results(standin_power(), standin_power())

    def test_chunking_does_not_matter(self) -> None:
        assert_same_results(standin_power(chunk_size=7), standin_power(chunk_size=100))

    def test_cell_results_do_not_depend_on_the_grid(self) -> None:
        grid = standin_power()
        alone = standin_power(n_therapists=10)
        pd.testing.assert_frame_equal(
            grid.power.query("n_therapists == 10").reset_index(drop=True), alone.power
        )

    def test_parallel_joblib_equals_serial(self) -> None:
        assert_same_results(standin_power(), standin_power(n_jobs=2, chunk_size=8))

    def test_threading_backend_equals_serial(self) -> None:
        assert_same_results(standin_power(), standin_power(n_jobs=2, backend="threading"))

    def test_dask_client_equals_serial(self) -> None:
        distributed = pytest.importorskip("distributed")
        with (
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            res = standin_power(backend=client, chunk_size=9)
        assert_same_results(standin_power(), res)

    def test_generator_and_seed_sequence_are_accepted(self) -> None:
        a = standin_power(rng=np.random.SeedSequence(77))
        b = standin_power(rng=77)
        assert_same_results(a, b)
        g1 = standin_power(rng=np.random.default_rng(3))
        g2 = standin_power(rng=np.random.default_rng(3))
        assert_same_results(g1, g2)
        assert g1.settings["entropy"] == g2.settings["entropy"]

    def test_unseeded_runs_record_their_entropy(self) -> None:
        a = standin_power(rng=None)
        b = standin_power(rng=a.settings["entropy"])
        assert_same_results(a, b)


# ---------------------------------------------------------------------------- checkpoint


class _Interrupt(Exception):
    pass


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, k: int) -> list[int]:
    """Make the serial runner stop (as a crash would) when chunk ``k + 1`` starts."""
    seen: list[int] = []
    real = run.run_chunk

    def counting(task: run.ChunkTask) -> run.Chunk:
        if len(seen) == k:
            raise _Interrupt
        chunk = real(task)
        seen.append(len(chunk["replicate"]))
        return chunk

    monkeypatch.setattr(run, "run_chunk", counting)
    return seen


def _record_computed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Record every replicate the serial runner computes."""
    computed: list[tuple[int, ...]] = []
    real = run.run_chunk

    def recording(task: run.ChunkTask) -> run.Chunk:
        chunk = real(task)
        computed.extend((*chunk["sizes"], r) for r in chunk["replicate"])
        return chunk

    monkeypatch.setattr(run, "run_chunk", recording)
    return computed


class TestCheckpoint:
    def test_interrupted_then_resumed_run_is_identical(
        self, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ckpt = tmp_path / "ckpt"  # type: ignore[operator]
        _interrupt_after(monkeypatch, 3)
        with pytest.raises(_Interrupt):
            standin_power(checkpoint=ckpt, chunk_size=7)
        stored = sorted(p.name for p in ckpt.rglob("reps-*.npz"))
        assert len(stored) == 3
        monkeypatch.undo()
        computed = _record_computed(monkeypatch)
        resumed = standin_power(checkpoint=ckpt, chunk_size=7)
        # only the missing replicates were computed, none twice
        assert len(computed) == 2 * 30 - 3 * 7
        assert len(set(computed)) == len(computed)
        assert_same_results(standin_power(), resumed)

    def test_completed_checkpoint_computes_nothing(
        self, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ckpt = tmp_path / "ckpt"  # type: ignore[operator]
        first = standin_power(checkpoint=ckpt)
        calls: list[int] = []
        monkeypatch.setattr(run, "run_chunk", lambda task: calls.append(1))
        again = standin_power(checkpoint=ckpt, rng=None)  # seed taken from the manifest
        assert calls == []
        assert_same_results(first, again)

    def test_more_replicates_extend_the_checkpoint(self, tmp_path: pytest.TempPathFactory
                                                   ) -> None:
        ckpt = tmp_path / "ckpt"  # type: ignore[operator]
        standin_power(checkpoint=ckpt, n_sims=12)
        extended = standin_power(checkpoint=ckpt, n_sims=30)
        assert_same_results(standin_power(n_sims=30), extended)
        shorter = standin_power(checkpoint=ckpt, n_sims=10)
        assert_same_results(standin_power(n_sims=10), shorter)

    def test_parallel_resume_of_a_serial_run(
        self, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ckpt = tmp_path / "ckpt"  # type: ignore[operator]
        _interrupt_after(monkeypatch, 2)
        with pytest.raises(_Interrupt):
            standin_power(checkpoint=ckpt, chunk_size=10)
        monkeypatch.undo()
        resumed = standin_power(checkpoint=ckpt, n_jobs=2, chunk_size=4)
        assert_same_results(standin_power(), resumed)

    @pytest.mark.parametrize(
        ("change", "word"),
        [({"effects": {"gamma13": 0.2}}, "gamma13"), ({"rng": 1}, "entropy"),
         ({"p_missing": 0.1}, "p_missing")],
    )
    def test_different_settings_are_refused(
        self, tmp_path: pytest.TempPathFactory, change: dict[str, object], word: str
    ) -> None:
        ckpt = tmp_path / "ckpt"  # type: ignore[operator]
        standin_power(checkpoint=ckpt, n_sims=5)
        with pytest.raises(ValueError, match=f"different settings.*{word}"):
            standin_power(checkpoint=ckpt, n_sims=5, **change)

    def test_manifest_and_atomic_files(self, tmp_path: pytest.TempPathFactory) -> None:
        ckpt = tmp_path / "ckpt"  # type: ignore[operator]
        res = standin_power(checkpoint=ckpt, n_sims=5)
        manifest = json.loads((ckpt / "manifest.json").read_text())
        assert manifest["settings"]["entropy"] == res.settings["entropy"] == 2024
        assert not list(ckpt.rglob(".tmp-*"))
        # a leftover temporary file (a write cut short) is ignored on resume
        (ckpt / "T6-P20-S3" / ".tmp-junk.npz").write_bytes(b"partial")
        assert_same_results(res, standin_power(checkpoint=ckpt, n_sims=5))

    def test_non_empty_directory_without_manifest_is_refused(
        self, tmp_path: pytest.TempPathFactory
    ) -> None:
        (tmp_path / "other.txt").write_text("x")  # type: ignore[operator]
        with pytest.raises(ValueError, match="not empty"):
            standin_power(checkpoint=tmp_path, n_sims=5)


# --------------------------------------------------------------------------- bookkeeping


class TestBookkeeping:
    @pytest.fixture(scope="class")
    @classmethod
    def res(cls) -> PowerResult:
        return power(STANDIN, n_sims=60, rng=11, progress=False,  # type: ignore[arg-type]
                     engine="statsmodels", **SMALL)

    def test_power_table_matches_pvalues(self, res: PowerResult) -> None:
        table = res.power.set_index(["n_therapists", "term"])
        pv = res.pvalues
        for n_t in (6, 10):
            for term in res.terms:
                p = pv.xs(n_t, level="n_therapists")[term].dropna()
                row = table.loc[(n_t, term)]
                assert row["n_valid"] == len(p)
                assert row["power"] == pytest.approx((p < 0.05).mean())
                assert row["mcse"] == pytest.approx(
                    np.sqrt(row["power"] * (1 - row["power"]) / len(p)))
                ci = stats.binomtest(int((p < 0.05).sum()), len(p)).proportion_ci(
                    method="exact")
                assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))

    def test_pvalues_are_two_sided_wald(self, res: PowerResult) -> None:
        z = res.estimates / res.std_errors
        np.testing.assert_allclose(res.pvalues, 2 * stats.norm.sf(np.abs(z)))

    def test_failures_are_listed_and_excluded(self, res: PowerResult) -> None:
        fails = res.failures
        assert set(fails["status"]) <= {"singular", "not converged", "error"}
        assert {"singular", "not converged", "error"} <= set(fails["status"])
        assert (fails["counted"] == (fails["status"] == "singular")).all()
        assert fails.loc[fails["status"] == "error", "reason"].str.contains(
            "LinAlgError: stand-in numerical failure").all()
        table = res.power.set_index(["n_therapists", "n_patients", "n_sessions", "term"])
        for key, block in fails.groupby(["n_therapists", "n_patients", "n_sessions"]):
            row = table.loc[(*key, "truth")]
            assert row["n_failed"] == (~block["counted"]).sum()
            assert row["n_singular"] == block["counted"].sum()
            assert row["n_valid"] + row["n_failed"] == 60
        excluded = fails.loc[~fails["counted"]].set_index(
            ["n_therapists", "n_patients", "n_sessions", "replicate"]).index
        assert res.estimates.loc[excluded].isna().all().all()

    def test_summary_reports_failures(self, res: PowerResult) -> None:
        text = str(res.summary())
        assert "Power by cell and term" in text
        assert "excluded from power" in text
        assert re.search(r"Seed entropy\s+: 11\n", text)
        assert "<table" in res._repr_html_()

    def test_true_value_bias_and_coverage_columns(self, res: PowerResult) -> None:
        table = res.power
        gamma = table[table["term"] == "truth:condition:session"]
        assert (gamma["true_value"] == PRNParams().gamma13).all()
        assert gamma["coverage"].between(0, 1).all()
        assert table.loc[table["term"] == "truth", "coverage"].isna().all()

    def test_result_is_immutable(self, res: PowerResult) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            res._power = None  # type: ignore[misc]
        table = res.power
        table.loc[:, "power"] = -1.0
        assert (res.power["power"] >= 0).all()
        with pytest.raises(TypeError):
            res.settings["n_sims"] = 3  # type: ignore[index]

    def test_timings(self, res: PowerResult) -> None:
        t = res.timings
        assert list(t.columns) == ["n_therapists", "n_patients", "n_sessions",
                                   "seconds_simulating", "seconds_fitting"]
        assert (t[["seconds_simulating", "seconds_fitting"]] > 0).all().all()

    def test_required_size(self) -> None:
        res = standin_power(n_therapists=[4, 8, 16], n_patients=48,
                            effects={"gamma13": 0.15}, n_sims=40)
        table = res.power.query("term == 'truth:condition:session'").set_index(
            "n_therapists")
        # the smallest size from which every larger size reaches the target (this curve
        # dips within Monte-Carlo error: 0.05 at 8, 0.03 at 16)
        target = float(table.loc[16, "power"])
        expected = min(n for n in (4, 8, 16)
                       if all(table.loc[m, "power"] >= target for m in (4, 8, 16) if m >= n))
        req = res.required_size(target, term="truth:condition:session")
        assert req.loc[0, "along"] == "n_therapists"
        assert req.loc[0, "required"] == expected
        assert req.loc[0, "power"] == table.loc[expected, "power"]
        unreachable = min(float(table["power"].max()) + 1e-9, 0.999999)
        never = res.required_size(unreachable, term="truth:condition:session")
        assert pd.isna(never.loc[0, "required"])
        conservative = res.required_size(target, term="truth:condition:session",
                                         conservative=True)
        assert pd.isna(conservative.loc[0, "required"]) or (
            conservative.loc[0, "ci_low"] >= target)
        assert len(res.required_size(0.8)) == 2  # one row per term
        with pytest.raises(ValueError, match="target"):
            res.required_size(1.5)
        with pytest.raises(ValueError, match="term"):
            res.required_size(0.8, term="gamma")
        with pytest.raises(ValueError, match="along"):
            res.required_size(0.8, along="n_patient")


# ---------------------------------------------------------------------------- validation


class TestValidation:
    def test_unknown_design(self) -> None:
        with pytest.raises(ValueError, match="Did you mean 'truth_bias'"):
            power("truth_bais", n_sims=2)

    def test_unknown_effect_has_close_matches(self) -> None:
        with pytest.raises(ValueError, match=r"`effects`.*'gama13'.*Did you mean 'gamma13'"):
            standin_power(effects={"gama13": 0.1})

    def test_bad_effect_value(self) -> None:
        with pytest.raises(ValueError, match=r"`effects`.*sd_truth_patient"):
            standin_power(effects={"sd_truth_patient": -1.0})

    def test_null_effects(self) -> None:
        res = standin_power(effects="null", n_sims=3)
        assert res.settings["effects"]["gamma13"] == 0.0
        assert null_effects("truth_bias") == {"gamma13": 0.0}
        with pytest.raises(ValueError, match="effects"):
            standin_power(effects="nul")

    @pytest.mark.parametrize(
        ("kwargs", "exc", "match"),
        [
            ({"n_sims": 0}, ValueError, "n_sims"),
            ({"n_sims": 2.5}, TypeError, "n_sims"),
            ({"alpha": 1.0}, ValueError, "alpha"),
            ({"n_jobs": 0}, ValueError, "n_jobs"),
            ({"n_therapists": [6, 6]}, ValueError, "more than once"),
            ({"n_therapists": 30}, ValueError, "T30-P20-S3.*n_patients"),
            ({"n_therapists": []}, ValueError, "empty"),
            ({"n_therapists": "40"}, TypeError, "n_therapists"),
            ({"p_missing": 1.0}, ValueError, "p_missing"),
            ({"rng": -1}, ValueError, "rng"),
            ({"rng": "seed"}, TypeError, "rng"),
            ({"engine": "lme4"}, ValueError, "engine"),
            ({"progress": "yes"}, TypeError, "progress"),
            ({"patients_per_therapist": 0.5}, ValueError, "patients_per_therapist"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], exc: type[Exception],
                           match: str) -> None:
        with pytest.raises(exc, match=match):
            standin_power(**kwargs)

    def test_patients_per_therapist(self) -> None:
        res = standin_power(n_therapists=[4, 8], patients_per_therapist=2.5, n_sims=2,
                            n_patients=None)
        assert res.power["n_patients"].unique().tolist() == [10, 20]


# ------------------------------------------------------------------------ real designs


def _ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    return beta, resid @ resid / (len(y) - X.shape[1]) * np.linalg.inv(X.T @ X)


class TestDesignArraysMirrorPublicFunctions:
    """The fast path builds each design from arrays; with the random effects switched
    off (OLS) its tested contrasts must equal the public function's on the same data."""

    @pytest.fixture(scope="class")
    @classmethod
    def panel(cls) -> Panel:
        rng = np.random.default_rng(np.random.SeedSequence(3))
        return simulate_panel(rng, Sizes(12, 40, 6), PRNParams(), 0.2)

    @pytest.mark.filterwarnings("ignore:Single-level fit:alliancestats.exceptions.DataWarning")
    def test_lagged_rsa(self, panel: Panel) -> None:
        from alliancestats.power._designs import RSA_CONTRAST, lagged_rsa_arrays
        from alliancestats.rsa import fit_lagged_rsa

        arrays = lagged_rsa_arrays(panel)
        beta, cov = _ols(arrays.X, arrays.y)
        est = RSA_CONTRAST @ beta
        se = np.sqrt(np.diag(RSA_CONTRAST @ cov @ RSA_CONTRAST.T))
        res = fit_lagged_rsa(
            panel.to_frame(), outcome="wellbeing", x="alliance_therapist",
            y="alliance_patient", time="session", unit=["therapist", "patient"],
            groups=None, by="condition", controls=["session"],
        )
        rows = [res.surface_differences.loc[(1, "a4")], res.surface.loc[(1, "a1")],
                res.surface.loc[(1, "a4")]]
        np.testing.assert_allclose(est, [r["estimate"] for r in rows], rtol=1e-10)
        np.testing.assert_allclose(se, [r["std_error"] for r in rows], rtol=1e-10)
        assert res.nobs == len(arrays.y)


_KILLED_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from alliancestats.power import _run as run
import test_power as tp
real = run.run_chunk
def slow(task):  # slow enough to be killed mid-run
    time.sleep(0.15)
    return real(task)
run.run_chunk = slow
tp.standin_power(checkpoint={ckpt!r}, chunk_size=3, engine="statsmodels")
"""


def test_killed_process_resumes_loss_free(tmp_path: pytest.TempPathFactory) -> None:
    """SIGKILL a run part-way; the resumed run recomputes only what is missing and
    equals an uninterrupted run."""
    import subprocess
    import time
    from pathlib import Path

    ckpt = tmp_path / "ckpt"  # type: ignore[operator]
    code = _KILLED_RUN.format(tests=str(Path(__file__).parent), ckpt=str(ckpt))
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while len(list(ckpt.rglob("reps-*.npz"))) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    stored = run.Checkpoint(ckpt, json.loads((ckpt / "manifest.json").read_text())[
        "settings"]).load([Sizes(6, 20, 3), Sizes(10, 20, 3)], n_terms=2)
    n_done = sum(len(c["replicate"]) for chunks in stored.values() for c in chunks)
    assert 3 * 3 <= n_done < 2 * 30
    resumed = standin_power(checkpoint=ckpt, engine="statsmodels", chunk_size=5)
    assert_same_results(standin_power(engine="statsmodels"), resumed)


class TestRealDesigns:
    """End-to-end checks with the real models (tiny grids; seeds fixed)."""

    def test_type_one_error_truth_bias(self) -> None:
        n = 200
        res = power("truth_bias", effects="null", n_therapists=20, n_patients=60,
                    n_sessions=4, n_sims=n, rng=8, progress=False)
        row = res.power.iloc[0]
        assert row["true_value"] == 0.0
        assert row["n_failed"] <= 0.02 * n
        # binomial 99% acceptance interval of the rejection count at alpha = 0.05
        low, high = stats.binom.ppf([0.005, 0.995], row["n_valid"], 0.05)
        assert low <= round(row["power"] * row["n_valid"]) <= high

    @pytest.mark.slow
    def test_power_increases_with_therapists(self) -> None:
        res = power("truth_bias", n_therapists=[8, 24, 72], patients_per_therapist=3,
                    n_sessions=6, n_sims=100, rng=5, progress=False,
                    effects={"gamma13": 0.08})
        table = res.power.sort_values("n_therapists")
        p, se = table["power"].to_numpy(), table["mcse"].to_numpy()
        # monotone within Monte-Carlo error, and clearly higher at the largest size
        assert np.all(np.diff(p) >= -2 * np.sqrt(se[1:] ** 2 + se[:-1] ** 2))
        assert p[-1] - p[0] > 3 * np.hypot(se[0], se[-1])
        # the estimator is unbiased for gamma13 (mean within 4 Monte-Carlo SEs)
        mc = table["sd_estimate"] / np.sqrt(table["n_valid"])
        assert np.all(np.abs(table["mean_estimate"] - 0.08) <= 4 * mc)

    def test_engine_results_identical_across_backends(self) -> None:
        distributed = pytest.importorskip("distributed")
        kwargs = {"n_therapists": [8, 12], "n_patients": 30, "n_sessions": 4,
                  "n_sims": 12, "rng": 4, "progress": False, "chunk_size": 5}
        serial = power("truth_bias", **kwargs)  # type: ignore[arg-type]
        assert serial.settings["engine"] == "fast"
        assert_same_results(serial, power("truth_bias", n_jobs=2, **kwargs))  # type: ignore[arg-type]
        with (
            distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                     dashboard_address=None) as cluster,
            distributed.Client(cluster) as client,
        ):
            assert_same_results(serial, power("truth_bias", backend=client, **kwargs))  # type: ignore[arg-type]

    @pytest.mark.parametrize("design", ["truth_bias", "lagged_rsa", "growth"])
    def test_fast_path_matches_public_function(self, design: str) -> None:
        from alliancestats.power import _designs as pdz

        spec = pdz.DESIGNS[design]
        if design == "truth_bias":  # the structure MixedLM fits as lme4 does
            spec = pdz.with_random(spec, "intercept")
        for seed in (1, 2):
            rng = np.random.default_rng(np.random.SeedSequence(seed))
            panel = simulate_panel(rng, Sizes(16, 48, 5), PRNParams(), 0.1)
            fast = spec.fit_fast(panel, None)
            public = spec.fit_public(panel.to_frame())
            np.testing.assert_allclose(fast.estimate, public.estimate, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(fast.std_error, public.std_error, rtol=1e-3)

    @pytest.mark.parametrize("design", ["truth_bias", "lagged_rsa", "growth"])
    def test_each_design_runs_with_both_engines(self, design: str) -> None:
        kwargs = {"n_therapists": 10, "n_patients": 30, "n_sessions": 4, "n_sims": 3,
                  "rng": 3, "progress": False, "p_missing": 0.1}
        if design == "truth_bias":  # a structure both engines fit alike
            kwargs["random"] = "intercept"
        fast = power(design, engine="fast", **kwargs)  # type: ignore[arg-type]
        if design == "growth":  # correlated patient-level slopes: not a MixedLM model
            with pytest.raises(ValueError, match="statsmodels MixedLM cannot fit"):
                power(design, engine="statsmodels", **kwargs)  # type: ignore[arg-type]
            return
        slow = power(design, engine="statsmodels", **kwargs)  # type: ignore[arg-type]
        assert list(fast.power["term"]) == list(fast.terms)
        pd.testing.assert_frame_equal(fast.estimates, slow.estimates, rtol=1e-3)


def test_command_line(tmp_path: pytest.TempPathFactory) -> None:
    out = tmp_path / "out"  # type: ignore[operator]
    args = ["power", "--design", "truth_bias", "--therapists", "6,10", "--patients", "30",
            "--sessions", "3", "--sims", "4", "--seed", "3", "--effect", "gamma13=0.2",
            "--out", str(out), "--no-progress"]
    assert cli_run(args).returncode == 0
    for name in ("power.csv", "required_size.csv", "replicates.csv", "failures.csv",
                 "summary.txt", "checkpoint/manifest.json"):
        assert (out / name).is_file()
    table = pd.read_csv(out / "power.csv")
    assert table["n_therapists"].tolist() == [6, 10]
    assert (table["true_value"] == 0.2).all()
    assert cli_run(args).returncode == 0  # resumes from the complete checkpoint
    bad = cli_run(["power", "--design", "truth_bias", "--therapists", "a,b", "--out",
                   str(out)])
    assert bad.returncode == 2
    assert "`--therapists` must be comma-separated integers" in bad.stderr


def cli_run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m alliancestats ARGS`` in a subprocess with this source tree."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "alliancestats", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.slow  # also run (marked slow) by test_examples.py
def test_example_runs() -> None:
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "plan_a_trial.py"
    runpy.run_path(str(path), run_name="__main__")


# ------------------------------------------------------------------- fixed caseload (#14)


class TestFixedCaseload:
    @pytest.fixture(scope="class")
    @classmethod
    def res(cls) -> PowerResult:
        return power(STANDIN, n_therapists=[4, 8, 16], patients_per_therapist=3,  # type: ignore[arg-type]
                     n_sessions=3, n_sims=40, rng=5, progress=False,
                     effects={"gamma13": 0.15})

    def test_both_sizes_are_refused(self) -> None:
        with pytest.raises(ValueError, match=r"either `n_patients`.*not both"):
            standin_power(n_patients=117, patients_per_therapist=3)

    def test_required_size_answers_in_therapists(self, res: PowerResult) -> None:
        table = res.power.query("term == 'truth:condition:session'").set_index(
            "n_therapists")
        target = float(table.loc[8, "power"])
        expected = min(n for n in (4, 8, 16) if table.loc[n, "power"] >= target)
        req = res.required_size(target, term="truth:condition:session")
        assert len(req) == 1  # one answer, not one row per total patient count
        row = req.iloc[0]
        assert row["along"] == "n_therapists"
        assert row["patients_per_therapist"] == 3.0
        assert row["required"] == expected
        assert row["n_patients"] == 3 * expected
        assert "n_patients" not in req.columns[:2].tolist()
        assert len(res.required_size(0.8)) == 2  # one row per term
        with pytest.raises(ValueError, match=r"fixed caseload.*along='n_therapists'"):
            res.required_size(0.8, along="n_patients")

    def test_plot_draws_one_curve_per_term(self, res: PowerResult) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from alliancestats import plot_power

        for draw in (lambda: res.plot(terms="truth:condition:session"),
                     lambda: plot_power(res, terms="truth:condition:session")):
            plt.figure()
            ax = draw()
            try:
                curves = [c for c in ax.containers if len(c.lines[0].get_xdata()) > 0]
                assert len(curves) == 1
                assert len(curves[0].lines[0].get_xdata()) == 3
                assert ax.get_xlabel() == "n therapists"
            finally:
                plt.close(ax.get_figure())

    def test_summary_names_the_caseload(self, res: PowerResult) -> None:
        assert re.search(r"Patients per therapist\s+: 3 \(fixed\)", str(res.summary()))


def test_cli_patients_per_therapist(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli_run(["power", "--therapists", "4,6", "--patients-per-therapist", "3",
                    "--sessions", "3", "--sims", "3", "--seed", "1", "--out", str(out),
                    "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "power.csv")
    assert table["n_patients"].tolist() == [12, 18]
    req = pd.read_csv(out / "required_size.csv")
    assert {"patients_per_therapist", "required", "n_patients"} <= set(req.columns)


@pytest.mark.parametrize("target", ["2", "0", "nan"])
def test_cli_target_is_checked_before_simulating(tmp_path: Path, target: str) -> None:
    out = tmp_path / "out"
    proc = cli_run(["power", "--therapists", "4", "--patients", "12", "--sessions", "3",
                    "--sims", "3", "--seed", "1", "--target", target, "--out", str(out),
                    "--no-progress"])
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("alliancestats power: error: `--target` must be")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (out / "checkpoint").exists()  # nothing was simulated


# ---------------------------------------------------------------- checkpoint misuse (#15)

_HOLD_CHECKPOINT = """
import sys, time
sys.path.insert(0, {tests!r})
from alliancestats.power import _run as run
import test_power as tp
real = run.run_chunk
def slow(task):  # a long run: holds the checkpoint while the test tries to share it
    time.sleep(0.5)
    return real(task)
run.run_chunk = slow
tp.standin_power(checkpoint={ckpt!r}, chunk_size=3, engine="statsmodels")
"""


def _start_holder(ckpt: Path) -> subprocess.Popen[bytes]:
    """A second process running a slow power run on ``ckpt``; returns once it holds it."""
    import time

    code = _HOLD_CHECKPOINT.format(tests=str(Path(__file__).parent), ckpt=str(ckpt))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    lock = ckpt / ".lock"
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the holding run ended early"
        if lock.is_file() and f"process {proc.pid} " in lock.read_text():
            return proc
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the holding run never took the lock")


class TestConcurrentRuns:
    def test_second_process_fails_fast_naming_the_first(self, tmp_path: Path) -> None:
        import time

        ckpt = tmp_path / "ckpt"
        holder = _start_holder(ckpt)
        try:
            t0 = time.monotonic()
            with pytest.raises(BlockingIOError,
                               match=rf"in use by another power run \(process {holder.pid} "):
                standin_power(checkpoint=ckpt, n_jobs=2, chunk_size=4)
            assert time.monotonic() - t0 < 5  # no simulation before failing
        finally:
            holder.kill()
            holder.wait()
        # the killed holder's lock is gone with it; the checkpoint resumes intact
        resumed = standin_power(checkpoint=ckpt, engine="statsmodels", chunk_size=5)
        assert_same_results(standin_power(engine="statsmodels"), resumed)

    def test_cli_second_run_is_refused_in_one_line(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        holder = _start_holder(out / "checkpoint")
        try:
            proc = cli_run(["power", "--therapists", "6", "--patients", "20",
                            "--sessions", "3", "--sims", "5", "--out", str(out),
                            "--no-progress", "--jobs", "2"])
        finally:
            holder.kill()
            holder.wait()
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1
        assert f"in use by another power run (process {holder.pid} " in lines[0]

    def test_simultaneous_identical_starts(self, tmp_path: Path) -> None:
        """Four runs started together: each either finishes or is refused by the lock
        (never "not empty and has no manifest"), and the checkpoint stays valid."""
        out = tmp_path / "out"
        args = ["power", "--therapists", "6", "--patients", "20", "--sessions", "3",
                "--sims", "40", "--seed", "4", "--out", str(out), "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
        procs = [subprocess.Popen([sys.executable, "-m", "alliancestats", *args], env=env,
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  text=True) for _ in range(4)]
        results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        for code, err in results:
            assert code == 0 or (code == 2 and "in use by another power run" in err), err
        assert any(code == 0 for code, _ in results)
        final = cli_run(args)
        assert final.returncode == 0, final.stderr
        assert "quarantined" not in final.stdout

    def test_a_replicate_is_never_stored_twice(self, tmp_path: Path) -> None:
        ckpt = tmp_path / "ckpt"
        standin_power(checkpoint=ckpt, n_sims=10, chunk_size=5)
        settings = json.loads((ckpt / "manifest.json").read_text())["settings"]
        store = run.Checkpoint(ckpt, settings)
        chunks = store.load([Sizes(6, 20, 3)], n_terms=2)[Sizes(6, 20, 3)]
        with pytest.raises(RuntimeError, match="already stored"):
            store.save(chunks[0])

    def test_overlapping_chunks_are_quarantined(self, tmp_path: Path) -> None:
        """A checkpoint poisoned by an older version (a replicate in two chunks) is
        repaired: the later chunk is quarantined and its replicates recomputed."""
        ckpt = tmp_path / "ckpt"
        clean = standin_power(checkpoint=ckpt, n_sims=10, chunk_size=5)
        cell = ckpt / "T6-P20-S3"
        with np.load(cell / "reps-0000005-0000010.npz") as data:
            chunk = {k: data[k] for k in data.files}
        chunk = {k: (v[:3] if k != "sizes" else v) for k, v in chunk.items()}
        chunk["replicate"] = np.arange(4, 7)
        chunk["estimate"] = chunk["estimate"] + 1.0  # different values
        np.savez(cell / "reps-0000004-0000007.npz", **chunk)
        with pytest.warns(AllianceStatsWarning, match="1 damaged chunk.*repeats replicates"):
            again = standin_power(checkpoint=ckpt, n_sims=10, chunk_size=5)
        assert_same_results(clean, again)
        assert (ckpt / "quarantine").is_dir()


def _tamper(kind: str, file: Path) -> None:
    if kind == "truncated":
        file.write_bytes(file.read_bytes()[:100])
    elif kind == "empty":
        file.write_bytes(b"")
    elif kind == "missing array":
        with np.load(file) as data:
            arrays = {k: data[k] for k in data.files if k != "std_error"}
        np.savez(file, **arrays)
    elif kind == "wrong shape":
        with np.load(file) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["estimate"] = arrays["estimate"][:, :1]
        np.savez(file, **arrays)
    elif kind == "pickled":
        with np.load(file) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["message"] = arrays["message"].astype(object)
        np.savez(file, **arrays)


class TestDamagedCheckpoint:
    @pytest.mark.parametrize("kind", ["truncated", "empty", "missing array", "wrong shape",
                                      "pickled"])
    def test_bad_chunk_is_quarantined_and_recomputed(self, tmp_path: Path, kind: str
                                                     ) -> None:
        ckpt = tmp_path / "ckpt"
        clean = standin_power(checkpoint=ckpt, n_sims=10, chunk_size=5)
        victim = ckpt / "T10-P20-S3" / "reps-0000005-0000010.npz"
        _tamper(kind, victim)
        with pytest.warns(AllianceStatsWarning, match=r"1 damaged chunk file\(s\) moved to "
                          r"quarantine/.*T10-P20-S3/reps-0000005-0000010.npz"):
            again = standin_power(checkpoint=ckpt, n_sims=10, chunk_size=5)
        assert_same_results(clean, again)
        assert victim.is_file()  # recomputed and stored again
        assert (ckpt / "quarantine" / "T10-P20-S3-reps-0000005-0000010.npz").is_file()
        assert "quarantined and recomputed" in str(again.summary())
        # once repaired, the checkpoint loads cleanly
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert_same_results(clean, standin_power(checkpoint=ckpt, n_sims=10))

    @pytest.mark.parametrize("text", ["[1, 2]", "{\"format\": 1}", "{not json"])
    def test_damaged_manifest_is_a_clear_error(self, tmp_path: Path, text: str) -> None:
        ckpt = tmp_path / "ckpt"
        standin_power(checkpoint=ckpt, n_sims=3)
        (ckpt / "manifest.json").write_text(text)
        with pytest.raises(ValueError, match=r"manifest.*(damaged|not valid JSON).*new "
                                             r"directory"):
            standin_power(checkpoint=ckpt, n_sims=3)

    def test_cli_damaged_chunk_and_manifest(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        args = ["power", "--therapists", "6", "--patients", "20", "--sessions", "3",
                "--sims", "6", "--seed", "2", "--out", str(out), "--no-progress"]
        assert cli_run(args).returncode == 0
        first = pd.read_csv(out / "power.csv")
        for file in (out / "checkpoint").rglob("reps-*.npz"):
            file.write_bytes(b"")
        again = cli_run(args)
        assert again.returncode == 0, again.stderr
        assert "quarantined and recomputed" in again.stdout
        pd.testing.assert_frame_equal(first, pd.read_csv(out / "power.csv"))
        (out / "checkpoint" / "manifest.json").write_text("[]")
        bad = cli_run(args)
        assert bad.returncode == 2
        assert len(bad.stderr.strip().splitlines()) == 1
        assert "damaged" in bad.stderr


def test_lagged_rsa_model_needs_the_session_control() -> None:
    """The one lagged-RSA model (power, and the analysis it plans): well-being(t) on the
    surface of the alliance at t - 1, the previous well-being and session. The simulated
    well-being trends over sessions while both ratings grow, so without the session
    control a1 is biased (here by ~6 SE in one large trial); with it every tested term
    is recovered. Random intercepts of well-being are 0 so that OLS is consistent."""
    from alliancestats.power._designs import (
        RSA_COLUMNS,
        RSA_CONTRAST,
        lagged_rsa_arrays,
        lagged_rsa_truth,
    )

    params = PRNParams(sd_wellbeing_therapist=0.0, sd_wellbeing_patient=0.0)
    sizes = Sizes(400, 48000, 6)
    arrays = lagged_rsa_arrays(simulate_panel(np.random.default_rng(11), sizes, params, 0.0))
    truth = lagged_rsa_truth(params, sizes)
    assert "session" in arrays.columns
    z = {}
    for with_session in (True, False):
        keep = [i for i, c in enumerate(RSA_COLUMNS) if with_session or c != "session"]
        beta, cov = _ols(arrays.X[:, keep], arrays.y)
        L = RSA_CONTRAST[:, keep]
        z[with_session] = (L @ beta - truth) / np.sqrt(np.diag(L @ cov @ L.T))
    assert np.all(np.abs(z[True]) < 4)
    assert z[False][1] > 4  # a1_trained


# ------------------------------------------------------------------ design realism (#19)


def test_default_replicate_is_bit_identical_to_before() -> None:
    """A replicate's simulated trial, fingerprinted before the design-realism options
    existed (therapist random slopes, dropout): the defaults reproduce it exactly."""
    import hashlib

    seed = np.random.SeedSequence(9, spawn_key=(40, 117, 6, 3))
    panel = simulate_panel(np.random.default_rng(seed), Sizes(40, 117, 6), PRNParams(), 0.1)
    text = panel.to_frame().to_csv(index=False, float_format="%.17g")
    assert hashlib.sha256(text.encode()).hexdigest()[:20] == "5e556b196739ece918c8"


def test_truth_bias_with_dropout_recovers_and_holds_alpha() -> None:
    """Monotone MCAR dropout (12% per session in both arms): gamma13 is estimated
    without bias, and under the null the rejection rate stays within the binomial 99%
    interval around alpha."""
    dropout = {"dropout_trained": 0.12, "dropout_untrained": 0.12}
    # random intercepts: the simulated model (no random truth force), at a tenth of the
    # default structure's cost
    kwargs = {"n_therapists": 20, "n_patients": 60, "n_sessions": 5, "n_sims": 200,
              "progress": False, "random": "intercept"}
    alt = power("truth_bias", effects=dropout, rng=21, **kwargs)  # type: ignore[arg-type]
    row = alt.power.iloc[0]
    assert row["n_failed"] <= 4
    assert abs(row["mean_estimate"] - 0.06) <= 4 * row["sd_estimate"] / np.sqrt(
        row["n_valid"])
    null = power("truth_bias", effects={**null_effects("truth_bias"), **dropout}, rng=22,
                 **kwargs)  # type: ignore[arg-type]
    row = null.power.iloc[0]
    low, high = stats.binom.ppf([0.005, 0.995], row["n_valid"], 0.05)
    assert low <= round(row["power"] * row["n_valid"]) <= high
    assert "dropout_trained=0.12" in str(null.summary())


# ---------------------------------------------------------------------- targets (#19)


class TestTargets:
    KW: ClassVar[dict[str, object]] = {"n_therapists": 12, "n_patients": 36,
                                       "n_sessions": 5, "n_sims": 30, "rng": 6,
                                       "progress": False}

    def test_default_terms_as_targets_give_the_same_numbers(self) -> None:
        default = power("truth_bias", **self.KW)  # type: ignore[arg-type]
        named = power("truth_bias", targets="truth:condition:session", **self.KW)  # type: ignore[arg-type]
        custom = power("truth_bias", targets={"g13": {"truth:condition:session": 1}},  # type: ignore[arg-type]
                       **self.KW)
        np.testing.assert_array_equal(default.estimates.to_numpy(), named.estimates.to_numpy())
        np.testing.assert_array_equal(default.pvalues.to_numpy(), custom.pvalues.to_numpy())
        assert custom.terms == ("g13",)
        assert custom.power.loc[0, "true_value"] == PRNParams().gamma13

    def test_session_dependent_target_and_its_true_value(self) -> None:
        params = PRNParams(gamma11=0.1)
        res = power("truth_bias", effects={"gamma11": 0.1}, n_sessions=[4, 6],  # type: ignore[arg-type]
                    targets=["truth_force_difference_last", "truth_force_difference_first"],
                    **{k: v for k, v in self.KW.items() if k != "n_sessions"})
        table = res.power.set_index(["n_sessions", "term"])
        for s in (4, 6):
            last = params.truth_force(1, s) - params.truth_force(0, s)
            first = params.truth_force(1, 1) - params.truth_force(0, 1)
            assert table.loc[(s, "truth_force_difference_last"), "true_value"] == \
                pytest.approx(last)
            assert table.loc[(s, "truth_force_difference_first"), "true_value"] == \
                pytest.approx(first)
        # the estimate is the same linear combination of the fitted coefficients
        est = res.estimates.xs(6, level="n_sessions")
        both = power("truth_bias", effects={"gamma11": 0.1}, n_sessions=6,  # type: ignore[arg-type]
                     targets={"a": {"truth:condition": 1},
                              "b": {"truth:condition:session": 1}},
                     **{k: v for k, v in self.KW.items() if k != "n_sessions"})
        np.testing.assert_allclose(est["truth_force_difference_last"].to_numpy(),
                                   both.estimates["a"].to_numpy()
                                   + 6 * both.estimates["b"].to_numpy(), rtol=1e-10)

    @pytest.mark.filterwarnings("ignore:Single-level fit:alliancestats.exceptions.DataWarning")
    def test_rsa_targets_match_the_public_contrasts(self) -> None:
        from alliancestats.power._designs import (
            DESIGNS,
            contrast_matrix,
            lagged_rsa_arrays,
            parse_targets,
        )
        from alliancestats.rsa import fit_lagged_rsa

        rng = np.random.default_rng(np.random.SeedSequence(3))
        panel = simulate_panel(rng, Sizes(12, 40, 6), PRNParams(), 0.2)
        spec = DESIGNS["lagged_rsa"]
        targets = parse_targets(spec, ["a2_trained", "a3_untrained", "a5_difference"])
        arrays = lagged_rsa_arrays(panel)
        beta, _ = _ols(arrays.X, arrays.y)
        L = contrast_matrix(targets, spec.columns, 6)
        res = fit_lagged_rsa(
            panel.to_frame(), outcome="wellbeing", x="alliance_therapist",
            y="alliance_patient", time="session", unit=["therapist", "patient"],
            groups=None, by="condition", controls=["session"],
        )
        expected = [res.surface.loc[(1, "a2"), "estimate"],
                    res.surface.loc[(0, "a3"), "estimate"],
                    res.surface_differences.loc[(1, "a5"), "estimate"]]
        np.testing.assert_allclose(L @ beta, expected, rtol=1e-9)

    def test_recovery_of_a_growth_contrast(self) -> None:
        res = power("growth", targets=["time:condition[therapist-patient]"],  # type: ignore[arg-type]
                    n_therapists=20, n_patients=60, n_sessions=5, n_sims=60, rng=2,
                    progress=False)
        row = res.power.iloc[0]
        assert row["true_value"] == pytest.approx(
            res.settings["effects"]["gamma03"] + 0.0, abs=0.05)
        assert abs(row["mean_estimate"] - row["true_value"]) <= 4 * row["sd_estimate"] / \
            np.sqrt(row["n_valid"])

    @pytest.mark.parametrize(
        ("targets", "exc", "match"),
        [
            ("truth_force_diference_last", ValueError, "Did you mean"),
            ({"x": {"truth:conditon": 1}}, ValueError, r"targets\['x'\] column"),
            ({"x": {"truth:condition": "1"}}, TypeError, "must be a number"),
            ({"x": {}}, TypeError, "non-empty dict"),
            ([], ValueError, "empty"),
            (3, TypeError, "targets"),
        ],
    )
    def test_bad_targets(self, targets: object, exc: type[Exception], match: str) -> None:
        with pytest.raises(exc, match=match):
            power("truth_bias", targets=targets, **self.KW)  # type: ignore[arg-type]

    def test_targets_need_the_fast_engine(self) -> None:
        with pytest.raises(ValueError, match="engine='fast'"):
            power("truth_bias", targets=["truth_force_difference_last"], engine="statsmodels",
                  **self.KW)  # type: ignore[arg-type]

    def test_checkpoint_records_targets(self, tmp_path: Path) -> None:
        kw = {**self.KW, "n_sims": 3}
        power("truth_bias", targets=["truth_force_difference_last"], checkpoint=tmp_path / "c",  # type: ignore[arg-type]
              **kw)
        with pytest.raises(ValueError, match=r"different settings.*targets"):
            power("truth_bias", targets=["truth_force_difference_first"],  # type: ignore[arg-type]
                  checkpoint=tmp_path / "c", **kw)


def test_checkpoint_settings_omit_new_parameters_at_their_defaults() -> None:
    """Checkpoints made before the design-realism parameters existed still resume: those
    parameters are recorded only when changed."""
    res = standin_power(n_sims=2)
    assert "dropout_trained" not in res.settings["effects"]
    res = standin_power(n_sims=2, effects={"dropout_trained": 0.1})
    assert res.settings["effects"]["dropout_trained"] == 0.1


class TestRandomStructure:
    def test_slopes_match_the_public_fit(self) -> None:
        from alliancestats import fit_truth_bias
        from alliancestats.power._designs import DESIGNS, with_random

        spec = with_random(DESIGNS["truth_bias"], "slopes")
        params = PRNParams(sd_truth_force_therapist=0.15)
        panel = simulate_panel(np.random.default_rng(4), Sizes(16, 48, 5), params, 0.1)
        fast = spec.fit_fast(panel, None)
        with warnings.catch_warnings():  # singular fits are expected here
            warnings.simplefilter("ignore", AllianceStatsWarning)
            res = fit_truth_bias(panel.to_frame(), judgment="alliance_therapist",
                                 truth="alliance_patient", groups=["therapist", "patient"],
                                 moderators=["condition", "session"], random="slopes")
        name = "alliance_patient:condition:session"
        np.testing.assert_allclose(fast.estimate, [res.params[name]], rtol=1e-4)
        np.testing.assert_allclose(fast.std_error, [res.bse[name]], rtol=1e-3)

    def test_slopes_hold_alpha_where_intercepts_are_liberal(self) -> None:
        """With a therapist random truth force the random-intercept model tests the
        training effect on the truth force too liberally (0.095 in 400 replicates, see
        the power guide); fitting the random truth slopes holds alpha."""
        res = power("truth_bias", random="slopes", targets=["truth_force_difference_first"],
                    effects={"gamma11": 0.0, "sd_truth_force_therapist": 0.15},
                    n_therapists=40, n_patients=117, n_sessions=6, n_sims=150, rng=5,
                    progress=False)
        row = res.power.iloc[0]
        assert row["true_value"] == 0.0
        low, high = stats.binom.ppf([0.005, 0.995], row["n_valid"], 0.05)
        assert low <= round(row["power"] * row["n_valid"]) <= high
        assert res.settings["random"] == "slopes"

    def test_random_is_validated(self) -> None:
        with pytest.raises(ValueError, match="Did you mean 'slopes'"):
            power("truth_bias", random="slope", n_sims=2, progress=False)
        with pytest.raises(ValueError, match="designs only"):
            power("lagged_rsa", random="slopes", n_sims=2, progress=False)
        with pytest.raises(ValueError, match="engine='fast'"):
            power("truth_bias", random="slopes", engine="statsmodels", n_sims=2,
                  progress=False)


class TestCaseloads:
    LOADS = (1, 1, 2, 2, 2, 3, 3, 4, 6, 12, 1, 2, 2, 3, 5, 9)

    def test_unequal_caseloads_recover_gamma13(self) -> None:
        res = power("truth_bias", caseloads=self.LOADS, n_sessions=6, n_sims=100, rng=3,  # type: ignore[arg-type]
                    progress=False, effects={"gamma13": 0.1}, random="intercept")
        row = res.power.iloc[0]
        assert (row["n_therapists"], row["n_patients"]) == (16, sum(self.LOADS))
        assert res.settings["caseloads"] == list(self.LOADS)
        assert abs(row["mean_estimate"] - 0.1) <= 4 * row["sd_estimate"] / np.sqrt(
            row["n_valid"])

    def test_replicates_use_the_caseloads(self) -> None:
        seen: list[list[int]] = []
        real = run.fit_replicate

        def spy(task: run.ChunkTask, panel: Panel) -> FitOutcome:
            seen.append(np.bincount(panel.therapist).tolist())
            return real(task, panel)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(run, "fit_replicate", spy)
            standin_power(caseloads=self.LOADS, n_therapists=None, n_patients=None,
                          n_sims=3)
        assert seen
        assert all(s == list(self.LOADS) for s in seen)

    def test_conflicting_sizes(self) -> None:
        with pytest.raises(ValueError, match=r"leave out `n_therapists`"):
            power("truth_bias", caseloads=[2, 3], n_therapists=4, n_sims=2,
                  progress=False)

    def test_cli_caseloads(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        proc = cli_run(["power", "--caseloads", "1,2,3,4", "--sessions", "3", "--sims",
                        "2", "--seed", "1", "--out", str(out), "--no-progress"])
        assert proc.returncode == 0, proc.stderr
        table = pd.read_csv(out / "power.csv")
        assert table[["n_therapists", "n_patients"]].iloc[0].tolist() == [4, 10]


# ------------------------------------------------------------------ find_size (#19)


def standin_search(**kwargs: object) -> SizeSearch:
    args = {"patients_per_therapist": 3, "lower": 4, "upper": 64, "n_sims": 40,
            "n_sims_final": 120, "n_sessions": 3, "rng": 12,
            "effects": {"gamma13": 0.4}, **kwargs}
    return find_size(STANDIN, 0.8, **args)  # type: ignore[arg-type]


class TestFindSize:
    @pytest.fixture(scope="class")
    @classmethod
    def search(cls) -> SizeSearch:
        return standin_search()

    def test_answer_is_consistent_with_the_evaluations(self, search: SizeSearch) -> None:
        table = search.evaluations.set_index("n_therapists")
        assert search.required is not None
        assert (table.loc[table.index >= search.required, "power"] >= 0.8).all()
        below = table.index[table.index < search.required]
        assert len(below)
        assert table.loc[below.max(), "power"] < 0.8
        # the sizes next to the answer got the final number of replicates
        assert table.loc[search.required, "n_sims"] == 120
        assert table.loc[below.max(), "n_sims"] == 120
        low, high = search.interval
        assert low is None or low <= search.required
        assert high is None or search.required <= high
        size, lo, hi = search.curve
        assert lo < size < hi
        assert abs(size - search.required) < 0.25 * search.required
        assert "Power-curve fit" in str(search.summary())

    def test_evaluations_are_ordinary_power_cells(self, search: SizeSearch) -> None:
        """Every evaluation equals the same cell of a power() grid with the same seed."""
        table = search.evaluations.set_index("n_therapists")
        sizes = [int(n) for n in table.index[table["n_sims"] == 40]]
        grid = power(STANDIN, n_therapists=sizes, patients_per_therapist=3, n_sessions=3,  # type: ignore[arg-type]
                     n_sims=40, rng=12, effects={"gamma13": 0.4}, progress=False)
        got = grid.power.query("term == 'truth:condition:session'").set_index("n_therapists")
        np.testing.assert_array_equal(got.loc[sizes, "power"], table.loc[sizes, "power"])

    def test_independent_of_workers_and_reuses_a_checkpoint(
        self, search: SizeSearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ckpt = tmp_path / "ckpt"
        parallel = standin_search(n_jobs=2, checkpoint=ckpt)
        pd.testing.assert_frame_equal(parallel.evaluations, search.evaluations)
        assert parallel.required == search.required
        calls: list[int] = []
        monkeypatch.setattr(run, "run_chunk", lambda task: calls.append(1))
        again = standin_search(checkpoint=ckpt, rng=None)  # seed from the checkpoint
        assert calls == []
        pd.testing.assert_frame_equal(again.evaluations, search.evaluations)

    def test_not_reached(self) -> None:
        res = standin_search(upper=6, lower=4)
        assert res.required is None
        assert "not reached" in str(res.summary())

    @pytest.mark.parametrize(
        ("kwargs", "exc", "match"),
        [
            ({"lower": 50, "upper": 20}, ValueError, "below `upper`"),
            ({"term": "gama"}, ValueError, "term"),
            ({"n_patients": 30}, TypeError, "n_patients"),
            ({"along": "n_patient"}, ValueError, "along"),
            ({"n_therapists": 10}, ValueError, "n_therapists"),
            ({"effects": {"gama13": 1}}, ValueError, "gama13"),
            ({"lower": 1}, ValueError, "n_therapists"),
            ({"bogus": 1}, TypeError, "bogus"),
        ],
    )
    def test_bad_arguments_fail_before_simulating(
        self, kwargs: dict[str, object], exc: type[Exception], match: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def never(task: run.ChunkTask) -> run.Chunk:
            raise AssertionError("simulated before validating")

        monkeypatch.setattr(run, "run_chunk", never)
        monkeypatch.setattr(run, "fit_replicate", never)
        with pytest.raises(exc, match=match):
            standin_search(**kwargs)


def test_find_size_stops_when_the_final_replicates_miss_the_target() -> None:
    """The upper bound reaches the target with the first replicates but not with the
    final ones: the search ends (not reached) instead of looping."""
    seen: list[int] = []
    res = None
    for upper in range(8, 40):
        res = standin_search(lower=4, upper=upper, n_sims=10, n_sims_final=200)
        table = res.evaluations.set_index("n_therapists")
        if table.loc[upper, "n_sims"] == 200 and table.loc[upper, "power"] < 0.8:
            seen.append(upper)
            break
    assert seen, "no bound found where the final replicates miss the target"
    assert res is not None
    assert res.required is None or res.required < seen[0]


def test_run_killed_while_writing_its_manifest_can_start_again(tmp_path: Path) -> None:
    """A first run killed between taking the lock and moving its manifest into place
    leaves only the lock file and a temporary file: the directory is still usable."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / ".lock").write_text("process 1 on elsewhere, started then")
    (ckpt / ".tmp-abc123.json").write_text('{"format": 1, "ha')
    res = standin_power(checkpoint=ckpt, n_sims=3)
    assert_same_results(res, standin_power(n_sims=3))


@pytest.mark.slow
def test_separately_started_dask_cluster_equals_serial(tmp_path: Path) -> None:
    """A `dask scheduler` and two `dask worker` processes started on their own (as on a
    real cluster); power() pointed at the scheduler's address gives the serial result."""
    pytest.importorskip("distributed")
    from distributed import Client

    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the `dask` command is not installed")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    info = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(info), *common], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        import time

        deadline = time.monotonic() + 60
        while not (info.is_file() and info.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        procs += [subprocess.Popen([dask, "worker", address, "--nworkers", "1",
                                    "--nthreads", "1", *common], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for _ in range(2)]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        kwargs = {"n_therapists": [8, 12], "n_patients": 30, "n_sessions": 4, "n_sims": 10,
                  "rng": 4, "progress": False, "chunk_size": 3}
        distributed_run = power("truth_bias", backend=address, **kwargs)  # type: ignore[arg-type]
        assert_same_results(power("truth_bias", **kwargs), distributed_run)  # type: ignore[arg-type]
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- lme4 refits (#19)


def _reference_scenarios() -> dict[str, tuple[str, Sizes, dict[str, float], float, int]]:
    import importlib.util

    path = Path(__file__).parent / "reference" / "make_power_data.py"
    spec = importlib.util.spec_from_file_location("make_power_data", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {**module.SCENARIOS, "_seed": module.SEED}  # type: ignore[dict-item]


@pytest.mark.reference
@pytest.mark.parametrize(
    ("scenario", "n"),
    [("tb_alt", 300), ("tb_null", 300), ("growth_dropout_alt", 40),
     ("growth_dropout_null", 40)],
)
def test_power_replicates_match_lme4(scenario: str, n: int) -> None:
    """The simulated data sets of power() refitted with lme4/lmerTest
    (tests/reference/r/power_reference.R, the better of bobyqa and Nelder-Mead): every
    replicate's estimate and SE agree, and the p-values (t tests with Satterthwaite df by
    default, Wald z with ddf="z") agree with lmerTest's and lme4's, so no accept/reject
    decision differs: power and type-I error are the same numbers."""
    scenarios = _reference_scenarios()
    design, sizes, effects, p_missing, _ = scenarios[scenario]
    # the models of the R script: random intercepts (truth and bias), rater-general
    # random intercepts and slopes (growth), iid residuals
    random = {"truth_bias": "intercept", "growth": "slopes"}[design]
    ref = json.loads((Path(__file__).parent / "reference" / "results" /
                      "power_reference.json").read_text())[scenario]
    kwargs = {"effects": effects, "n_therapists": sizes.n_therapists,
              "n_patients": sizes.n_patients, "n_sessions": sizes.n_sessions,
              "p_missing": p_missing, "n_sims": n, "rng": scenarios["_seed"],
              "progress": False, "random": random, "residual": "iid"}
    res = power(design, **kwargs)  # type: ignore[arg-type]  # default: Satterthwaite
    wald = power(design, ddf="z", **kwargs)  # type: ignore[arg-type]
    assert res.settings["ddf"] == "satterthwaite"
    k = len(res.terms)

    def column(key: str) -> np.ndarray:
        values = np.asarray(ref[key], dtype=float)
        values = values.reshape(-1, k) if values.shape[-1] == k else values.reshape(k, -1).T
        return values[:n]

    # fixef(fit)[term], sqrt(diag(vcov(fit)))[term]
    for fit in (res, wald):
        np.testing.assert_allclose(fit.estimates.to_numpy(), column("estimate"), rtol=0,
                                   atol=2e-6)
        np.testing.assert_allclose(fit.std_errors.to_numpy(), column("se"), rtol=2e-5)
    # summary(fit)$coefficients[term, "Pr(>|t|)"] (lmerTest, Satterthwaite df)
    np.testing.assert_allclose(res.pvalues.to_numpy(), column("p_satterthwaite"),
                               rtol=1e-3, atol=1e-6)
    assert np.array_equal(res.pvalues.to_numpy() < 0.05, column("p_satterthwaite") < 0.05)
    # 2 * pnorm(-|estimate / se|): the Wald z tests decide the same
    assert np.array_equal(wald.pvalues.to_numpy() < 0.05, column("p_wald") < 0.05)


def test_ddf_default_follows_the_analysis() -> None:
    kw = {"n_therapists": 8, "n_patients": 24, "n_sessions": 3, "n_sims": 4, "rng": 1,
          "progress": False}
    res = power("truth_bias", targets=["truth_force_difference_first"], **kw)  # type: ignore[arg-type]
    assert res.settings["ddf"] == "satterthwaite"
    assert "Satterthwaite" in str(res.summary())
    z = power("truth_bias", targets=["truth_force_difference_first"], ddf="z", **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(res.estimates.to_numpy(), z.estimates.to_numpy())
    # a therapist-level term with 8 therapists: t with few df gives larger p-values
    assert (res.pvalues.to_numpy() > z.pvalues.to_numpy()).all()
    assert standin_power(n_sims=2).settings["ddf"] == "z"  # no model arrays
    assert power("truth_bias", engine="statsmodels", **kw).settings["ddf"] == "z"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Did you mean 'satterthwaite'"):
        power("truth_bias", ddf="satterthwait", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="engine='fast'"):
        power("truth_bias", ddf="satterthwaite", engine="statsmodels", **kw)  # type: ignore[arg-type]


def test_no_progress_bar_machinery_without_progress() -> None:
    # tqdm.auto warns in notebooks without ipywidgets ("IProgress not found") on import:
    # with progress=False it must not even be imported.
    code = ("import sys, warnings\nwarnings.simplefilter('ignore')\n"
            "from alliancestats import power\n"
            "power('truth_bias', n_therapists=6, n_patients=18, n_sessions=3, n_sims=2, "
            "progress=False, rng=1)\nprint('tqdm.auto' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    assert out.stdout.strip() == "False"
