"""Tests of the PRN data-generating process (``simulate_prn`` and ``PRNParams``).

Recovery checks use plain OLS (statsmodels) on designs where the model is exactly an OLS
model (the relevant random-effect SDs set to 0), or exact identities with the noise
switched off, so they do not depend on the mixed-model layer. Seeds are fixed and the
tolerance is 3 SE per estimate (4 SE where many cells are checked at once).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st

from alliancestats import PRNParams, simulate_prn
from alliancestats._validation import check_unique_rows, require_numeric
from alliancestats.simulate import COLUMNS

RATINGS = ["alliance_therapist", "alliance_patient", "wellbeing"]
NO_JUDGMENT_RE = {"sd_judgment_therapist": 0.0, "sd_judgment_patient": 0.0}
NO_WELLBEING_RE = {"sd_wellbeing_therapist": 0.0, "sd_wellbeing_patient": 0.0}


def wide(df: pd.DataFrame, column: str) -> np.ndarray:
    """(patient, session) array of a complete panel, patients in frame order."""
    return df.pivot(index="patient", columns="session", values=column).to_numpy()


class TestReproducibility:
    def test_same_seed_identical_frame_and_attrs(self) -> None:
        a = simulate_prn(rng=7, p_missing=0.1)
        b = simulate_prn(rng=7, p_missing=0.1)
        pd.testing.assert_frame_equal(a, b)
        assert a.attrs == b.attrs

    def test_generator_and_int_seed_agree(self) -> None:
        a = simulate_prn(5, 12, 3, rng=np.random.default_rng(11))
        b = simulate_prn(5, 12, 3, rng=11)
        pd.testing.assert_frame_equal(a, b)

    def test_different_seeds_differ(self) -> None:
        a = simulate_prn(rng=1)
        b = simulate_prn(rng=2)
        assert not np.allclose(a["alliance_patient"], b["alliance_patient"])

    def test_generator_advances(self) -> None:
        gen = np.random.default_rng(3)
        a = simulate_prn(4, 8, 3, rng=gen)
        b = simulate_prn(4, 8, 3, rng=gen)
        assert not np.allclose(a["wellbeing"], b["wellbeing"])

    def test_attrs_record_params_and_design(self) -> None:
        df = simulate_prn(6, 10, 4, params={"gamma13": 0.2}, p_missing=0.1, rng=0)
        expected = {
            **dataclasses.asdict(PRNParams(gamma13=0.2)),
            "n_therapists": 6,
            "n_patients": 10,
            "n_sessions": 4,
            "p_missing": 0.1,
        }
        assert df.attrs["params"] == expected


class TestDesign:
    def test_sizes_labels_dtypes_and_order(self) -> None:
        df = simulate_prn(rng=3)
        assert list(df.columns) == list(COLUMNS)
        assert df.shape == (117 * 6, 7)
        assert sorted(df["therapist"].unique()) == [f"T{i:02d}" for i in range(1, 41)]
        assert sorted(df["patient"].unique()) == [f"P{i:03d}" for i in range(1, 118)]
        assert df["session"].tolist() == list(range(1, 7)) * 117
        assert df["session"].dtype == np.int64
        assert df["condition"].dtype == np.int64
        assert df[RATINGS].dtypes.eq(np.float64).all()
        key = ["therapist", "patient", "session"]
        pd.testing.assert_frame_equal(df, df.sort_values(key, ignore_index=True))
        assert isinstance(df.index, pd.RangeIndex)

    def test_patients_nested_in_therapists(self) -> None:
        df = simulate_prn(rng=4)
        assert (df.groupby("patient")["therapist"].nunique() == 1).all()
        assert (df.groupby("therapist")["condition"].nunique() == 1).all()

    @pytest.mark.parametrize("n_therapists", [1, 2, 7, 40])
    def test_balanced_randomisation(self, n_therapists: int) -> None:
        df = simulate_prn(n_therapists, 3 * n_therapists, 2, rng=n_therapists)
        arms = df.groupby("therapist")["condition"].first()
        assert arms.sum() == n_therapists // 2
        assert (arms == 0).sum() == n_therapists - n_therapists // 2

    def test_arm_order_is_random(self) -> None:
        first = {
            tuple(simulate_prn(10, 10, 2, rng=s).groupby("therapist")["condition"].first())
            for s in range(20)
        }
        assert len(first) > 5

    def test_uneven_caseloads_every_therapist_treats(self) -> None:
        sizes = simulate_prn(rng=5).groupby("therapist")["patient"].nunique()
        assert len(sizes) == 40
        assert sizes.min() >= 1
        assert sizes.sum() == 117
        assert sizes.nunique() > 2  # unequal caseloads

    def test_tiny_caseload_shape_still_valid(self) -> None:
        # Gamma weights may all underflow to 0; allocation then falls back to equal odds.
        df = simulate_prn(4, 40, 2, params={"caseload_shape": 1e-300}, rng=1)
        sizes = df.groupby("therapist")["patient"].nunique()
        assert len(sizes) == 4
        assert sizes.sum() == 40

    def test_no_duplicated_session_rows(self) -> None:
        df = simulate_prn(rng=6, p_missing=0.2)
        assert not df.duplicated(["patient", "session"]).any()


class TestMissing:
    def test_share_removed_and_no_patient_lost(self) -> None:
        n_pat, n_ses, p = 3000, 6, 0.3
        df = simulate_prn(300, n_pat, n_ses, p_missing=p, rng=8)
        share = 1 - len(df) / (n_pat * n_ses)
        # Rescued all-missing patients lower the expected share by about p**6 / 6.
        expected = p - p**n_ses / n_ses
        se = np.sqrt(p * (1 - p) / (n_pat * n_ses))
        assert abs(share - expected) < 4 * se
        assert df["patient"].nunique() == n_pat
        assert df["therapist"].nunique() == 300

    def test_extreme_missingness_keeps_one_session_per_patient(self) -> None:
        df = simulate_prn(5, 50, 3, p_missing=0.99, rng=9)
        assert df["patient"].nunique() == 50
        assert (df.groupby("patient").size() >= 1).all()
        assert len(df) < 60

    def test_missed_session_is_absent_row_of_full_panel(self) -> None:
        full = simulate_prn(10, 30, 5, rng=10)
        holes = simulate_prn(10, 30, 5, p_missing=0.25, rng=10)
        assert not holes.isna().any().any()
        # Missingness is drawn last: observed rows are the full-panel rows unchanged, so
        # well-being after a missed session uses the latent previous values.
        merged = holes.merge(full, on=["therapist", "patient", "session"], suffixes=("", "_f"))
        assert len(merged) == len(holes) < len(full)
        for col in ["condition", *RATINGS]:
            np.testing.assert_array_equal(merged[col], merged[f"{col}_f"])


class TestExactEquations:
    """With the noise switched off, each generating equation holds to rounding error."""

    def test_truth_and_bias_equation(self) -> None:
        prm = PRNParams(
            **NO_JUDGMENT_RE, sd_judgment_residual=0.0, gamma01=0.2, gamma11=-0.1, gamma12=0.02
        )
        df = simulate_prn(8, 40, 6, params=prm, rng=12)
        s, c = df["session"] - 1, df["condition"]
        bias = prm.gamma00 + prm.gamma01 * c + (prm.gamma02 + prm.gamma03 * c) * s
        force = prm.gamma10 + prm.gamma11 * c + (prm.gamma12 + prm.gamma13 * c) * s
        truth_dev = df["alliance_patient"] - prm.truth_mean
        np.testing.assert_allclose(
            df["alliance_therapist"] - prm.truth_mean, bias + force * truth_dev, atol=1e-12
        )

    def test_lagged_wellbeing_equation(self) -> None:
        prm = PRNParams(**NO_WELLBEING_RE, sd_wellbeing_residual=0.0, b1_untrained=0.4)
        df = simulate_prn(8, 40, 6, params=prm, rng=13)
        x, y, w = (
            wide(df, "alliance_therapist"),
            wide(df, "alliance_patient"),
            wide(df, "wellbeing"),
        )
        trained = df.groupby("patient")["condition"].first().to_numpy()
        xc, yc = x[:, :-1] - prm.alliance_center, y[:, :-1] - prm.alliance_center
        terms = [xc, yc, xc**2, xc * yc, yc**2]
        surface = np.zeros_like(xc)
        for arm in (0, 1):
            b = prm.rsa_coefficients(arm).values()
            rows = trained == arm
            surface[rows] = sum(bk * tk[rows] for bk, tk in zip(b, terms, strict=True))
        t = np.arange(2, 7)
        expected = (
            prm.wellbeing_intercept
            + prm.wellbeing_ar * w[:, :-1]
            + prm.wellbeing_time * (t - 1)
            + surface
        )
        np.testing.assert_allclose(w[:, 1:], expected, atol=1e-10)


class TestRecovery:
    def test_truth_and_bias_gammas_by_ols(self) -> None:
        # Random intercepts of the judgment off: the T&B model is then an OLS model.
        prm = PRNParams(**NO_JUDGMENT_RE, gamma01=0.2, gamma11=-0.1, gamma12=0.02)
        df = simulate_prn(400, 1200, 6, params=prm, rng=21)
        data = pd.DataFrame(
            {
                "J": df["alliance_therapist"] - prm.truth_mean,
                "T": df["alliance_patient"] - prm.truth_mean,
                "c": df["condition"],
                "s": df["session"] - 1,
            }
        )
        fit = smf.ols("J ~ T * c * s", data).fit()
        truth = {
            "Intercept": prm.gamma00,
            "c": prm.gamma01,
            "s": prm.gamma02,
            "c:s": prm.gamma03,
            "T": prm.gamma10,
            "T:c": prm.gamma11,
            "T:s": prm.gamma12,
            "T:c:s": prm.gamma13,
        }
        z = (fit.params[list(truth)] - pd.Series(truth)) / fit.bse[list(truth)]
        assert z.abs().max() < 3, z
        assert fit.scale == pytest.approx(prm.sd_judgment_residual**2, rel=0.05)

    def test_lagged_wellbeing_by_ols(self) -> None:
        # Random intercepts of well-being (sessions 2+) off: the lagged equation is OLS.
        prm = PRNParams(
            **NO_WELLBEING_RE,
            b1_untrained=0.3,
            b2_untrained=-0.2,
            b3_untrained=0.2,
            b4_untrained=0.3,
            b5_untrained=-0.1,
        )
        df = simulate_prn(300, 1500, 6, params=prm, rng=22)
        x, y, w = (
            wide(df, "alliance_therapist"),
            wide(df, "alliance_patient"),
            wide(df, "wellbeing"),
        )
        cond = np.repeat(df.groupby("patient")["condition"].first().to_numpy()[:, None], 5, 1)
        data = pd.DataFrame(
            {
                "w": w[:, 1:].ravel(),
                "w_lag": w[:, :-1].ravel(),
                "s": np.tile(np.arange(1, 6), w.shape[0]),
                "x": (x[:, :-1] - prm.alliance_center).ravel(),
                "y": (y[:, :-1] - prm.alliance_center).ravel(),
                "tr": cond.ravel(),
            }
        )
        data["un"] = 1 - data["tr"]
        surface = "x + y + I(x**2) + I(x*y) + I(y**2)"
        fit = smf.ols(f"w ~ w_lag + s + tr:({surface}) + un:({surface})", data).fit()
        names = ["x", "y", "I(x ** 2)", "I(x * y)", "I(y ** 2)"]
        truth = {"Intercept": prm.wellbeing_intercept, "w_lag": prm.wellbeing_ar}
        truth["s"] = prm.wellbeing_time
        for arm, label in ((1, "tr"), (0, "un")):
            for name, b in zip(names, prm.rsa_coefficients(arm).values(), strict=True):
                truth[f"{label}:{name}"] = b
        z = (fit.params[list(truth)] - pd.Series(truth)) / fit.bse[list(truth)]
        assert z.abs().max() < 3, z
        assert fit.scale == pytest.approx(prm.sd_wellbeing_residual**2, rel=0.05)

    def test_mean_growth_per_rater_and_arm(self) -> None:
        prm = PRNParams()
        df = simulate_prn(1000, 3000, 6, params=prm, rng=23)
        expected = prm.expected_alliance_means(6).set_index(["condition", "session"])
        for rater in ["alliance_therapist", "alliance_patient"]:
            # Cell means with therapist-clustered SEs.
            fit = smf.ols(f"{rater} ~ 0 + C(condition):C(session)", df).fit(
                cov_type="cluster", cov_kwds={"groups": pd.factorize(df["therapist"])[0]}
            )
            for (c, t), mean in expected[rater].items():
                term = f"C(condition)[{c}]:C(session)[{t}]"
                assert abs(fit.params[term] - mean) < 4 * fit.bse[term], (rater, c, t)

    def test_growth_faster_with_training_for_therapist_ratings_only(self) -> None:
        df = simulate_prn(1000, 3000, 6, rng=24)
        groups = pd.factorize(df["therapist"])[0]
        slopes = {}
        for rater in ["alliance_therapist", "alliance_patient"]:
            fit = smf.ols(f"{rater} ~ session * condition", df).fit(
                cov_type="cluster", cov_kwds={"groups": groups}
            )
            slopes[rater] = (fit.params["session:condition"], fit.bse["session:condition"])
        est, se = slopes["alliance_therapist"]
        assert est / se > 5  # defaults: about 0.07 per session faster with training
        est, se = slopes["alliance_patient"]
        assert abs(est) < 3 * se  # same patient-rated growth in both arms

    def test_random_truth_force_variance(self) -> None:
        # Constant forces (no session or condition moderation), many sessions: the spread
        # of per-patient OLS slopes minus their sampling variance estimates sd_truth_force².
        prm = PRNParams(gamma02=0.0, gamma03=0.0, gamma13=0.0, sd_truth_force=0.2)
        df = simulate_prn(200, 2000, 30, params=prm, rng=26)
        x, y = wide(df, "alliance_therapist"), wide(df, "alliance_patient")
        yc = y - y.mean(axis=1, keepdims=True)
        xc = x - x.mean(axis=1, keepdims=True)
        sxx = (yc**2).sum(axis=1)
        slopes = (xc * yc).sum(axis=1) / sxx
        resid = xc - slopes[:, None] * yc
        sampling = (resid**2).sum(axis=1) / (y.shape[1] - 2) / sxx
        assert slopes.mean() == pytest.approx(prm.gamma10, abs=4 * slopes.std() / 2000**0.5)
        assert slopes.var(ddof=1) - sampling.mean() == pytest.approx(0.2**2, rel=0.15)

    def test_second_moments_match_variance_components(self) -> None:
        prm = PRNParams(sd_truth_growth=0.1)
        df = simulate_prn(3000, 9000, 3, params=prm, rng=25)
        y = wide(df, "alliance_patient")
        ther = df.groupby("patient")["therapist"].first().to_numpy()
        var_total = prm.sd_truth_therapist**2 + prm.sd_truth_patient**2
        # Same patient, sessions 1 and 3: therapist + patient intercepts (slope term is 0 at s=0).
        assert np.cov(y[:, 0], y[:, 2])[0, 1] == pytest.approx(var_total, rel=0.05)
        # Session-3 variance adds slope (s=2) and residual variance.
        full = var_total + 4 * prm.sd_truth_growth**2 + prm.sd_truth_residual**2
        assert y[:, 2].var() == pytest.approx(full, rel=0.05)
        # Two different patients of the same therapist share only the therapist effect.
        # Patients are numbered within therapist, so a therapist's first two patients
        # are neighbours.
        first = np.flatnonzero(np.r_[True, ther[1:] != ther[:-1]])
        first = first[(first + 1 < len(ther))]
        first = first[ther[first + 1] == ther[first]]
        cov = np.cov(y[first, 0], y[first + 1, 0])[0, 1]
        assert cov == pytest.approx(prm.sd_truth_therapist**2, abs=0.02)


class TestParams:
    def test_frozen_and_float(self) -> None:
        prm = PRNParams(gamma13=1)
        assert isinstance(prm.gamma13, float)
        with pytest.raises(dataclasses.FrozenInstanceError):
            prm.gamma13 = 0.0  # type: ignore[misc]

    def test_default_magnitudes(self) -> None:
        prm = PRNParams()
        assert prm.truth_force(1, 1) == pytest.approx(0.3)
        assert prm.truth_force(1, 6) == pytest.approx(0.6)
        assert prm.truth_force(0, 6) == pytest.approx(0.3)
        assert -0.5 <= prm.directional_bias(0, 1) <= -0.3
        assert prm.surface(1) == pytest.approx({"a1": 1.5, "a2": 0, "a3": 0, "a4": -3, "a5": 0})
        assert prm.surface(0) == pytest.approx(dict.fromkeys(["a1", "a2", "a3", "a4", "a5"], 0))

    def test_surface_algebra(self) -> None:
        prm = PRNParams(b1_trained=1, b2_trained=2, b3_trained=3, b4_trained=4, b5_trained=5)
        assert prm.surface(1) == {"a1": 3, "a2": 12, "a3": -1, "a4": 4, "a5": -2}

    def test_dict_overrides_equal_dataclass(self) -> None:
        a = simulate_prn(4, 8, 3, params={"gamma13": 0.2, "truth_mean": 4.0}, rng=1)
        b = simulate_prn(4, 8, 3, params=PRNParams(gamma13=0.2, truth_mean=4.0), rng=1)
        pd.testing.assert_frame_equal(a, b)

    def test_sd_zero_keeps_random_stream(self) -> None:
        # Common random numbers: switching one effect off leaves the other draws alone.
        a = simulate_prn(6, 12, 4, rng=2)
        b = simulate_prn(6, 12, 4, params={"sd_truth_force": 0.3}, rng=2)
        np.testing.assert_array_equal(a["alliance_patient"], b["alliance_patient"])
        assert not np.allclose(a["alliance_therapist"], b["alliance_therapist"])


class TestValidation:
    def test_unknown_param_key_suggests_close_match(self) -> None:
        with pytest.raises(ValueError, match=r"unknown key 'gama13'\. Did you mean 'gamma13'"):
            simulate_prn(params={"gama13": 0.1})

    def test_negative_sd(self) -> None:
        with pytest.raises(ValueError, match=r"'sd_truth_patient' is a standard deviation"):
            simulate_prn(params={"sd_truth_patient": -0.1})

    def test_non_numeric_param(self) -> None:
        with pytest.raises(TypeError, match=r"field 'gamma00' must be a real number"):
            PRNParams(gamma00="-0.4")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"field 'gamma00' must be a real number"):
            PRNParams(gamma00=True)

    def test_non_finite_param(self) -> None:
        with pytest.raises(ValueError, match=r"'wellbeing_ar' must be finite"):
            PRNParams(wellbeing_ar=float("nan"))

    def test_caseload_shape_positive(self) -> None:
        with pytest.raises(ValueError, match=r"'caseload_shape' must be > 0"):
            PRNParams(caseload_shape=0)

    def test_params_type(self) -> None:
        with pytest.raises(TypeError, match=r"`params` must be None, a PRNParams or a dict"):
            simulate_prn(params=[("gamma13", 0.1)])  # type: ignore[arg-type]

    def test_too_few_patients(self) -> None:
        with pytest.raises(ValueError, match=r"`n_patients` \(5\) must be at least `n_therap"):
            simulate_prn(10, 5)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n_therapists": 0}, r"`n_therapists` must be at least 1; got 0"),
            ({"n_patients": 0}, r"`n_patients` must be at least 1"),
            ({"n_sessions": 1}, r"`n_sessions` must be at least 2; got 1"),
            ({"p_missing": 1.0}, r"`p_missing` must be in \[0, 1\); got 1.0"),
            ({"p_missing": -0.1}, r"`p_missing` must be in \[0, 1\)"),
        ],
    )
    def test_value_errors(self, kwargs: dict[str, float], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            simulate_prn(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n_therapists": 4.0}, r"`n_therapists` must be an integer; got float"),
            ({"n_sessions": True}, r"`n_sessions` must be an integer; got bool"),
            ({"p_missing": "0.1"}, r"`p_missing` must be a number"),
            ({"rng": "seed"}, r"`rng` must be None, an int seed"),
        ],
    )
    def test_type_errors(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(TypeError, match=match):
            simulate_prn(**kwargs)  # type: ignore[arg-type]


@st.composite
def designs(draw: st.DrawFn) -> dict[str, object]:
    n_t = draw(st.integers(1, 6))
    return {
        "n_therapists": n_t,
        "n_patients": n_t + draw(st.integers(0, 10)),
        "n_sessions": draw(st.integers(2, 5)),
        "p_missing": draw(st.sampled_from([0.0, 0.1, 0.5, 0.9])),
        "rng": draw(st.integers(0, 2**32 - 1)),
    }


@settings(max_examples=40, deadline=None)
@given(designs())
def test_small_designs_give_valid_frames(design: dict[str, object]) -> None:
    df = simulate_prn(**design)  # type: ignore[arg-type]
    n_t, n_p = design["n_therapists"], design["n_patients"]
    assert list(df.columns) == list(COLUMNS)
    require_numeric(df, {"session": "session", "condition": "condition", "ratings": RATINGS})
    check_unique_rows(df, ["patient", "session"], "data")
    assert not df.isna().any().any()
    assert df["patient"].nunique() == n_p
    assert df["therapist"].nunique() == n_t
    assert df["session"].between(1, design["n_sessions"]).all()  # type: ignore[arg-type]
    arms = df.groupby("therapist")["condition"].first()
    assert arms.sum() == n_t // 2  # type: ignore[operator]


# ------------------------------------------------------------------ design realism (#19)


def _fingerprint(frame: pd.DataFrame) -> str:
    import hashlib

    text = frame.to_csv(index=False, float_format="%.17g")
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rng": 1}, "902b78d5911bf3c1bd88"),
        ({"n_therapists": 7, "n_patients": 19, "n_sessions": 4, "p_missing": 0.2,
          "rng": 5}, "f7498686fa7f4f227224"),
        ({"params": {"sd_truth_force": 0.2, "gamma13": 0.0}, "p_missing": 0.1,
          "rng": np.random.SeedSequence(3, spawn_key=(1, 2))}, "ef213dcb35acb9542983"),
    ],
)
def test_default_design_is_bit_identical_to_before(kwargs: dict[str, object],
                                                   expected: str) -> None:
    """Fingerprints of simulate_prn output recorded before the design-realism options
    (therapist random slopes, dropout) existed: the defaults reproduce it exactly."""
    assert _fingerprint(simulate_prn(**kwargs)) == expected  # type: ignore[arg-type]


def test_design_options_do_not_change_the_main_stream() -> None:
    """Turning the options on changes only what they touch: with dropout only, the
    retained rows are the default data set's rows, value for value."""
    base = simulate_prn(rng=4)
    dropped = simulate_prn(params={"dropout_trained": 0.3, "dropout_untrained": 0.2},
                           rng=4)
    assert len(dropped) < len(base)
    merged = dropped.merge(base, on=["patient", "session"], suffixes=("", "_base"))
    assert len(merged) == len(dropped)
    for col in ("alliance_therapist", "alliance_patient", "wellbeing"):
        assert (merged[col] == merged[f"{col}_base"]).all()


def _pieces(params: PRNParams, n_t: int, n_p: int, n_s: int, seed: int
            ) -> tuple[np.ndarray, ...]:
    from alliancestats.simulate import (
        allocate,
        design_stream,
        missing_mask,
        simulate_alliance,
        simulate_wellbeing,
    )

    rng = np.random.default_rng(seed)
    extra = design_stream(rng)
    condition, therapist = allocate(rng, n_t, n_p, params.caseload_shape)
    x, y = simulate_alliance(rng, therapist, condition, n_s, params, extra)
    w = simulate_wellbeing(rng, therapist, condition, x, y, params)
    observed = missing_mask(rng, n_p, n_s, 0.0)
    return condition, therapist, x, y, w, observed, extra


def test_therapist_random_slopes_are_recovered() -> None:
    """With every other source of variation off, each therapist's patients share one
    truth slope over sessions (g_P + r_k) and one truth force (gamma10 + f_k): their SDs
    over 3000 therapists recover the parameters (sampling SE of an SD ~1.3%)."""
    params = PRNParams(
        sd_truth_growth_therapist=0.08, sd_truth_force_therapist=0.15, sd_truth_growth=0,
        sd_truth_residual=0, sd_judgment_residual=0, sd_truth_force=0, gamma02=0,
        gamma03=0, gamma12=0, gamma13=0, gamma01=0, gamma11=0,
    )
    _, therapist, x, y, *_ = _pieces(params, 3000, 6000, 4, seed=3)
    s = np.arange(4.0)
    slope_y = np.polyfit(s, y.T, 1)[0]  # per patient: g_P + r_k exactly
    dev_y = y - params.truth_mean
    dev_x = x - params.truth_mean - params.gamma00
    per_patient = [(np.polyfit(dev_y[j], dev_x[j], 1)[0]) for j in range(len(therapist))]
    first = np.unique(therapist, return_index=True)[1]
    growth_k = slope_y[first] - params.truth_growth
    force_k = np.asarray(per_patient)[first] - params.gamma10
    np.testing.assert_allclose(slope_y, slope_y[first][therapist], atol=1e-9)
    assert np.std(growth_k, ddof=1) == pytest.approx(0.08, rel=0.05)
    assert np.std(force_k, ddof=1) == pytest.approx(0.15, rel=0.05)
    assert abs(np.mean(force_k)) < 4 * 0.15 / np.sqrt(3000)


def test_mcar_dropout_follows_the_hazard_by_arm() -> None:
    from alliancestats.simulate import dropout_mask

    params = PRNParams(dropout_untrained=0.1, dropout_trained=0.25)
    condition, therapist, _, _, w, observed, extra = _pieces(params, 400, 20000, 6, seed=8)
    before = observed.copy()
    mask = dropout_mask(extra, observed, condition[therapist], w, params)
    assert np.array_equal(observed, before)  # input not mutated
    assert mask[:, 0].all()  # session 1 always attended
    # monotone: once a session is missed (no intermittent misses here), all later ones too
    assert not (np.diff(mask.astype(int), axis=1) > 0).any()
    arm = condition[therapist]
    for a, h in ((0, 0.1), (1, 0.25)):
        present = mask[arm == a].mean(axis=0)
        expected = (1 - h) ** np.arange(6)
        se = np.sqrt(expected * (1 - expected) / (arm == a).sum())
        assert np.all(np.abs(present - expected) <= 4 * se + 1e-12)


def test_mar_dropout_slope_is_recovered() -> None:
    """The log-odds of leaving before session t rise by dropout_wellbeing per point of
    well-being at t - 1: a logistic regression among patients at risk recovers it."""
    import statsmodels.api as sm

    from alliancestats.simulate import dropout_mask

    params = PRNParams(dropout_untrained=0.15, dropout_trained=0.15, dropout_wellbeing=-0.08)
    condition, therapist, _, _, w, observed, extra = _pieces(params, 200, 20000, 5, seed=9)
    mask = dropout_mask(extra, observed, condition[therapist], w, params)
    at_risk = mask[:, :-1]
    left = at_risk & ~mask[:, 1:]
    xw = (w[:, :-1] - params.wellbeing_baseline)[at_risk]
    fit = sm.Logit(left[at_risk].astype(float), sm.add_constant(xw)).fit(disp=0)
    assert abs(fit.params[1] - (-0.08)) < 4 * fit.bse[1]
    assert abs(fit.params[0] - np.log(0.15 / 0.85)) < 4 * fit.bse[0]


@pytest.mark.parametrize("name", ["dropout_trained", "dropout_untrained"])
@pytest.mark.parametrize("value", [1.0, -0.1])
def test_dropout_hazard_is_validated(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{name}.*\[0, 1\)"):
        PRNParams(**{name: value})


def test_dropout_keeps_every_patient() -> None:
    df = simulate_prn(10, 60, 6, params={"dropout_trained": 0.9, "dropout_untrained": 0.9},
                      p_missing=0.5, rng=2)
    assert df["patient"].nunique() == 60


class TestCaseloads:
    def test_given_caseloads(self) -> None:
        loads = [2, 3, 1, 5, 1, 4]
        df = simulate_prn(caseloads=loads, n_sessions=3, rng=3)
        counts = df.groupby("therapist")["patient"].nunique().tolist()
        assert counts == loads
        assert df.groupby("therapist")["condition"].first().sum() == 3
        assert df.attrs["params"]["caseloads"] == loads
        assert df.attrs["params"]["n_patients"] == 16

    def test_same_draws_as_random_caseloads(self) -> None:
        """Caseloads equal to those the default allocation draws reproduce its frame
        exactly: the option changes the caseloads and nothing else."""
        base = simulate_prn(12, 40, 4, rng=8)
        loads = base.groupby("therapist")["patient"].nunique().tolist()
        pd.testing.assert_frame_equal(simulate_prn(caseloads=loads, n_sessions=4, rng=8),
                                      base)

    @pytest.mark.parametrize(
        ("kwargs", "exc", "match"),
        [
            ({"caseloads": [2, 0]}, ValueError, r"caseloads\[1\].*at least 1"),
            ({"caseloads": [2, 1.5]}, TypeError, r"caseloads\[1\]"),
            ({"caseloads": []}, ValueError, "empty"),
            ({"caseloads": "3,3"}, TypeError, "caseloads"),
            ({"caseloads": [2, 2], "n_therapists": 3}, ValueError,
             r"`n_therapists` \(3\) does not match `caseloads` \(2\)"),
            ({"caseloads": [2, 2], "n_patients": 5}, ValueError, "n_patients"),
        ],
    )
    def test_bad_caseloads(self, kwargs: dict[str, object], exc: type[Exception],
                           match: str) -> None:
        with pytest.raises(exc, match=match):
            simulate_prn(**kwargs)  # type: ignore[arg-type]
