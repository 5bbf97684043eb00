"""Box-score synthesis and the Hedges-Olkin / Bushman-Wang vote-counting estimators.

Oracles: hand-computed tallies and binomial tail sums; the equal-n closed form of the
vote-counting MLE (and of its profile-likelihood interval, solved independently on the
scale of the binomial proportion); brute-force likelihood grids written with
``scipy.stats.norm`` (not the module's log-space code); the inverse-variance fixed-effect
estimate; seeded recovery from simulated primary t tests and correlation tests.
"""

from __future__ import annotations

import math
import runpy
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from alliancestats.exceptions import BoundaryFitWarning, DataWarning
from alliancestats.synthesis import (
    BoxScoreResult,
    VerdictRule,
    VoteCountResult,
    box_score,
    plot_box_score,
    vote_count_estimate,
)

Z975 = stats.norm.ppf(0.975)
COUNTS = ["sig_positive", "nonsignificant", "sig_negative"]


# ---------------------------------------------------------------------------------------
# Box score: hand-computed fixture
# ---------------------------------------------------------------------------------------
@pytest.fixture
def findings() -> pd.DataFrame:
    """Made-up homework-review findings; the study-level votes are worked out in comments."""
    rows = [
        # study, outcome, rater, r, p, n
        ("S1", "in-session", "client", 0.35, 0.010, 30),     # sig+ } tie -> ns (+)
        ("S1", "in-session", "therapist", 0.10, 0.400, 30),  # ns+  }
        ("S2", "in-session", "client", 0.28, 0.020, 45),     # sig+
        ("S3", "in-session", "client", -0.05, 0.700, 25),    # ns- -> ns (-)
        ("S4", "in-session", "client", 0.40, 0.001, 60),     # sig+ }
        ("S4", "in-session", "therapist", 0.31, 0.030, 60),  # sig+ } 2 of 3 -> sig+
        ("S4", "in-session", "therapist", -0.02, 0.900, 60),  # ns- }
        ("S5", "in-session", "client", -0.30, 0.040, 20),    # sig-
        ("S1", "session-to-session", "client", 0.20, 0.030, 30),  # sig+
        ("S2", "session-to-session", "client", 0.25, 0.010, 45),  # sig+
        ("S6", "session-to-session", "client", 0.15, 0.200, 80),  # ns+
        ("S7", "session-to-session", "client", 0.33, 0.004, 35),  # sig+
    ]
    return pd.DataFrame(rows, columns=["study", "outcome", "rater", "r", "p", "n"])


def _counts(table: pd.DataFrame, key: object) -> list[int]:
    return [int(v) for v in table.loc[key, [*COUNTS, "votes"]]]


def test_study_level_tally_by_hand(findings: pd.DataFrame) -> None:
    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                    n="n")
    tally = res.tally
    assert res.unit == "study"
    assert list(tally.index) == ["in-session", "session-to-session"]
    assert _counts(tally, "in-session") == [2, 2, 1, 5]
    assert _counts(tally, "session-to-session") == [3, 1, 0, 4]
    np.testing.assert_allclose(tally.loc["in-session", ["pct_sig_positive",
                               "pct_nonsignificant", "pct_sig_negative"]].astype(float),
                               [40.0, 40.0, 20.0])
    # non-significant votes split by observed sign: S1 (+), S3 (-)
    assert tally.loc["in-session", ["ns_positive", "ns_negative"]].tolist() == [1, 1]
    assert tally["studies"].tolist() == [5, 4]
    assert tally["findings"].tolist() == [8, 4]
    # participants: one n per study (30+45+25+60+20; 30+45+80+35)
    assert tally["participants"].tolist() == [180, 190]
    assert tally["verdict"].tolist() == ["inconclusive", "supported"]  # 40% vs 75%
    assert res.n_studies == 7
    assert res.n_findings == 12


def test_finding_level_tally_by_hand(findings: pd.DataFrame) -> None:
    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                    unit="finding")
    assert _counts(res.tally, "in-session") == [4, 3, 1, 8]
    assert _counts(res.tally, "session-to-session") == [3, 1, 0, 4]
    # both tallies are always there, whichever is primary
    pd.testing.assert_frame_equal(res.study_tally, box_score(
        findings, outcome="outcome", effect="r", significant="p", alpha=0.05).tally)
    assert res.to_frame("study")["unit"].eq("study").all()


def test_first_listed_rule(findings: pd.DataFrame) -> None:
    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                    within_study="first")
    # S1 now votes by its first finding (sig+): 3 of 5 = 60% -> supported
    assert _counts(res.tally, "in-session") == [3, 1, 1, 5]
    assert res.tally.loc["in-session", "verdict"] == "supported"


def test_moderator_tally_by_hand(findings: pd.DataFrame) -> None:
    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                    moderator="rater")
    tally = res.tally
    assert tally.index.names == ["outcome", "rater"]
    assert _counts(tally, ("in-session", "client")) == [3, 1, 1, 5]
    # S1: ns; S4: sig+ and ns tie -> ns
    assert _counts(tally, ("in-session", "therapist")) == [0, 2, 0, 2]
    assert _counts(tally, ("session-to-session", "client")) == [3, 1, 0, 4]
    assert tally["verdict"].tolist() == ["supported", "inconclusive", "supported"]


def test_weighted_shares_and_labels(findings: pd.DataFrame) -> None:
    labelled = findings.assign(
        direction=np.where(findings["r"] > 0, "Positive", "-"), sig=findings["p"] < 0.05
    )
    res = box_score(labelled, outcome="outcome", effect="direction", significant="sig",
                    weight="n", n="n")
    row = res.tally.loc["in-session"]
    # vote weights = study n: sig+ S2, S4 (45 + 60), ns S1, S3 (30 + 25), sig- S5 (20)
    np.testing.assert_allclose(
        row[["weighted_pct_sig_positive", "weighted_pct_nonsignificant",
             "weighted_pct_sig_negative"]].astype(float),
        np.array([105, 55, 20]) / 180 * 100,
    )
    assert _counts(res.tally, "in-session") == [2, 2, 1, 5]  # labels == numeric effects


def test_count_tests_by_hand(findings: pd.DataFrame) -> None:
    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05)
    tests = res.tests
    # in-session directions +, +, -, +, - : 3 of 5 -> two-sided sign test p = 1
    assert tests.loc["in-session", "positive_direction"] == 3
    assert tests.loc["in-session", "sign_p_value"] == pytest.approx(1.0)
    # session-to-session: 4 of 4 positive -> 2 * 2^-4
    assert tests.loc["session-to-session", "sign_p_value"] == pytest.approx(0.125)
    # 3 of 4 significant positive vs Bin(4, 0.025): P(X >= 3) = 4 p^3 q + p^4
    p = 0.025
    assert tests.loc["session-to-session", "sig_positive_p_value"] == pytest.approx(
        4 * p**3 * (1 - p) + p**4, rel=1e-10)
    # finding level, in-session: 5 of 8 positive -> 2 * P(X >= 5) = 2 * 93 / 256
    fres = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                     unit="finding")
    assert fres.tests.loc["in-session", "sign_p_value"] == pytest.approx(2 * 93 / 256)


def test_verdict_rule_options() -> None:
    rule = VerdictRule(support=0.6, no_association=1 / 3, min_votes=3)
    assert rule.decide(votes=5, share_positive=0.6, share_negative=0.0) == "supported"
    assert rule.decide(votes=5, share_positive=0.2, share_negative=0.6) == "contradicted"
    assert rule.decide(votes=6, share_positive=2 / 6, share_negative=0.0) == "no association"
    assert rule.decide(votes=5, share_positive=0.4, share_negative=0.0) == "inconclusive"
    assert rule.decide(votes=2, share_positive=1.0, share_negative=0.0) == "too few votes"
    half = VerdictRule(support=0.5)
    assert half.decide(votes=4, share_positive=0.5, share_negative=0.5) == "inconclusive"
    assert "60%" in rule.describe()
    assert "33%" in rule.describe()


def test_custom_rule_and_summary(findings: pd.DataFrame) -> None:
    def any_positive(row: pd.Series) -> str:
        """Supported when any vote is significant positive."""
        return "supported" if row["sig_positive"] > 0 else "not supported"

    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                    rule=any_positive, n="n")
    assert res.verdicts.tolist() == ["supported", "supported"]
    text = str(res.summary())
    assert "any_positive: Supported when any vote" in text
    assert "Tally (finding-level votes)" in text
    assert "Participants       : 295" in text
    assert "Hedges & Olkin, 1980" in text
    assert res._repr_html_().startswith("<div")
    with pytest.raises(AttributeError, match="immutable"):
        res._unit = "finding"  # type: ignore[misc]
    assert "BoxScoreResult: 2 strata, 7 studies" in repr(res)


def test_does_not_mutate_input(findings: pd.DataFrame) -> None:
    before = findings.copy()
    box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05)
    pd.testing.assert_frame_equal(findings, before)


def test_missing_rows_dropped_with_warning(findings: pd.DataFrame) -> None:
    holed = findings.copy()
    holed.loc[0, "p"] = np.nan
    with pytest.warns(DataWarning, match=r"Dropped 1 of 12 rows .*'p': 1"):
        res = box_score(holed, outcome="outcome", effect="r", significant="p", alpha=0.05)
    assert res.dropped_rows == {"p": 1}
    # S1 in-session now votes with its single remaining (ns) finding
    assert _counts(res.tally, "in-session") == [2, 2, 1, 5]
    with pytest.raises(ValueError, match="missing='raise'"):
        box_score(holed, outcome="outcome", effect="r", significant="p", alpha=0.05,
                  missing="raise")


def test_plot_box_score(findings: pd.DataFrame) -> None:
    res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05)
    _fig, ax = plt.subplots()
    out = plot_box_score(res, ax=ax)
    assert out is ax
    assert len(ax.patches) == 3 * 2  # three segments per outcome
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["in-session (k=5)", "session-to-session (k=4)"]
    # segments of one bar add up to 100 %
    widths = np.array([p.get_width() for p in ax.patches]).reshape(3, 2)
    np.testing.assert_allclose(widths.sum(axis=0), [100, 100])
    ax2 = res.plot(percent=False, unit="finding", edgecolor="k")
    assert ax2.get_xlabel() == "votes"
    plt.close("all")
    with pytest.raises(TypeError, match="`result` must be a BoxScoreResult"):
        plot_box_score(findings)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Box score: validation messages
# ---------------------------------------------------------------------------------------
def test_box_score_messages(findings: pd.DataFrame) -> None:
    kw = {"outcome": "outcome", "effect": "r", "significant": "p"}
    with pytest.raises(ValueError, match=r"`significant` column 'p' is numeric .* pass alpha"):
        box_score(findings, **kw)
    with pytest.raises(ValueError, match=r"should hold p-values, but it is boolean"):
        box_score(findings.assign(p=findings["p"] < 0.05), alpha=0.05, **kw)
    with pytest.raises(ValueError, match=r"must be boolean \(True/False\); got dtype .*'yes'"):
        box_score(findings.assign(p="yes"), **kw)
    with pytest.raises(ValueError, match=r"p-values .* must lie in \[0, 1\]; got 1.5"):
        box_score(findings.assign(p=1.5), alpha=0.05, **kw)
    with pytest.raises(ValueError, match=r"unknown direction label\(s\) 'up'.*'positive'"):
        box_score(findings.assign(r="up", p=False), **kw)
    with pytest.raises(ValueError, match=r"`effect` column 'r' is boolean"):
        box_score(findings.assign(r=True, p=False), **kw)
    with pytest.raises(ValueError, match=r"significant but have no direction .* 'S1'"):
        box_score(findings.assign(r=0.0), alpha=0.05, **kw)
    with pytest.raises(ValueError, match=r"`outcome` refers to column 'outcom'.*'outcome'"):
        box_score(findings, outcome="outcom", effect="r", significant="p", alpha=0.05)
    with pytest.raises(ValueError, match=r"`unit` must be one of 'study', 'finding'"):
        box_score(findings, unit="studies", alpha=0.05, **kw)
    with pytest.raises(ValueError, match=r"`alpha` must be strictly between 0 and 1"):
        box_score(findings, alpha=5, **kw)
    with pytest.raises(TypeError, match=r"`studies` must be a pandas DataFrame"):
        box_score([1, 2], **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`significant` and `effect` both name column 'r'"):
        box_score(findings, outcome="outcome", effect="r", significant="r")
    with pytest.raises(TypeError, match=r"`rule` must be a VerdictRule or a callable"):
        box_score(findings, alpha=0.05, rule=0.6, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`n` column 'n' must be positive"):
        box_score(findings.assign(n=0), alpha=0.05, n="n", **kw)


def test_verdict_rule_messages() -> None:
    with pytest.raises(ValueError, match=r"`support` must be a share in \(0, 1\]"):
        VerdictRule(support=1.5)
    with pytest.raises(TypeError, match=r"`contradict` must be a number"):
        VerdictRule(contradict="high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`no_association` \(0.7\) must be below"):
        VerdictRule(no_association=0.7)
    with pytest.raises(ValueError, match=r"`min_votes` must be a positive integer"):
        VerdictRule(min_votes=0)


# ---------------------------------------------------------------------------------------
# Box score: properties
# ---------------------------------------------------------------------------------------
@st.composite
def finding_frames(draw: st.DrawFn) -> pd.DataFrame:
    size = draw(st.integers(1, 25))
    study = draw(st.lists(st.sampled_from(["A", "B", "C", "D", "E"]), min_size=size,
                          max_size=size))
    outcome = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=size, max_size=size))
    effect = draw(st.lists(st.sampled_from([-0.4, -0.1, 0.0, 0.2, 0.5]), min_size=size,
                           max_size=size))
    sig = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    sig = [s and e != 0 for s, e in zip(sig, effect, strict=True)]  # significant => signed
    return pd.DataFrame({"study": study, "outcome": outcome, "effect": effect, "sig": sig})


@settings(max_examples=20, deadline=None)  # three box scores per example
@given(frame=finding_frames(), seed=st.integers(0, 2**16))
def test_tally_properties(frame: pd.DataFrame, seed: int) -> None:
    res = box_score(frame, outcome="outcome", effect="effect", significant="sig")
    study = res.study_tally
    # every (study, outcome) pair casts exactly one vote, every finding one finding-vote
    assert (study[COUNTS].sum(axis=1) == study["votes"]).all()
    assert study["votes"].sum() == len(frame.drop_duplicates(["study", "outcome"]))
    assert res.finding_tally["votes"].sum() == len(frame)
    np.testing.assert_allclose(study[[f"pct_{c}" for c in COUNTS]].sum(axis=1), 100)
    # row order does not matter (majority rule)
    shuffled = frame.sample(frac=1, random_state=seed)
    again = box_score(shuffled, outcome="outcome", effect="effect", significant="sig")
    for unit in ("study", "finding"):
        pd.testing.assert_frame_equal(res.to_frame(unit), again.to_frame(unit))
    # with one finding per study and outcome the two tallies coincide
    single = frame.drop_duplicates(["study", "outcome"])
    one = box_score(single, outcome="outcome", effect="effect", significant="sig")
    pd.testing.assert_frame_equal(one.study_tally[COUNTS], one.finding_tally[COUNTS])


_cells = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                   st.sampled_from(["+", "-", "null", "up", "", "S1"]))


@settings(max_examples=60, deadline=None)
@given(
    columns=st.dictionaries(st.sampled_from(["a", "b", "c", "study"]),
                            st.lists(_cells, min_size=1, max_size=6), min_size=1, max_size=4),
    roles=st.lists(st.sampled_from(["a", "b", "c", "study", "zz"]), min_size=4, max_size=4),
    alpha=st.sampled_from([None, 0.05, 2.0]),
    unit=st.sampled_from(["study", "finding", "x"]),
)
def test_box_score_validation_is_total(columns: dict[str, list[object]], roles: list[str],
                                       alpha: float | None, unit: str) -> None:
    size = min(len(v) for v in columns.values())
    frame = pd.DataFrame({k: pd.Series(v[:size], dtype=object) for k, v in columns.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = box_score(frame, outcome=roles[0], effect=roles[1], significant=roles[2],
                            moderator=roles[3] if roles[3] != "zz" else None, alpha=alpha,
                            unit=unit)
        except (TypeError, ValueError):
            return
    assert isinstance(res, BoxScoreResult)


# ---------------------------------------------------------------------------------------
# Vote-counting estimator
# ---------------------------------------------------------------------------------------
def _votes(n_pos: int, k: int, **sizes: float) -> pd.DataFrame:
    return pd.DataFrame({"sig": [True] * n_pos + [False] * (k - n_pos),
                         **{name: [value] * k for name, value in sizes.items()}})


def test_equal_n_closed_form() -> None:
    k, n_pos, ntilde = 20, 7, 10.0  # n1 = n2 = 20
    res = vote_count_estimate(_votes(n_pos, k, n1=20, n2=20), significant="sig", n1="n1",
                              n2="n2")
    p_hat = n_pos / k
    # Hedges & Olkin (1985): delta = (z_{1-a/2} + Phi^-1(p_hat)) / sqrt(n~)
    assert res.estimate == pytest.approx((Z975 + stats.norm.ppf(p_hat)) / math.sqrt(ntilde),
                                         abs=1e-9)
    # Wald SE by the delta method on the binomial proportion
    slope = math.sqrt(ntilde) * stats.norm.pdf(stats.norm.ppf(p_hat))
    assert res.std_error == pytest.approx(math.sqrt(p_hat * (1 - p_hat) / k) / slope, rel=1e-7)
    # profile CI: the binomial likelihood-ratio interval for p, mapped to delta
    def ll_p(p: float) -> float:
        return n_pos * math.log(p) + (k - n_pos) * math.log1p(-p)
    cut = ll_p(p_hat) - stats.chi2.ppf(0.95, 1) / 2
    p_lo = optimize.brentq(lambda p: ll_p(p) - cut, 1e-9, p_hat)
    p_hi = optimize.brentq(lambda p: ll_p(p) - cut, p_hat, 1 - 1e-9)
    to_delta = lambda p: (Z975 + stats.norm.ppf(p)) / math.sqrt(ntilde)  # noqa: E731
    assert res.conf_low == pytest.approx(to_delta(p_lo), abs=1e-8)
    assert res.conf_high == pytest.approx(to_delta(p_hi), abs=1e-8)
    # observed information equals expected information at the MLE for equal n
    h = 1e-4
    ll = res.loglik([res.estimate - h, res.estimate, res.estimate + h])
    observed = -(ll[0] - 2 * ll[1] + ll[2]) / h**2
    assert 1 / math.sqrt(observed) == pytest.approx(res.std_error, rel=1e-5)
    assert res.k == k
    assert res.n_positive == n_pos
    assert res.boundary is None


def test_closed_forms_direction_and_correlation() -> None:
    k, n_pos = 12, 9
    res = vote_count_estimate(_votes(n_pos, k, n=40).assign(e=[1] * 9 + [-1] * 3),
                              significant=None, effect="e", n="n", direction_only=True)
    # direction only: P(positive) = Phi(delta sqrt(n~)), n~ = 40 / 4 = 10
    assert res.estimate == pytest.approx(stats.norm.ppf(n_pos / k) / math.sqrt(10), abs=1e-9)
    res_r = vote_count_estimate(_votes(5, k, n=53), significant="sig", n="n", metric="r")
    zeta = (Z975 + stats.norm.ppf(5 / k)) / math.sqrt(50)
    assert res_r.theta == pytest.approx(zeta, abs=1e-9)
    assert res_r.estimate == pytest.approx(math.tanh(zeta), abs=1e-9)
    assert res_r.std_error == pytest.approx((1 - math.tanh(zeta) ** 2) * res_r.theta_se)
    assert res_r.profile()["rho"].between(-1, 1).all()


def _grid_argmax(loglik: object, lo: float = -1.0, hi: float = 1.5) -> float:
    grid = np.linspace(lo, hi, 250_001)  # step 1e-5
    with np.errstate(divide="ignore"):  # log(0) = -inf far from the maximum is fine
        values = loglik(grid)  # type: ignore[operator]
    assert not np.isnan(values).any()
    return float(grid[np.argmax(values)])


def test_mle_matches_brute_force_grid() -> None:
    rng = np.random.default_rng(11)
    n1 = rng.integers(8, 80, 15)
    n2 = rng.integers(8, 80, 15)
    sig = rng.random(15) < 0.4
    res = vote_count_estimate(pd.DataFrame({"sig": sig, "a": n1, "b": n2}),
                              significant="sig", n1="a", n2="b")
    w = np.sqrt(n1 * n2 / (n1 + n2))

    def loglik(grid: np.ndarray) -> np.ndarray:
        p = stats.norm.cdf(grid[:, None] * w - Z975)
        return np.where(sig, np.log(p), np.log1p(-p)).sum(axis=1)

    assert res.estimate == pytest.approx(_grid_argmax(loglik), abs=2e-5)
    np.testing.assert_allclose(res.loglik(np.array([-0.3, 0.1, 0.6])),
                               loglik(np.array([-0.3, 0.1, 0.6])), rtol=1e-10)
    # the profile bounds sit where the deviance equals the chi-square(1) quantile
    dev = 2 * (res.llf - res.loglik([res.conf_low, res.conf_high]))
    np.testing.assert_allclose(dev, stats.chi2.ppf(0.95, 1), rtol=1e-8)


def test_three_category_matches_grid() -> None:
    rng = np.random.default_rng(5)
    n = rng.integers(20, 150, 18)
    code = rng.choice([1, 0, -1], size=18, p=[0.4, 0.45, 0.15])
    frame = pd.DataFrame({"sig": code != 0, "e": np.where(code == 0, 0.1, code), "n": n})
    res = vote_count_estimate(frame, significant="sig", effect="e", n="n", metric="r",
                              three_category=True)
    w = np.sqrt(n - 3)

    def loglik(grid: np.ndarray) -> np.ndarray:
        a = grid[:, None] * w
        pos, neg = stats.norm.sf(Z975 - a), stats.norm.cdf(-Z975 - a)
        ns = stats.norm.cdf(Z975 - a) - stats.norm.cdf(-Z975 - a)
        prob = np.where(code == 1, pos, np.where(code == -1, neg, ns))
        return np.log(prob).sum(axis=1)

    assert res.theta == pytest.approx(_grid_argmax(loglik, -0.5, 0.5), abs=1e-5)
    # two-category counting of the same data ignores the significant negatives
    two = vote_count_estimate(frame, significant="sig", effect="e", n="n", metric="r")
    assert two.n_positive == int((code == 1).sum())
    assert two.theta > res.theta


def test_known_behaviour_monotone() -> None:
    # more significant positives -> larger estimate (fixed sizes)
    est = [vote_count_estimate(_votes(m, 10, n=60), significant="sig", n="n").estimate
           for m in range(1, 10)]
    assert np.all(np.diff(est) > 0)
    # same share of significant results from larger studies -> smaller effect
    est_n = [vote_count_estimate(_votes(3, 10, n=n), significant="sig", n="n").estimate
             for n in (20, 40, 80, 160)]
    assert np.all(np.diff(est_n) < 0)


def test_all_significant_boundary() -> None:
    k = 6
    with pytest.warns(BoundaryFitWarning, match=r"All 6 votes are positive.*lower bound"):
        res = vote_count_estimate(_votes(k, k, n=40), significant="sig", n="n")
    assert res.estimate == math.inf
    assert math.isnan(res.std_error)
    assert res.conf_high == math.inf
    assert res.boundary == "upper"
    # one-sided bound: k log Phi(delta sqrt(n~) - c) = -z_0.95^2 / 2, n~ = 10
    target = math.exp(-stats.norm.ppf(0.95) ** 2 / (2 * k))
    assert res.conf_low == pytest.approx((Z975 + stats.norm.ppf(target)) / math.sqrt(10),
                                         abs=1e-8)
    assert res.warnings
    assert "one-sided 95%" in res.warnings[0]
    assert np.isfinite(res.profile()["loglik"]).all()


def test_none_significant_boundary() -> None:
    k = 8
    with pytest.warns(BoundaryFitWarning, match=r"three_category=True"):
        res = vote_count_estimate(_votes(0, k, n=40), significant="sig", n="n")
    assert res.estimate == -math.inf
    assert res.conf_low == -math.inf
    target = 1 - math.exp(-stats.norm.ppf(0.95) ** 2 / (2 * k))
    assert res.conf_high == pytest.approx((Z975 + stats.norm.ppf(target)) / math.sqrt(10),
                                          abs=1e-8)
    # with three categories, all non-significant is an interior estimate of zero
    frame = _votes(0, k, n=40).assign(e=0.1)
    three = vote_count_estimate(frame, significant="sig", effect="e", n="n",
                                three_category=True)
    assert three.estimate == pytest.approx(0.0, abs=1e-10)
    assert three.boundary is None


def test_bushman_wang_effect_sizes_only_is_inverse_variance() -> None:
    d = np.array([0.2, 0.5, 0.1, 0.35, 0.6])
    v = np.array([0.04, 0.09, 0.02, 0.05, 0.12])
    res = vote_count_estimate(pd.DataFrame({"d": d, "v": v, "sig": np.nan}),
                              significant="sig", effect_size="d", variance="v")
    est = np.sum(d / v) / np.sum(1 / v)
    se = 1 / math.sqrt(np.sum(1 / v))
    assert res.estimate == pytest.approx(est, abs=1e-10)
    assert res.std_error == pytest.approx(se, rel=1e-10)
    # quadratic log-likelihood: profile and Wald intervals coincide
    ci = res.conf_int()
    assert list(ci.columns) == ["conf_low", "conf_high"]
    assert list(ci.index) == ["delta"]
    assert ci.iloc[0].to_numpy() == pytest.approx([est - Z975 * se, est + Z975 * se], abs=1e-8)
    assert res.conf_int(kind="wald").iloc[0].to_numpy() == pytest.approx(
        ci.iloc[0].to_numpy(), abs=1e-8)
    assert res.method.startswith("inverse-variance")


def test_bushman_wang_combination_matches_grid() -> None:
    frame = pd.DataFrame({
        "n": [40, 60, 24, 80, 50, 36, 100],
        "sig": [True, False, False, True, None, None, None],
        "d": [np.nan, np.nan, np.nan, np.nan, 0.42, 0.15, 0.30],
    })
    res = vote_count_estimate(frame, significant="sig", n="n", effect_size="d")
    assert (res.k, res.k_votes, res.k_effect_sizes) == (7, 4, 3)
    nt = frame["n"].to_numpy() / 4
    vc, es = slice(0, 4), slice(4, 7)
    d = frame["d"].to_numpy()[es]
    v = 1 / nt[es] + d**2 / (2 * frame["n"].to_numpy()[es])  # large-sample var of d
    x = np.array([1, 0, 0, 1])

    def loglik(grid: np.ndarray) -> np.ndarray:
        p = stats.norm.cdf(grid[:, None] * np.sqrt(nt[vc]) - Z975)
        votes = np.where(x == 1, np.log(p), np.log1p(-p)).sum(axis=1)
        return votes - ((d - grid[:, None]) ** 2 / (2 * v)).sum(axis=1)

    assert res.estimate == pytest.approx(_grid_argmax(loglik), abs=2e-5)
    # variance given explicitly = variance computed from n
    given = vote_count_estimate(frame.assign(v=np.r_[[np.nan] * 4, v]), significant="sig",
                                n="n", effect_size="d", variance="v")
    assert given.estimate == pytest.approx(res.estimate, abs=1e-12)
    assert "Bushman-Wang" in res.method


def test_recovers_effect_from_simulated_t_tests() -> None:
    rng = np.random.default_rng(2024)
    delta, k = 0.4, 300
    n1 = rng.integers(10, 60, k)
    n2 = rng.integers(10, 60, k)
    sig = np.empty(k, dtype=bool)
    for i in range(k):
        t, p = stats.ttest_ind(rng.normal(delta, 1, n1[i]), rng.normal(0, 1, n2[i]))
        sig[i] = (p < 0.05) and (t > 0)
    res = vote_count_estimate(pd.DataFrame({"sig": sig, "n1": n1, "n2": n2}),
                              significant="sig", n1="n1", n2="n2")
    assert abs(res.estimate - delta) < 3 * res.std_error
    assert res.conf_low < delta < res.conf_high


def test_recovers_correlation_from_simulated_studies() -> None:
    rng = np.random.default_rng(7)
    rho, k = 0.25, 300
    n = rng.integers(20, 120, k)
    sig = np.empty(k, dtype=bool)
    for i in range(k):
        xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n[i])
        r, p = stats.pearsonr(xy[:, 0], xy[:, 1])
        sig[i] = (p < 0.05) and (r > 0)
    res = vote_count_estimate(pd.DataFrame({"sig": sig, "n": n}), significant="sig", n="n",
                              metric="r")
    assert abs(res.estimate - rho) < 3 * res.std_error


def test_vote_result_surface() -> None:
    res = vote_count_estimate(_votes(4, 10, n=50), significant="sig", n="n")
    assert isinstance(res, VoteCountResult)
    frame = res.to_frame()
    assert list(frame.columns) == ["term", "estimate", "std_error", "statistic", "p_value",
                                   "conf_low", "conf_high", "k", "method"]
    # LR test of delta = 0
    lr = 2 * (res.llf - res.loglik(0.0)[0])
    assert res.p_value == pytest.approx(stats.chi2.sf(lr, 1))
    text = str(res.summary())
    assert "Hedges-Olkin vote counting" in text
    assert "profile likelihood" in text
    assert res._repr_html_().startswith("<div")
    with pytest.raises(AttributeError):
        res.estimate = 0.0  # type: ignore[misc]


def test_vote_count_messages() -> None:
    frame = _votes(3, 6, n=40).assign(e=0.2, d=0.3)
    with pytest.raises(ValueError, match=r"needs study sizes: give `n` \(total\) or `n1`"):
        vote_count_estimate(frame, significant="sig")
    with pytest.raises(ValueError, match=r"Give both `n1` and `n2`"):
        vote_count_estimate(frame, significant="sig", n1="n")
    with pytest.raises(ValueError, match=r"`n` column 'n' must be larger than 3"):
        vote_count_estimate(frame.assign(n=3), significant="sig", n="n", metric="r")
    with pytest.raises(ValueError, match=r"`direction_only=True` needs `effect`"):
        vote_count_estimate(frame, significant="sig", n="n", direction_only=True)
    with pytest.raises(ValueError, match=r"Choose one of `direction_only` and"):
        vote_count_estimate(frame, significant="sig", n="n", effect="e",
                            direction_only=True, three_category=True)
    with pytest.raises(ValueError, match=r"`significant` column 'n' is numeric"):
        vote_count_estimate(frame, significant="n", n="n")
    with pytest.raises(ValueError, match=r"`metric` must be one of 'd', 'r'"):
        vote_count_estimate(frame, significant="sig", n="n", metric="z")
    with pytest.raises(ValueError, match=r"correlations in \(-1, 1\)"):
        vote_count_estimate(frame.assign(d=1.2), significant="sig", n="n", effect_size="d",
                            metric="r")
    with pytest.raises(TypeError, match=r"`significant` must name the boolean column"):
        vote_count_estimate(frame, significant=None, n="n")
    with pytest.raises(ValueError, match=r"`ci` must be strictly between 0 and 1"):
        vote_count_estimate(frame, significant="sig", n="n", ci=95)
    holed = frame.astype({"n": float})
    holed.loc[0, "n"] = np.nan
    with pytest.warns(DataWarning, match=r"Dropped 1 of 6 studies .*'n': 1"):
        res = vote_count_estimate(holed, significant="sig", n="n")
    assert res.k == 5
    assert dict(res.dropped_rows) == {"n": 1}


@settings(max_examples=40, deadline=None)
@given(
    sig=st.lists(st.sampled_from([True, False, None, 1, "yes"]), min_size=1, max_size=6),
    n=st.lists(st.one_of(st.integers(-2, 80), st.floats(allow_nan=True)), min_size=1,
               max_size=6),
    metric=st.sampled_from(["d", "r", "x"]),
    use_es=st.booleans(),
)
def test_vote_count_validation_is_total(sig: list[object], n: list[object], metric: str,
                                        use_es: bool) -> None:
    size = min(len(sig), len(n))
    frame = pd.DataFrame({"sig": pd.Series(sig[:size], dtype=object),
                          "n": pd.Series(n[:size], dtype=object), "d": 0.2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = vote_count_estimate(frame, significant="sig", n="n", metric=metric,
                                      effect_size="d" if use_es else None)
        except (TypeError, ValueError):
            return
    assert isinstance(res, VoteCountResult)


def test_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = Path(__file__).resolve().parents[1] / "examples" / "vote_counting_review.py"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runpy.run_path(str(path), run_name="__main__")
    plt.close("all")


def test_synthesis_is_a_package_with_the_public_names() -> None:
    import alliancestats
    from alliancestats import plotting, synthesis

    assert synthesis.__path__  # a package: votes, box score, estimator modules
    assert plot_box_score is plotting.plot_box_score is alliancestats.plot_box_score
    assert plot_box_score.__module__ == "alliancestats.plotting"
    assert BoxScoreResult is alliancestats.BoxScoreResult


def test_vote_count_result_speaks_the_results_vocabulary() -> None:
    studies = pd.DataFrame({"sig": [True, False, False, True, False, True],
                            "n": [40, 50, 60, 80, 30, 90]})
    res = vote_count_estimate(studies, significant="sig", n="n")
    assert res.params.to_dict() == {"delta": res.estimate}
    assert res.bse.to_dict() == {"delta": res.std_error}
    assert res.pvalues.to_dict() == {"delta": res.p_value}
    stored = res.conf_int()
    assert stored.loc["delta"].tolist() == [res.conf_low, res.conf_high]
    assert res.conf_int(0.05).equals(stored)
    wide, narrow = res.conf_int(0.01).loc["delta"], res.conf_int(0.2).loc["delta"]
    assert wide["conf_low"] < stored.loc["delta", "conf_low"] < narrow["conf_low"]
    assert narrow["conf_high"] < stored.loc["delta", "conf_high"] < wide["conf_high"]
    # the 80% profile interval: where the deviance is chi2_1(0.8)
    dev = 2 * (res.llf - res.loglik([narrow["conf_low"], narrow["conf_high"]]))
    assert dev == pytest.approx([stats.chi2.ppf(0.8, 1)] * 2, abs=1e-6)
    wald = res.conf_int(0.2, kind="wald").loc["delta"]
    z = stats.norm.ppf(0.9)
    assert wald.tolist() == pytest.approx([res.estimate - z * res.std_error,
                                           res.estimate + z * res.std_error])
    with pytest.raises(ValueError, match="`alpha`"):
        res.conf_int(1.5)


def test_vote_count_result_r_metric_interval_is_back_transformed() -> None:
    studies = pd.DataFrame({"sig": [True, False, True, True], "n": [40, 50, 60, 80]})
    res = vote_count_estimate(studies, significant="sig", n="n", metric="r")
    ci = res.conf_int(0.1).loc["rho"]
    assert -1 < ci["conf_low"] < res.estimate < ci["conf_high"] < 1


def test_vote_count_result_old_names_warn() -> None:
    studies = pd.DataFrame({"sig": [True, False, False, True], "n": [40, 50, 60, 80]})
    res = vote_count_estimate(studies, significant="sig", n="n")
    with pytest.warns(FutureWarning, match="std_error"):
        assert res.se == res.std_error
    with pytest.warns(FutureWarning, match="kind="):
        old = res.conf_int("wald")
    assert old.loc["delta"].tolist() == [res.wald_low, res.wald_high]


def test_vote_count_estimate_with_a_multiindex() -> None:
    index = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1), ("c", 1)],
                                      names=["study", "measure"])
    studies = pd.DataFrame({"sig": [True, False, True, False], "n": [40, 50, 60, 70],
                            "dir": [1, -1, 1, 1]}, index=index)
    flat = studies.reset_index(drop=True)
    res = vote_count_estimate(studies, significant="sig", n="n", effect="dir")
    ref = vote_count_estimate(flat, significant="sig", n="n", effect="dir")
    assert res.estimate == ref.estimate
    bad = studies.assign(dir=[1, 0, 1, 1], sig=[True, True, False, False])
    with pytest.raises(ValueError, match=r"no direction.*\('a', 2\)"):
        vote_count_estimate(bad, significant="sig", n="n", effect="dir")
