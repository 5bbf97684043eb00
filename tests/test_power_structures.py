"""Power designs: the analysis' default random structures, residual structures of the
engine, and partially nested trials."""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from alliancestats import PRNParams, design, fit_growth, fit_truth_bias, power, stack_raters
from alliancestats.exceptions import AllianceStatsWarning
from alliancestats.power import _designs as pdz
from alliancestats.power._designs import Sizes, simulate_panel
from alliancestats.power._orchestration import plan

REFERENCE = Path(__file__).parent / "reference"
TB = {"judgment": "alliance_therapist", "truth": "alliance_patient",
      "groups": ["therapist", "patient"], "moderators": ["condition", "session"]}
GAMMA13 = "alliance_patient:condition:session"


def _quiet_fit(func, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        return func(*args, **kwargs)


def _long(frame):  # type: ignore[no-untyped-def]
    return stack_raters(frame, ratings={"therapist": "alliance_therapist",
                                        "patient": "alliance_patient"})


# ------------------------------------------------------------- default random structures


class TestDefaultStructures:
    def test_truth_bias_default_is_random_auto(self) -> None:
        spec = pdz.DESIGNS["truth_bias"]
        assert spec.random == "auto"
        assert spec.simplify
        assert "West & Kenny" in spec.model

    @pytest.mark.parametrize("seed", [0, 2, 3])
    def test_auto_matches_fit_truth_bias(self, seed: int) -> None:
        """The fast path's random='auto' takes the same fallback steps as
        fit_truth_bias(random='auto') and gives the same estimates (to rounding);
        seed 0 falls back at the therapist level, 2 at both levels with a singular end."""
        params = PRNParams(sd_truth_force_therapist=0.15)
        panel = simulate_panel(np.random.default_rng(seed), Sizes(16, 48, 5), params, 0.1)
        fast = pdz.DESIGNS["truth_bias"].fit_fast(panel, None)
        res = _quiet_fit(fit_truth_bias, panel.to_frame(), **TB)
        np.testing.assert_allclose(fast.estimate, [res.params[GAMMA13]], rtol=1e-10)
        np.testing.assert_allclose(fast.std_error, [res.bse[GAMMA13]], rtol=1e-10)
        steps = [f"{s['level']}: {s['term']} {s['action']}".replace("alliance_patient",
                                                                       "truth")
                 for s in res.random_fallback]
        assert steps, "the seeds were chosen to fall back"
        assert fast.message.startswith("random: " + "; ".join(steps))
        assert fast.status == ("singular" if res.is_singular else "ok")
        assert fast.theta is None  # a simplified fit is no warm start

    def test_auto_takes_the_same_steps_as_fit_truth_bias_with_its_guards(self) -> None:
        """One rule (design.fit_simplifying): on data sets where singular fits are common
        the power design's default fit and fit_truth_bias(random='auto') keep the same
        structure by the same steps, each step evaluated or refitted alike (dropped terms
        refitted near a bound, NEAR_BOUNDARY, or when the evaluated deviance is off,
        SAME_FIT_TOL), and give the same estimates and SEs."""
        kinds = [PRNParams(), PRNParams(sd_truth_force_therapist=0.1),
                 PRNParams(sd_truth_force=0.15)]
        cases = [(Sizes(10, 30, 5), seed) for seed in (23, 30, 113, 231)] + \
            [(Sizes(40, 117, 6), seed) for seed in (7, 27)]
        calls: list[tuple[str, tuple[bool, ...]]] = []
        real = design._simpler_fit

        def spy(old, new, action, singular, fit, evaluate):  # type: ignore[no-untyped-def]
            made: list[bool] = []

            def counted(structure, at, previous):  # type: ignore[no-untyped-def]
                made.append(at is not None)  # evaluated (True) or refitted (False)
                return fit(structure, at, previous)

            got = real(old, new, action, singular, counted, evaluate)
            calls.append((action, tuple(made)))
            return got

        seen = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(design, "_simpler_fit", spy)
            for sizes, seed in cases:
                panel = simulate_panel(np.random.default_rng(seed), sizes, kinds[seed % 3],
                                       0.1)
                fast = pdz.DESIGNS["truth_bias"].fit_fast(panel, None)
                fast_calls = calls[:]
                calls.clear()
                res = _quiet_fit(fit_truth_bias, panel.to_frame(), **TB)
                assert fast_calls == calls, (sizes, seed)
                seen += calls
                calls.clear()
                steps = [f"{s['level']}: {s['term']} {s['action']}".replace(
                    "alliance_patient", "truth") for s in res.random_fallback]
                assert fast.message.startswith("random: " + "; ".join(steps))
                assert fast.status == ("singular" if res.is_singular else "ok")
                se = res.bse[GAMMA13]
                np.testing.assert_allclose(fast.estimate, [res.params[GAMMA13]],
                                           rtol=0, atol=1e-10 * se)
                np.testing.assert_allclose(fast.std_error, [se], rtol=1e-10)
        assert ("dropped", (True,)) in seen  # evaluated at the singular fit's optimum
        assert ("dropped", (False,)) in seen  # NEAR_BOUNDARY: refitted
        assert ("dropped", (True, False)) in seen  # SAME_FIT_TOL: evaluated, then refitted
        assert ("correlation dropped", (False,)) in seen

    @pytest.mark.parametrize(("name", "random"), [("truth_bias", None),
                                                ("truth_bias", "intercept"),
                                                ("growth", "rater_intercepts")])
    def test_pilot_fit_gives_the_designs_warm_start(self, name: str, random: str | None
                                                    ) -> None:
        """The pilot of a cell fits only what a warm start needs (no df, no
        simplification) and gives the warm start the design's own fit would: its θ when
        that fit is ok, else none."""
        spec = plan(name, n_therapists=10, n_patients=30, random=random,
                    progress=False).spec
        pilot = pdz.warm_start_design(spec)
        params = PRNParams(sd_truth_force_therapist=0.3, sd_truth_force=0.3)
        warm = []
        for seed in range(6):
            panel = simulate_panel(np.random.default_rng(seed), Sizes(10, 30, 5), params,
                                   0.1)
            full, quick = spec.fit_fast(panel, None), pilot.fit_fast(panel, None)
            assert full.df is not None
            assert quick.df is None
            expected = full.theta if full.status == "ok" else None
            assert (quick.theta if quick.status == "ok" else None) == expected
            warm.append(expected is not None)
        assert any(warm)

    def test_growth_default_is_the_dyadic_structure(self) -> None:
        spec = pdz.DESIGNS["growth"]
        assert spec.random == "rater_slopes_therapist"
        assert pdz.RESIDUAL_STRUCTURES["growth"][0] == "rater"
        panel = simulate_panel(np.random.default_rng(1), Sizes(16, 48, 5), PRNParams(), 0.1)
        fast = spec.fit_fast(panel, None)
        res = _quiet_fit(fit_growth, _long(panel.to_frame()), outcome="alliance",
                         time="session", rater="rater", groups=["therapist", "patient"],
                         moderators="condition", random="rater_slopes_therapist")
        names = [f"rater[{r}]:session:condition" for r in ("therapist", "patient")]
        np.testing.assert_allclose(fast.estimate, res.params[names], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(fast.std_error, res.bse[names], rtol=1e-3)

    def test_settings_record_the_structure_unless_it_is_the_old_default(self) -> None:
        kw = {"n_therapists": 6, "n_patients": 18, "n_sessions": 3, "n_sims": 2, "rng": 1,
              "progress": False}
        auto = power("truth_bias", **kw)  # type: ignore[arg-type]
        assert auto.settings["random"] == "auto"
        # no random truth force simulated: the replicates' fits are simplified
        assert 0 < auto.power.loc[0, "n_simplified"] <= auto.power.loc[0, "n_valid"]
        assert "n_simplified" in str(auto.summary())
        # the structures fitted before the defaults changed are not recorded, so their
        # checkpoints still resume (and a default run refuses them)
        legacy = power("truth_bias", random="intercept", **kw)  # type: ignore[arg-type]
        assert "random" not in legacy.settings
        assert "n_simplified" not in legacy.power
        assert "random" not in power("growth", random="slopes", **kw).settings  # type: ignore[arg-type]
        growth = power("growth", **kw)  # type: ignore[arg-type]
        assert growth.settings["random"] == "rater_slopes_therapist"
        assert growth.settings["residual"] == "rater"  # the report's growth model
        assert "residual" not in power("truth_bias", **kw).settings  # type: ignore[arg-type]

    @pytest.mark.slow
    def test_auto_holds_alpha_where_intercepts_are_liberal(self) -> None:
        """Therapist random truth force (SD 0.15), no training effect on the truth force:
        the default model tests it at alpha (binomial 99% interval of 0.05); the
        random-intercept model rejects 9.5% (power guide)."""
        res = power("truth_bias", targets=["truth_force_difference_first"],
                    effects={"gamma11": 0.0, "sd_truth_force_therapist": 0.15},
                    n_therapists=40, n_patients=117, n_sessions=6, n_sims=200, rng=5,
                    progress=False)
        row = res.power.iloc[0]
        assert row["true_value"] == 0.0
        low, high = stats.binom.ppf([0.005, 0.995], row["n_valid"], 0.05)
        assert low <= round(row["power"] * row["n_valid"]) <= high


# ------------------------------------------------------------------ residual structures


class TestResidualStructures:
    def test_ar1_fit_matches_fit_truth_bias(self) -> None:
        params = PRNParams(residual_ar_judgment=0.5)
        panel = simulate_panel(np.random.default_rng(3), Sizes(16, 48, 5), params, 0.1)
        spec = pdz.with_residual(pdz.with_random(pdz.DESIGNS["truth_bias"], "intercept"),
                                 "ar1")
        fast = spec.fit_fast(panel, None)
        res = _quiet_fit(fit_truth_bias, panel.to_frame(), **TB, random="intercept",
                         residual="ar1", time="session")
        np.testing.assert_allclose(fast.estimate, [res.params[GAMMA13]], rtol=1e-4)
        np.testing.assert_allclose(fast.std_error, [res.bse[GAMMA13]], rtol=1e-3)
        assert len(fast.theta or ()) == 3  # two relative SDs and phi (warm start)

    @pytest.mark.parametrize("residual", ["rater", "rater_ar1", "ar1"])
    def test_growth_residuals_match_fit_growth(self, residual: str) -> None:
        params = PRNParams(residual_corr_raters=0.4, residual_ar_truth=0.3,
                           residual_ar_judgment=0.3)
        panel = simulate_panel(np.random.default_rng(5), Sizes(16, 48, 5), params, 0.1)
        spec = pdz.with_residual(pdz.DESIGNS["growth"], residual)
        fast = spec.fit_fast(panel, None)
        res = _quiet_fit(fit_growth, _long(panel.to_frame()), outcome="alliance",
                         time="session", rater="rater", groups=["therapist", "patient"],
                         moderators="condition", random="rater_slopes_therapist",
                         residual=residual)
        names = [f"rater[{r}]:session:condition" for r in ("therapist", "patient")]
        np.testing.assert_allclose(fast.estimate, res.params[names], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fast.std_error, res.bse[names], rtol=2e-3)

    def test_residual_is_validated_and_recorded(self) -> None:
        kw = {"n_therapists": 6, "n_patients": 18, "n_sessions": 3, "n_sims": 2,
              "rng": 1, "progress": False}
        with pytest.raises(ValueError, match="residual"):
            power("truth_bias", residual="rater", **kw)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="engine='fast'"):
            power("truth_bias", residual="ar1", engine="statsmodels", **kw)  # type: ignore[arg-type]
        res = power("lagged_rsa", residual="ar1", **kw)  # type: ignore[arg-type]
        assert res.settings["residual"] == "ar1"
        assert "AR(1)" in res.settings["model"]
        assert "residual" not in power("lagged_rsa", **kw).settings  # type: ignore[arg-type]

    def test_checkpoints_record_residual_parameters_only_when_set(self) -> None:
        kw = {"n_therapists": 6, "n_patients": 18, "n_sessions": 3, "n_sims": 2,
              "rng": 1, "progress": False, "random": "intercept"}
        effects = power("truth_bias", **kw).settings["effects"]  # type: ignore[arg-type]
        assert not any(k.startswith("residual_") for k in effects)
        effects = power("truth_bias", effects={"residual_ar_truth": 0.3},  # type: ignore[arg-type]
                        **kw).settings["effects"]
        assert effects["residual_ar_truth"] == 0.3

    @pytest.mark.slow
    def test_ignoring_serial_correlation_changes_type_one_error(self) -> None:
        """Simulate AR(1) residuals (phi = 0.6, both ratings), no training effect on the
        truth force's growth: the iid model's test of truth:condition:session is
        liberal, the AR(1) model's holds alpha (binomial 99% interval)."""
        kw = {"effects": {"gamma13": 0.0, "residual_ar_judgment": 0.6,
                          "residual_ar_truth": 0.6},
              "n_therapists": 40, "n_patients": 117, "n_sessions": 6, "n_sims": 200,
              "rng": 11, "progress": False, "random": "intercept"}
        iid = power("truth_bias", **kw).power.iloc[0]  # type: ignore[arg-type]
        ar1 = power("truth_bias", residual="ar1", **kw).power.iloc[0]  # type: ignore[arg-type]
        low, high = stats.binom.ppf([0.005, 0.995], 200, 0.05) / 200
        assert low <= ar1["power"] <= high
        assert iid["power"] > high
        # the iid model's SE is too small for the empirical SD of the estimates
        assert iid["mean_std_error"] < 0.85 * iid["sd_estimate"]


# --------------------------------------------------------------------- partial nesting


def _reference_panel():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_partial_data",
                                                  REFERENCE / "make_partial_data.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.panel()


def _r_name(name: str) -> str:
    """lme4's coefficient name -> the power design's column name."""
    if name == "(Intercept)":
        return "Intercept"
    name = re.sub(r"rater(therapist|patient)", r"rater[\1]", name)
    name = name.replace("condition:time", "time:condition").replace("time", "session")
    return ":".join("truth" if part == "T" else part for part in name.split(":"))


class TestPartialNesting:
    @pytest.mark.reference
    @pytest.mark.parametrize(("key", "design", "random"), [
        ("tb_intercept", "truth_bias", "intercept"),
        ("tb_slopes", "truth_bias", "slopes"),
        ("growth_rater_slopes", "growth", "rater_slopes"),
    ])
    def test_partially_nested_model_matches_lme4(self, key: str, design: str,
                                                 random: str) -> None:
        """The fitted partially nested model (therapist random effects through the arm
        indicator, untrained patients their own units) against lme4/lmerTest on the same
        trial (tests/reference/r/partial_nesting_reference.R)."""
        ref = json.loads((REFERENCE / "results" / "partial_nesting.json").read_text())[key]
        spec = pdz.with_random(pdz.DESIGNS[design], random)
        panel = _reference_panel()
        frame = panel.to_frame()
        csv = (REFERENCE / "data" / "partial_nested.csv").read_text()
        assert frame.to_csv(index=False, float_format="%.17g") == csv
        assert spec.arrays is not None
        arrays = spec.arrays(panel)
        order = [arrays.columns.index(_r_name(n)) for n in ref["names"]]
        L = np.eye(len(arrays.columns))[order]
        out = pdz.fit_arrays(arrays, L, None, "satterthwaite")
        np.testing.assert_allclose(out.estimate, ref["fixef"], rtol=1e-5, atol=1e-7)  # fixef
        np.testing.assert_allclose(out.std_error, ref["se"], rtol=1e-5)  # sqrt(diag(vcov))
        assert out.df is not None
        np.testing.assert_allclose(out.df, ref["df"], rtol=1e-4)  # lmerTest df
        assert (out.status == "singular") == ref["isSingular"]

    def test_power_recovers_gamma13_and_records_the_nesting(self) -> None:
        res = power("truth_bias", nesting="partial", random="intercept",
                    effects={"sd_judgment_therapist": 0.4},
                    n_therapists=30, n_patients=90, n_sessions=5, n_sims=60, rng=2,
                    progress=False)
        row = res.power.iloc[0]
        assert res.settings["nesting"] == "partial"
        assert row["n_valid"] == 60
        mc = row["sd_estimate"] / np.sqrt(row["n_valid"])
        assert abs(row["mean_estimate"] - 0.06) < 4 * mc
        assert 0.85 <= row["coverage"] <= 1.0

    def test_nesting_is_validated(self) -> None:
        kw = {"n_therapists": 6, "n_patients": 18, "n_sessions": 3, "n_sims": 2,
              "rng": 1, "progress": False}
        with pytest.raises(ValueError, match="`nesting` must be one of"):
            power("truth_bias", nesting="partially", **kw)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="engine='fast'"):
            power("truth_bias", nesting="partial", engine="statsmodels", **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ powerlmm (analytic)


@pytest.mark.slow
@pytest.mark.reference
def test_power_matches_powerlmm_analytic_power() -> None:
    """Therapist random intercepts and slopes, unequal caseloads (powerlmm's
    ``unequal_clusters``): the simulated power of powerlmm's analysis model agrees with
    powerlmm's analytic power for the same replicates' arm allocations (mean over the
    randomisation; tests/reference/r/powerlmm_reference.R) within 3 Monte-Carlo SEs."""
    spec = importlib.util.spec_from_file_location("make_powerlmm_data",
                                                  REFERENCE / "make_powerlmm_data.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ref = json.loads((REFERENCE / "results" / "powerlmm_reference.json").read_text())
    csv = (REFERENCE / "data" / "powerlmm_allocations.csv").read_text().splitlines()[1:]
    ours = [f"{r},{' '.join(map(str, c))},{' '.join(map(str, t))}"
            for r, (c, t) in enumerate(module.allocations())]
    assert ours == csv  # the analytic powers are those of these very allocations
    res = power(module.DESIGN, effects=module.EFFECTS, caseloads=module.CASELOADS,
                n_sessions=module.N_SESSIONS, n_sims=module.N_SIMS, rng=module.SEED,
                progress=False)
    row = res.power.iloc[0]
    assert row["n_valid"] == module.N_SIMS
    expected = ref["power_mean"]  # mean(get_power(<allocation>, df = "satterth")$power)
    assert abs(row["power"] - expected) < 3 * np.sqrt(expected * (1 - expected) /
                                                      row["n_valid"])
    assert 0.93 <= row["coverage"] <= 0.97 + 0.02
