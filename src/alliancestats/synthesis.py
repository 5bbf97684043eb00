"""Box-score (vote-counting) synthesis and vote-counting estimators of a common effect.

Two layers, as in a systematic review of psychotherapy process research:

* :func:`box_score` tallies, for each outcome (and moderator level), how many studies found
  a significant positive, a non-significant or a significant negative association, gives a
  verdict by an explicit rule the user can read and change (:class:`VerdictRule`), and adds
  two tests on the counts that do have a sampling model: the sign test and the
  significance-count (binomial) test.
* :func:`vote_count_estimate` turns the same votes into a maximum-likelihood estimate of a
  common standardised effect (Hedges & Olkin, 1980, 1985), optionally combined with the
  studies that report an effect size and its variance (Bushman & Wang, 1995, 1996).

Why both: a raw box score ignores sample size and effect magnitude. When the primary
studies have power below one half, the share of significant results *falls* towards zero as
studies accumulate, even though the true effect is not zero (Hedges & Olkin, 1980), so
"most studies were non-significant" is weak evidence of "no effect". The vote-counting
estimator models exactly this: the probability that a study of size n is significant is a
known function of the common effect and n.

References
----------
.. [1] Hedges, L. V., & Olkin, I. (1980). Vote-counting methods in research synthesis.
   *Psychological Bulletin*, 88(2), 359-369.
.. [2] Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*, ch. 4.
   Academic Press.
.. [3] Bushman, B. J., & Wang, M. C. (1995). A procedure for combining sample correlation
   coefficients and vote counts to obtain an estimate and a confidence interval for the
   population correlation coefficient. *Psychological Bulletin*, 117(3), 530-546.
.. [4] Bushman, B. J., & Wang, M. C. (1996). A procedure for combining sample standardized
   mean differences and vote counts to estimate the population standardized mean
   difference in fixed effects models. *Psychological Methods*, 1(1), 66-80.
.. [5] Light, R. J., & Smith, P. V. (1971). Accumulating evidence: procedures for resolving
   contradictions among different research studies. *Harvard Educational Review*, 41,
   429-471.
.. [6] Sallis, J. F., Prochaska, J. J., & Taylor, W. C. (2000). A review of correlates of
   physical activity of children and adolescents. *Medicine & Science in Sports &
   Exercise*, 32(5), 963-975.
.. [7] Ryum, T., Bennion, M., & Kazantzis, N. (2023). Integrating between-session homework
   in psychotherapy: a systematic review of immediate in-session and intermediate
   outcomes. *Psychotherapy*, 60(3). https://doi.org/10.1037/pst0000488
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ._validation import (
    as_column_list,
    check_choice,
    handle_missing,
    require_columns,
    require_frame,
    require_numeric,
)
from .exceptions import BoundaryFitWarning, DataWarning
from .results import Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CATEGORIES",
    "BoxScoreResult",
    "VerdictRule",
    "VoteCountResult",
    "box_score",
    "plot_box_score",
    "vote_count_estimate",
]

#: The three vote categories, in the order used by every table.
CATEGORIES: tuple[str, str, str] = ("sig_positive", "nonsignificant", "sig_negative")

_DIRECTION_LABELS: dict[str, int] = {
    "positive": 1, "pos": 1, "+": 1,
    "negative": -1, "neg": -1, "-": -1, "\u2212": -1,
    "null": 0, "none": 0, "zero": 0, "0": 0,
}
_UNITS = ("study", "finding")
_WITHIN = ("majority", "first")
_LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------
# Verdict rule
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerdictRule:
    """Threshold rule that turns a tally into a verdict.

    For each stratum (outcome, or outcome x moderator level) with ``votes`` votes, let
    ``share+`` and ``share-`` be the shares of significant-positive and significant-negative
    votes (weighted shares when :func:`box_score` got ``weight``). The verdict is, in order:

    1. ``"too few votes"`` if ``votes < min_votes``;
    2. ``"supported"`` if ``share+ >= support`` (and ``share+ > share-``);
    3. ``"contradicted"`` if ``share- >= contradict`` (and ``share- > share+``);
    4. ``"no association"`` if ``no_association`` is set and
       ``max(share+, share-) <= no_association``;
    5. ``"inconclusive"`` otherwise.

    Parameters
    ----------
    support : float
        Share of significant-positive votes needed for "supported" (default 0.6).
    contradict : float or None
        Share of significant-negative votes needed for "contradicted"; None uses
        ``support``.
    no_association : float or None
        If set (e.g. 1/3), strata where neither significant direction exceeds this share are
        called "no association" instead of "inconclusive".
    min_votes : int
        Fewer votes than this give "too few votes".

    Notes
    -----
    Box-score reviews use different cut-offs, and the exact rule of Ryum, Bennion and
    Kazantzis (2023) is not verified here, so the rule is a parameter and is printed in
    every summary. The default (60 %) follows the widely used coding of Sallis, Prochaska
    and Taylor (2000): 0-33 % of studies supporting an association -> none, 34-59 % ->
    inconsistent, >= 60 % -> an association in that direction, which is
    ``VerdictRule(support=0.6, no_association=1/3)`` (their band limits are quoted from
    secondary descriptions). Other reviews use a simple majority (``support=0.5``) or two
    thirds (``support=2/3``). Any callable that takes a tally row (a Series with the
    columns of :attr:`BoxScoreResult.tally`) and returns a string can be used instead.

    Examples
    --------
    >>> rule = VerdictRule(support=2 / 3, no_association=1 / 3, min_votes=3)
    >>> rule.decide(votes=6, share_positive=0.5, share_negative=0.0)
    'inconclusive'
    >>> rule.decide(votes=6, share_positive=4 / 6, share_negative=0.0)
    'supported'
    """

    support: float = 0.6
    contradict: float | None = None
    no_association: float | None = None
    min_votes: int = 1

    def __post_init__(self) -> None:
        for name in ("support", "contradict"):
            value = getattr(self, name)
            if name == "contradict" and value is None:
                continue
            _check_share(value, name, low_open=True)
        if self.no_association is not None:
            _check_share(self.no_association, "no_association", low_open=False)
            if self.no_association >= min(self.support, self._contradict):
                raise ValueError(
                    f"`no_association` ({self.no_association!r}) must be below `support` and "
                    f"`contradict` ({self.support!r}, {self._contradict!r})."
                )
        if (
            isinstance(self.min_votes, bool)
            or not isinstance(self.min_votes, int | np.integer)
            or self.min_votes < 1
        ):
            raise ValueError(f"`min_votes` must be a positive integer; got {self.min_votes!r}.")

    @property
    def _contradict(self) -> float:
        return self.support if self.contradict is None else self.contradict

    def decide(self, *, votes: float, share_positive: float, share_negative: float) -> str:
        """Verdict for one stratum from its number of votes and significant shares."""
        tol = 1e-12  # 3 of 5 votes must meet a 0.6 threshold despite rounding
        if votes < self.min_votes:
            return "too few votes"
        if share_positive >= self.support - tol and share_positive > share_negative:
            return "supported"
        if share_negative >= self._contradict - tol and share_negative > share_positive:
            return "contradicted"
        if (
            self.no_association is not None
            and max(share_positive, share_negative) <= self.no_association + tol
        ):
            return "no association"
        return "inconclusive"

    def __call__(self, row: pd.Series | Mapping[str, Any]) -> str:
        """Verdict for a tally row (uses weighted shares when the row has them)."""
        prefix = "weighted_pct_" if "weighted_pct_sig_positive" in row else "pct_"
        pos = float(row[prefix + "sig_positive"]) / 100
        neg = float(row[prefix + "sig_negative"]) / 100
        if math.isnan(pos) or math.isnan(neg):
            return "inconclusive"
        return self.decide(votes=float(row["votes"]), share_positive=pos, share_negative=neg)

    def describe(self) -> str:
        """The rule in words (printed in summaries)."""
        text = (
            f"supported if >= {self.support:.0%} of votes are significant positive; "
            f"contradicted if >= {self._contradict:.0%} are significant negative; "
        )
        if self.no_association is not None:
            text += (
                f"no association if neither exceeds {self.no_association:.0%}; "
            )
        text += "otherwise inconclusive"
        if self.min_votes > 1:
            text += f"; fewer than {self.min_votes} votes: too few votes"
        return text


def _check_share(value: Any, name: str, *, low_open: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a number between 0 and 1; got {value!r}.")
    ok = (0 < value <= 1) if low_open else (0 <= value < 1)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1)"
        raise ValueError(f"`{name}` must be a share in {interval}; got {value!r}.")


DEFAULT_RULE = VerdictRule()


def _describe_rule(rule: Callable[[pd.Series], str]) -> str:
    if isinstance(rule, VerdictRule):
        return rule.describe()
    doc = (getattr(rule, "__doc__", None) or "").strip().splitlines()
    name = getattr(rule, "__name__", type(rule).__name__)
    return f"user-supplied rule {name}" + (f": {doc[0]}" if doc else "")


# ---------------------------------------------------------------------------------------
# Column parsing shared by box_score and vote_count_estimate
# ---------------------------------------------------------------------------------------
def _check_level(value: Any, name: str) -> float:
    """A probability strictly between 0 and 1 (alpha, confidence level)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a number between 0 and 1; got {value!r}.")
    if not 0 < float(value) < 1:
        raise ValueError(f"`{name}` must be strictly between 0 and 1; got {value!r}.")
    return float(value)


def _single_column(value: Any, name: str, *, required: bool) -> Hashable | None:
    cols = as_column_list(value, name)
    if not cols:
        if required:
            raise TypeError(f"`{name}` must name a column of `studies`; got None.")
        return None
    if len(cols) != 1:
        raise TypeError(f"`{name}` must name one column; got {cols!r}.")
    return cols[0]


def _show(values: Any, limit: int = 3) -> str:
    """A few distinct values for a message, as plain Python reprs (no np.float64(...))."""
    items = pd.unique(np.asarray(values, dtype=object))[:limit]
    return ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in items)


def _valid_labels() -> str:
    return ", ".join(repr(k) for k in _DIRECTION_LABELS)


def _directions(values: pd.Series, role: str) -> np.ndarray:
    """Direction (+1, 0, -1) of each finding, from a numeric effect or a label."""
    col = values.name
    if pd.api.types.is_bool_dtype(values):
        raise ValueError(
            f"`{role}` column {col!r} is boolean; give the effect (numeric, its sign is the "
            f"direction) or direction labels ({_valid_labels()})."
        )
    numeric = pd.to_numeric(values, errors="coerce") if values.dtype == object else values
    if pd.api.types.is_numeric_dtype(numeric) and not pd.api.types.is_complex_dtype(numeric):
        x = np.asarray(numeric, dtype=float)
        if not np.isnan(x).any():
            return np.sign(x).astype(int)
    labels = values.astype(str).str.strip().str.lower()
    mapped = labels.map(_DIRECTION_LABELS)
    unknown = pd.unique(values[mapped.isna().to_numpy()])
    if len(unknown):
        shown = _show(unknown, 5)
        raise ValueError(
            f"`{role}` column {col!r} has unknown direction label(s) {shown}. Valid labels "
            f"(case-insensitive): {_valid_labels()}; or give a numeric effect whose sign is "
            f"the direction."
        )
    return mapped.to_numpy(dtype=int)


def _is_boolean(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    if values.dtype == object:
        return all(isinstance(v, bool | np.bool_) for v in values)
    return False


def _significance(values: pd.Series, alpha: float | None, role: str = "significant") -> np.ndarray:
    """Boolean significance of each finding (booleans as given, or p < alpha)."""
    col = values.name
    if alpha is None:
        if _is_boolean(values):
            return values.to_numpy(dtype=bool)
        if pd.api.types.is_numeric_dtype(values):
            raise ValueError(
                f"`{role}` column {col!r} is numeric (dtype {values.dtype}), not boolean. If it "
                f"holds p-values, pass alpha=0.05 (p < alpha counts as significant); if it "
                f"holds 0/1 codes, convert it with .astype(bool)."
            )
        examples = _show(values)
        raise ValueError(
            f"`{role}` column {col!r} must be boolean (True/False); got dtype {values.dtype} "
            f"(e.g. {examples}). Map it first, e.g. studies[{col!r}].map({{'yes': True, "
            f"'no': False}})."
        )
    if _is_boolean(values):
        raise ValueError(
            f"`alpha` was given, so `{role}` column {col!r} should hold p-values, but it is "
            f"boolean. Drop `alpha` to use the booleans as they are."
        )
    require_numeric(values.to_frame(), {role: col})
    p = values.to_numpy(dtype=float)
    if ((p < 0) | (p > 1)).any():
        bad = _show(p[(p < 0) | (p > 1)])
        raise ValueError(
            f"`{role}` column {col!r} holds p-values (alpha={alpha}), which must lie in [0, 1]; "
            f"got {bad}."
        )
    return p < alpha


def _check_sig_direction(sig: np.ndarray, direction: np.ndarray, study: pd.Series) -> None:
    bad = sig & (direction == 0)
    if bad.any():
        examples = _show(study[bad])
        raise ValueError(
            f"{int(bad.sum())} finding(s) are significant but have no direction (effect 0 or "
            f"label 'null'), e.g. in {examples}. Give the sign of the significant effect."
        )


# ---------------------------------------------------------------------------------------
# Box score
# ---------------------------------------------------------------------------------------
def _box_roles(**roles: Any) -> dict[str, Hashable | None]:
    required = {"study", "outcome", "effect", "significant"}
    cols = {
        role: _single_column(spec, role, required=role in required)
        for role, spec in roles.items()
    }
    seen: dict[Hashable, str] = {}
    for role, col in cols.items():
        if col is None:
            continue
        # weighting votes by sample size is natural: `weight` and `n` may share a column.
        if col in seen and {role, seen[col]} != {"weight", "n"}:
            raise ValueError(
                f"`{role}` and `{seen[col]}` both name column {col!r}; each role needs its own "
                f"column."
            )
        seen.setdefault(col, role)
    return cols


def _classify(data: pd.DataFrame, roles: Mapping[str, Hashable | None],
              alpha: float | None) -> pd.DataFrame:
    """One row per finding: stratum keys, study, category, observed direction."""
    direction = _directions(data[roles["effect"]], "effect")
    sig = _significance(data[roles["significant"]], alpha)
    _check_sig_direction(sig, direction, data[roles["study"]])
    category = np.where(
        sig, np.where(direction > 0, CATEGORIES[0], CATEGORIES[2]), CATEGORIES[1]
    )
    out = pd.DataFrame(
        {
            "outcome": data[roles["outcome"]].to_numpy(),
            "study": data[roles["study"]].to_numpy(),
            "category": category,
            "direction": direction,
            "order": np.arange(len(data)),
        }
    )
    if roles["moderator"] is not None:
        out.insert(1, "moderator", data[roles["moderator"]].to_numpy())
    for role in ("weight", "n"):
        col = roles[role]
        if col is None:
            continue
        require_numeric(data, {role: col})
        values = data[col].to_numpy(dtype=float)
        if (values < 0).any() or (role == "n" and (values <= 0).any()):
            need = "positive" if role == "n" else "non-negative"
            raise ValueError(
                f"`{role}` column {col!r} must be {need}; got {_show([values.min()])}."
            )
        out[role] = values
    return out


def _study_votes(findings: pd.DataFrame, keys: list[str], within: str) -> pd.DataFrame:
    """One vote per study and stratum.

    ``"majority"``: the most frequent category among the study's findings; a tie for most
    frequent counts as non-significant (the study does not speak with one voice). The
    observed direction of a non-significant vote is the majority sign of its
    non-significant findings (0 on a tie). ``"first"``: the first-listed finding.
    """
    group = [*keys, "study"]
    grouped = findings.groupby(group, observed=True, sort=False)
    extra: dict[str, Any] = {"findings": grouped.size()}
    if "weight" in findings:
        extra["weight"] = grouped["weight"].mean()
    if "n" in findings:
        extra["n"] = grouped["n"].max()
    if within == "first":
        first = findings.sort_values("order").drop_duplicates(group, keep="first")
        votes = first.set_index(group)[["category", "direction"]]
    else:
        counts = (
            grouped["category"].value_counts().unstack(fill_value=0)
            .reindex(columns=list(CATEGORIES), fill_value=0)
        )
        top = counts.max(axis=1)
        tied = counts.eq(top, axis=0).sum(axis=1) > 1
        category = counts.idxmax(axis=1).where(~tied, CATEGORIES[1])
        ns = findings[findings["category"] == CATEGORIES[1]]
        ns_sign = np.sign(ns.groupby(group, observed=True)["direction"].sum())
        ns_sign = ns_sign.reindex(counts.index, fill_value=0)
        direction = np.where(
            category == CATEGORIES[0], 1, np.where(category == CATEGORIES[2], -1, ns_sign)
        )
        votes = pd.DataFrame({"category": category, "direction": direction},
                             index=counts.index)
    votes = votes.join(pd.DataFrame(extra))
    return votes.reset_index()


def _finding_votes(findings: pd.DataFrame) -> pd.DataFrame:
    return findings.drop(columns="order").assign(findings=1)


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    try:
        return table.sort_index()
    except TypeError:  # mixed label types (e.g. 1 and "a"): order by their text
        return table.sort_index(key=lambda idx: idx.map(str))


def _tally(votes: pd.DataFrame, findings: pd.DataFrame, keys: list[str],
           rule: Callable[[pd.Series], str]) -> pd.DataFrame:
    """Counts, percentages, studies, findings, participants and verdict per stratum."""
    flags = pd.DataFrame(
        {cat: votes["category"].eq(cat) for cat in CATEGORIES}
        | {
            "ns_positive": votes["category"].eq(CATEGORIES[1]) & (votes["direction"] > 0),
            "ns_negative": votes["category"].eq(CATEGORIES[1]) & (votes["direction"] < 0),
        }
    ).astype(int)
    flags[keys] = votes[keys]
    table = flags.groupby(keys, observed=True, sort=False).sum()
    table.insert(3, "votes", table[list(CATEGORIES)].sum(axis=1))
    for cat in CATEGORIES:
        table[f"pct_{cat}"] = 100 * table[cat] / table["votes"]
    table["studies"] = votes.groupby(keys, observed=True, sort=False)["study"].nunique()
    table["findings"] = findings.groupby(keys, observed=True, sort=False).size()
    if "n" in findings:
        per_study = findings.groupby([*keys, "study"], observed=True, sort=False)["n"].max()
        table["participants"] = per_study.groupby(level=keys, observed=True).sum()
    if "weight" in votes:
        weights = pd.DataFrame({cat: votes["weight"].where(votes["category"] == cat, 0.0)
                                for cat in CATEGORIES})
        weights[keys] = votes[keys]
        wsum = weights.groupby(keys, observed=True, sort=False).sum()
        total = wsum.sum(axis=1).replace(0.0, np.nan)
        for cat in CATEGORIES:
            table[f"weighted_pct_{cat}"] = 100 * wsum[cat] / total
    table["verdict"] = [str(rule(row)) for _, row in table.iterrows()]
    return _sorted(table)


def _count_tests(tally: pd.DataFrame, p_null: float) -> pd.DataFrame:
    """Sign test and significance-count tests per stratum (METHODS 5.2)."""
    rows = []
    for _, row in tally.iterrows():
        pos = int(row["sig_positive"] + row["ns_positive"])
        neg = int(row["sig_negative"] + row["ns_negative"])
        k = int(row["votes"])
        record: dict[str, float] = {"votes": k, "positive_direction": pos,
                                    "with_direction": pos + neg}
        if pos + neg:
            sign = stats.binomtest(pos, pos + neg, 0.5)
            ci = sign.proportion_ci(0.95, method="wilson")
            record |= {"share_positive": pos / (pos + neg), "share_ci_low": ci.low,
                       "share_ci_high": ci.high, "sign_p_value": sign.pvalue}
        else:
            record |= dict.fromkeys(
                ("share_positive", "share_ci_low", "share_ci_high", "sign_p_value"), np.nan
            )
        for cat in ("sig_positive", "sig_negative"):
            count = int(row[cat])
            record[cat] = count
            record[f"{cat}_p_value"] = stats.binomtest(
                count, k, p_null, alternative="greater"
            ).pvalue
        rows.append(record)
    out = pd.DataFrame(rows, index=tally.index)
    int_cols = ["votes", "positive_direction", "with_direction", "sig_positive", "sig_negative"]
    return out.astype(dict.fromkeys(int_cols, int))


def box_score(
    studies: pd.DataFrame,
    *,
    outcome: Hashable,
    effect: Hashable,
    significant: Hashable,
    moderator: Hashable | None = None,
    study: Hashable = "study",
    weight: Hashable | None = None,
    n: Hashable | None = None,
    unit: str = "study",
    rule: Callable[[pd.Series], str] = DEFAULT_RULE,
    alpha: float | None = None,
    within_study: str = "majority",
    missing: str = "drop",
) -> BoxScoreResult:
    """Box score: count significant positive, non-significant and significant negative votes.

    Parameters
    ----------
    studies : DataFrame
        One row per finding (a study may report several findings per outcome).
    outcome : column name
        Outcome domain of the finding (e.g. "in-session", "session-to-session").
    effect : column name
        Direction of the association: numeric (its sign is the direction, 0 = none) or
        labels "positive"/"+"/"pos", "negative"/"-"/"neg", "null"/"none"/"zero"/"0"
        (case-insensitive).
    significant : column name
        Boolean (True = statistically significant); with ``alpha``, p-values instead
        (``p < alpha`` counts as significant).
    moderator : column name, optional
        Tallies are made per outcome x moderator level.
    study : column name
        Study identifier (default "study").
    weight : column name, optional
        Non-negative vote weights (e.g. sample size or a quality score). A study-level vote
        weighs the mean weight of its findings. Adds ``weighted_pct_*`` columns, which the
        default rule then uses for the verdict.
    n : column name, optional
        Sample size of the finding; adds ``participants`` (per stratum, the sum over
        studies of each study's largest n, since findings of one study share a sample).
    unit : {"study", "finding"}
        Which tally is primary (``tally``, verdicts, tests, plot). Both are always computed.
    rule : VerdictRule or callable
        Verdict rule, see :class:`VerdictRule`; default ``VerdictRule()`` (>= 60 %).
    alpha : float, optional
        Treat ``significant`` as p-values with this level. It is also the primary studies'
        two-sided level assumed by the significance-count test (0.05 when None).
    within_study : {"majority", "first"}
        How a study with several findings for one stratum votes: the most frequent
        category, ties counting as non-significant ("majority"), or its first-listed
        finding ("first", depends on row order).
    missing : {"drop", "raise"}
        Rows with a missing value in a used column are dropped with a DataWarning, or raise.

    Returns
    -------
    BoxScoreResult

    Raises
    ------
    TypeError, ValueError
        For a missing or mistyped column, unknown direction labels, a non-boolean
        ``significant`` without ``alpha``, or a significant finding without a direction.

    Notes
    -----
    Each finding is classified as significant positive (significant and direction > 0),
    non-significant, or significant negative. Significant findings must have a direction.

    The sign test counts votes by observed direction (ties excluded; S ~ Bin(m, 1/2) under
    no effect). The significance-count test compares the number of significant-positive (and
    separately significant-negative) votes with Bin(k, alpha/2), one-sided: the count
    expected if every primary test were a two-sided level-alpha test of a true null. Both
    assume independent votes, which is why study-level votes are the default; with several
    findings per study the null share of a study's vote is only approximately alpha/2.

    Box scores ignore sample sizes and effect sizes and are biased towards "no effect" when
    studies are small (Hedges & Olkin, 1980); see :func:`vote_count_estimate`.

    Examples
    --------
    >>> import pandas as pd
    >>> findings = pd.DataFrame({
    ...     "study": ["A", "A", "B", "C", "D"],
    ...     "outcome": ["symptoms"] * 5,
    ...     "r": [0.30, 0.10, 0.25, -0.05, 0.40],
    ...     "sig": [True, False, True, False, True],
    ... })
    >>> res = box_score(findings, outcome="outcome", effect="r", significant="sig")
    >>> tally = res.tally  # study A's two findings tie -> one non-significant vote
    >>> tally[["sig_positive", "nonsignificant", "sig_negative", "votes"]].to_numpy().tolist()
    [[2, 2, 0, 4]]
    >>> tally["verdict"].tolist()
    ['inconclusive']
    >>> res.finding_tally[["sig_positive", "nonsignificant"]].to_numpy().tolist()
    [[3, 2]]
    """
    data = require_frame(studies, "studies")
    roles = _box_roles(study=study, outcome=outcome, moderator=moderator, effect=effect,
                       significant=significant, weight=weight, n=n)
    check_choice(unit, "unit", _UNITS)
    check_choice(within_study, "within_study", _WITHIN)
    if not callable(rule):
        raise TypeError(f"`rule` must be a VerdictRule or a callable; got {rule!r}.")
    alpha_f = None if alpha is None else _check_level(alpha, "alpha")
    require_columns(data, roles, "studies")
    used = list(dict.fromkeys(c for c in roles.values() if c is not None))
    data, dropped = handle_missing(data, used, missing, stacklevel=3)
    findings = _classify(data, roles, alpha_f)
    keys = ["outcome"] + (["moderator"] if moderator is not None else [])
    votes = {"study": _study_votes(findings, keys, within_study),
             "finding": _finding_votes(findings)}
    tallies = {u: _tally(v, findings, keys, rule) for u, v in votes.items()}
    p_null = (0.05 if alpha_f is None else alpha_f) / 2
    tests = {u: _count_tests(t, p_null) for u, t in tallies.items()}
    return BoxScoreResult(
        tallies=tallies, tests=tests, votes=votes, roles=roles, unit=unit, rule=rule,
        alpha=alpha_f, within_study=within_study, dropped_rows=dropped, findings=findings,
    )


class BoxScoreResult:
    """Immutable result of :func:`box_score`.

    Attributes
    ----------
    tally : DataFrame
        Primary tally (by ``unit``), indexed by outcome [x moderator]: counts
        ``sig_positive``, ``nonsignificant``, ``sig_negative``, ``ns_positive`` and
        ``ns_negative`` (non-significant votes split by observed sign), ``votes``,
        ``pct_*`` (percent of votes), ``studies``, ``findings``, ``participants`` (with
        ``n``), ``weighted_pct_*`` (with ``weight``) and ``verdict``.
    study_tally, finding_tally : DataFrame
        Both tallies, whichever is primary.
    tests : DataFrame
        Sign test and significance-count tests per stratum, on the primary unit.
    votes : DataFrame
        The votes behind the primary tally, one row per vote, with fixed column names
        whatever the input's: ``outcome``, [``moderator``,] ``study``, ``category`` (one
        of :data:`CATEGORIES`), ``direction`` (+1, 0, -1), ``findings`` (findings behind
        the vote), [``weight``,] [``n``]. Ready for :func:`vote_count_estimate`.
    verdicts : Series
        The ``verdict`` column of the primary tally.
    """

    def __init__(
        self,
        *,
        tallies: Mapping[str, pd.DataFrame],
        tests: Mapping[str, pd.DataFrame],
        votes: Mapping[str, pd.DataFrame],
        roles: Mapping[str, Hashable | None],
        unit: str,
        rule: Callable[[pd.Series], str],
        alpha: float | None,
        within_study: str,
        dropped_rows: Mapping[str, int],
        findings: pd.DataFrame,
    ) -> None:
        names = [roles["outcome"]]
        if roles["moderator"] is not None:
            names.append(roles["moderator"])
        self._tallies = {u: t.rename_axis(names) for u, t in tallies.items()}
        self._tests = {u: t.rename_axis(names) for u, t in tests.items()}
        self._votes = {u: v.copy() for u, v in votes.items()}
        self._roles = dict(roles)
        self._unit = unit
        self._rule = rule
        self._alpha = alpha
        self._within = within_study
        self._dropped = dict(dropped_rows)
        self._n_studies = int(findings["study"].nunique())
        self._n_findings = len(findings)
        self._participants = (
            float(findings.groupby("study")["n"].max().sum()) if "n" in findings else None
        )
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable; call box_score again.")
        super().__setattr__(name, value)

    # -- tables ---------------------------------------------------------------------------
    def _check_unit(self, unit: str | None) -> str:
        return self._unit if unit is None else check_choice(unit, "unit", _UNITS)

    @property
    def tally(self) -> pd.DataFrame:
        """Tally table of the primary unit (see class docstring)."""
        return self._tallies[self._unit].copy()

    @property
    def study_tally(self) -> pd.DataFrame:
        """Tally with one vote per study and stratum."""
        return self._tallies["study"].copy()

    @property
    def finding_tally(self) -> pd.DataFrame:
        """Tally with one vote per finding."""
        return self._tallies["finding"].copy()

    @property
    def tests(self) -> pd.DataFrame:
        """Sign test and significance-count tests per stratum (primary unit)."""
        return self._tests[self._unit].copy()

    @property
    def votes(self) -> pd.DataFrame:
        """One row per vote of the primary unit (fixed column names, see class docstring)."""
        return self._votes[self._unit].copy()

    @property
    def verdicts(self) -> pd.Series:
        """Verdict per stratum (primary unit)."""
        return self._tallies[self._unit]["verdict"].copy()

    @property
    def unit(self) -> str:
        """Primary unit of the tally: "study" or "finding"."""
        return self._unit

    @property
    def rule(self) -> Callable[[pd.Series], str]:
        """The verdict rule."""
        return self._rule

    @property
    def roles(self) -> dict[str, Hashable | None]:
        """Which column played which role."""
        return dict(self._roles)

    @property
    def alpha(self) -> float | None:
        """Level applied to p-values (None when significance was given as booleans)."""
        return self._alpha

    @property
    def within_study(self) -> str:
        """Rule for studies with several findings per stratum."""
        return self._within

    @property
    def dropped_rows(self) -> dict[str, int]:
        """Missing values per column among dropped rows."""
        return dict(self._dropped)

    @property
    def n_studies(self) -> int:
        """Number of distinct studies analysed."""
        return self._n_studies

    @property
    def n_findings(self) -> int:
        """Number of findings (rows) analysed."""
        return self._n_findings

    def to_frame(self, unit: str | None = None) -> pd.DataFrame:
        """Tidy table: one row per stratum, tally and count tests side by side."""
        u = self._check_unit(unit)
        tests = self._tests[u].drop(columns=["votes", "sig_positive", "sig_negative"])
        frame = self._tallies[u].join(tests).reset_index()
        frame.insert(0, "unit", u)
        return frame

    # -- display ----------------------------------------------------------------------------
    def _display_tally(self, unit: str) -> pd.DataFrame:
        table = self._tallies[unit]
        cols = [*CATEGORIES, "votes", *(f"pct_{c}" for c in CATEGORIES), "studies"]
        cols += [c for c in ("participants", "verdict") if c in table]
        shown = table[cols].copy()
        for col in shown.columns:
            if str(col).startswith("pct_"):
                shown[col] = shown[col].map(lambda v: f"{v:.1f}")
            elif col == "participants":
                shown[col] = shown[col].map(lambda v: f"{v:g}")
        return shown

    def summary(self) -> Summary:
        """Printable summary: roles, unit and rule, both tallies, tests, caveats."""
        header = [(f"  {role}", str(col)) for role, col in self._roles.items() if col is not None]
        within = ("most frequent category, ties -> non-significant"
                  if self._within == "majority" else "first-listed finding")
        header += [
            ("Unit", f"{self._unit} (study-level votes: {within})"),
            ("Significance", "as given" if self._alpha is None else f"p < {self._alpha}"),
            ("Studies / findings", f"{self._n_studies} / {self._n_findings}"),
            ("Verdict rule", _describe_rule(self._rule)),
        ]
        if self._participants is not None:
            header.insert(-1, ("Participants", f"{self._participants:g}"))
        other = "finding" if self._unit == "study" else "study"
        tables = [
            (f"Tally ({self._unit}-level votes)", self._display_tally(self._unit)),
            (f"Tally ({other}-level votes)", self._display_tally(other).drop(columns="verdict")),
            (f"Tests on {self._unit}-level counts", self._tests[self._unit]),
        ]
        p0 = (0.05 if self._alpha is None else self._alpha) / 2
        notes = [
            "sign test: votes by observed direction, ties excluded, Bin(m, 1/2); share CI: "
            "Wilson 95%.",
            f"significance-count tests: count of significant votes in one direction vs "
            f"Bin(k, {p0:g}), one-sided.",
            "Box scores ignore sample size and effect size and favour 'no effect' when "
            "studies are small (Hedges & Olkin, 1980); see vote_count_estimate().",
        ]
        warn = []
        if self._dropped:
            detail = ", ".join(f"{k}: {v}" for k, v in self._dropped.items())
            warn.append(f"rows with missing values dropped ({detail}).")
        return Summary("Box score (vote counting)", header, tables, warn, notes, digits=3)

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __str__(self) -> str:
        return self.summary().as_text()

    def __repr__(self) -> str:
        return (f"<BoxScoreResult: {len(self._tallies[self._unit])} strata, "
                f"{self._n_studies} studies, {self._n_findings} findings, unit={self._unit!r}>")

    def plot(self, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """Stacked bar chart of the tally; see :func:`plot_box_score`."""
        return plot_box_score(self, ax=ax, **kwargs)


_COLORS = {"sig_negative": "#c0504d", "nonsignificant": "#bfbfbf", "sig_positive": "#4f81bd"}
_LEGEND = {"sig_negative": "significant negative", "nonsignificant": "non-significant",
           "sig_positive": "significant positive"}


def plot_box_score(
    result: BoxScoreResult,
    ax: Axes | None = None,
    *,
    unit: str | None = None,
    percent: bool = True,
    annotate: bool = True,
    colors: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Axes:
    """Horizontal stacked bars: significant negative | non-significant | significant positive.

    Parameters
    ----------
    result : BoxScoreResult
    ax : matplotlib Axes, optional
        Drawn on ``plt.gca()`` when None.
    unit : {"study", "finding"}, optional
        Which tally; default the result's primary unit.
    percent : bool
        Bar lengths in percent of votes (default) or in counts.
    annotate : bool
        Write the count inside each non-empty segment.
    colors : mapping, optional
        Colours by category name (``"sig_negative"``, ``"nonsignificant"``,
        ``"sig_positive"``).
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.barh` (e.g. ``height``, ``edgecolor``).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> findings = pd.DataFrame({"study": list("ABC"), "outcome": "alliance",
    ...                          "r": [0.3, 0.1, -0.2], "sig": [True, False, False]})
    >>> ax = plot_box_score(box_score(findings, outcome="outcome", effect="r",
    ...                               significant="sig"))
    >>> ax.get_xlabel()
    '% of votes'
    """
    import matplotlib.pyplot as plt

    if not isinstance(result, BoxScoreResult):
        raise TypeError(f"`result` must be a BoxScoreResult; got {type(result).__name__}.")
    u = result._check_unit(unit)
    table = result._tallies[u]
    palette = {**_COLORS, **(dict(colors) if colors else {})}
    ax = plt.gca() if ax is None else ax
    y = np.arange(len(table))
    left = np.zeros(len(table))
    for cat in ("sig_negative", "nonsignificant", "sig_positive"):
        counts = table[cat].to_numpy(dtype=float)
        width = 100 * counts / table["votes"].to_numpy(dtype=float) if percent else counts
        bars = ax.barh(y, width, left=left, color=palette[cat], label=_LEGEND[cat], **kwargs)
        if annotate:
            ax.bar_label(bars, labels=[f"{c:g}" if c else "" for c in counts],
                         label_type="center")
        left = left + width
    names = [" | ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
             for idx in table.index]
    ax.set_yticks(y, [f"{name} (k={k})" for name, k in zip(names, table["votes"], strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("% of votes" if percent else "votes")
    if percent:
        ax.set_xlim(0, 100)
    ax.set_title(f"Box score ({u}-level votes)")
    # below the axis, so that it never hides a bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize="small",
              frameon=False)
    return ax


# ---------------------------------------------------------------------------------------
# Hedges-Olkin vote-counting likelihood
# ---------------------------------------------------------------------------------------
def _log_phi(x: np.ndarray) -> np.ndarray:
    return -0.5 * x * x - 0.5 * _LOG_2PI


class _VoteLikelihood:
    """Log-likelihood of a common effect theta from votes and effect sizes.

    A vote study with weight w (sqrt(n~) for d, sqrt(n - 3) for Fisher z) has test statistic
    approximately N(theta w, 1); it is significant positive when above c = z_{1-alpha/2},
    significant negative when below -c (c = 0: direction only). An effect-size study
    contributes the normal density of y ~ N(theta, v). All terms are log-concave in theta
    (log Phi is concave; an interval probability of a normal is log-concave), so the
    likelihood has a single maximum, at infinity only when all votes agree (boundary).
    """

    def __init__(self, w: np.ndarray, votes: np.ndarray, crit: float, three: bool,
                 y: np.ndarray, v: np.ndarray) -> None:
        self.w, self.votes, self.c, self.three = w, votes, crit, three
        self.y, self.v = y, v

    def _log_ns(self, a: np.ndarray) -> np.ndarray:
        # log(Phi(c - a) - Phi(-c - a)), written with |a| so both terms are lower tails.
        t = np.abs(a)
        upper = special.log_ndtr(self.c - t)
        lower = special.log_ndtr(-self.c - t)
        return upper + np.log1p(-np.exp(lower - upper))

    def loglik(self, theta: Any) -> np.ndarray:
        """Log-likelihood at each value of ``theta`` (array in, array out)."""
        t = np.atleast_1d(np.asarray(theta, dtype=float))[:, None]
        a = t * self.w
        if self.three:
            terms = np.where(
                self.votes == 1, special.log_ndtr(a - self.c),
                np.where(self.votes == -1, special.log_ndtr(-a - self.c), self._log_ns(a)),
            )
        else:
            terms = np.where(self.votes == 1, special.log_ndtr(a - self.c),
                             special.log_ndtr(self.c - a))
        normal = -0.5 * (_LOG_2PI + np.log(self.v) + (self.y - t) ** 2 / self.v)
        return np.asarray(terms.sum(axis=1) + normal.sum(axis=1))

    def score(self, theta: float) -> float:
        """Derivative of the log-likelihood (decreasing in theta: concavity)."""
        a = theta * self.w
        up = np.exp(_log_phi(a - self.c) - special.log_ndtr(a - self.c))
        if self.three:
            down = np.exp(_log_phi(a + self.c) - special.log_ndtr(-a - self.c))
            lns = self._log_ns(a)
            mid = np.exp(_log_phi(a + self.c) - lns) - np.exp(_log_phi(a - self.c) - lns)
            per = np.where(self.votes == 1, up, np.where(self.votes == -1, -down, mid))
        else:
            down = np.exp(_log_phi(a - self.c) - special.log_ndtr(self.c - a))
            per = np.where(self.votes == 1, up, -down)
        return float((self.w * per).sum() + ((self.y - theta) / self.v).sum())

    def information(self, theta: float) -> float:
        """Expected (Fisher) information, sum over studies of sum_j p_j'^2 / p_j."""
        a = theta * self.w
        w2 = self.w**2
        lpos, lphi_pos = special.log_ndtr(a - self.c), _log_phi(a - self.c)
        if self.three:
            lneg, lphi_neg = special.log_ndtr(-a - self.c), _log_phi(a + self.c)
            diff = np.abs(np.exp(lphi_neg) - np.exp(lphi_pos))
            with np.errstate(divide="ignore"):
                mid = np.exp(2 * np.log(diff) - self._log_ns(a))
            per = np.exp(2 * lphi_pos - lpos) + np.exp(2 * lphi_neg - lneg) + mid
        else:
            per = np.exp(2 * lphi_pos - lpos - special.log_ndtr(self.c - a))
        return float((w2 * per).sum() + (1 / self.v).sum())


def _crossing(f: Callable[[float], float], x0: float, step: float, sign: float) -> float:
    """First x = x0 + sign * s (s > 0) where f changes sign from f(x0); inf if none."""
    f0 = f(x0)
    for _ in range(200):
        x = x0 + sign * step
        if np.sign(f(x)) != np.sign(f0):
            lo, hi = sorted((x0, x))
            return float(optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-12))
        x0, step = x, step * 2
    return math.copysign(math.inf, sign)


def _fit_votes(lik: _VoteLikelihood, boundary: str | None, ci: float) -> dict[str, float]:
    """MLE, Wald SE, profile-likelihood CI and LR test of theta = 0 (estimation scale)."""
    scale = 1 / math.sqrt(max(lik.information(0.0), 1e-12))
    ll0 = float(lik.loglik(0.0)[0])
    if boundary is not None:
        # The supremum (log-likelihood 0) is approached at +/-inf; give the one-sided
        # profile-likelihood bound at level ci: 2 (0 - l(theta)) = z_ci^2.
        target = -0.5 * stats.norm.ppf(ci) ** 2
        sign = 1.0 if boundary == "upper" else -1.0

        def f_b(t: float) -> float:
            return float(lik.loglik(t)[0]) - target

        # l is monotone (increasing for "upper"): the crossing lies away from the supremum
        bound = _crossing(f_b, 0.0, scale, -sign if f_b(0.0) > 0 else sign)
        inf = math.copysign(math.inf, sign)
        low, high = (bound, math.inf) if sign > 0 else (-math.inf, bound)
        return {"theta": inf, "se": math.nan, "low": low, "high": high, "llf": 0.0,
                "lr": -2 * ll0, "wald_low": math.nan, "wald_high": math.nan}
    x0, step = 0.0, scale
    s0 = lik.score(x0)
    theta = _crossing(lik.score, x0, step, 1.0 if s0 > 0 else -1.0) if s0 != 0 else 0.0
    llf = float(lik.loglik(theta)[0])
    se = 1 / math.sqrt(lik.information(theta))
    cut = 0.5 * stats.chi2.ppf(ci, 1)

    def f_ci(t: float) -> float:
        return float(lik.loglik(t)[0]) - (llf - cut)

    z = stats.norm.ppf(0.5 + ci / 2)
    return {"theta": theta, "se": se, "low": _crossing(f_ci, theta, se, -1.0),
            "high": _crossing(f_ci, theta, se, 1.0), "llf": llf,
            "lr": max(2 * (llf - ll0), 0.0), "wald_low": theta - z * se,
            "wald_high": theta + z * se}


@dataclass(frozen=True)
class VoteCountResult:
    """Result of :func:`vote_count_estimate` (immutable).

    Attributes
    ----------
    estimate, se, conf_low, conf_high : float
        Common effect (d, or r back-transformed from Fisher z), Wald standard error
        (expected information; delta method for r) and profile-likelihood CI. At a boundary
        (all votes agree) the estimate is +/-inf (r: +/-1), ``se`` is NaN and one CI end is
        the one-sided ``ci`` bound.
    wald_low, wald_high : float
        Wald interval, estimate +/- z se on the estimation scale (back-transformed for r).
    statistic, p_value : float
        Signed root of the likelihood-ratio statistic for theta = 0 and its p-value.
    theta, theta_se, theta_conf_low, theta_conf_high : float
        The same on the estimation scale (d itself, or Fisher z for r).
    method : str
    metric : {"d", "r"}
    k, k_votes, k_effect_sizes, n_positive : int
        Studies used; of them vote-count and effect-size studies; votes counted as
        positive (significant positive, or positive direction with ``direction_only``).
    alpha, ci : float
    llf : float
        Maximised log-likelihood (0 at a boundary, the supremum).
    boundary : {"upper", "lower"} or None
    warnings : tuple of str
    dropped_rows : mapping
    """

    estimate: float
    se: float
    conf_low: float
    conf_high: float
    wald_low: float
    wald_high: float
    statistic: float
    p_value: float
    theta: float
    theta_se: float
    theta_conf_low: float
    theta_conf_high: float
    method: str
    metric: str
    k: int
    k_votes: int
    k_effect_sizes: int
    n_positive: int
    alpha: float
    ci: float
    llf: float
    boundary: str | None
    warnings: tuple[str, ...] = ()
    dropped_rows: Mapping[str, int] = field(default_factory=lambda: types.MappingProxyType({}))
    _lik: _VoteLikelihood | None = field(default=None, repr=False, compare=False)

    def loglik(self, theta: Any) -> np.ndarray:
        """Log-likelihood at ``theta`` on the estimation scale (d, or Fisher z for r)."""
        if self._lik is None:
            raise ValueError("This result has no likelihood attached.")
        return self._lik.loglik(theta)

    def profile(self, grid: Any = None, *, num: int = 201) -> pd.DataFrame:
        """Log-likelihood curve: columns theta, loglik, deviance (and rho for r).

        ``grid`` defaults to ``num`` points spanning the profile CI widened by half its
        width on each side (a finite window at a boundary).
        """
        if grid is None:
            low, high = self.theta_conf_low, self.theta_conf_high
            if not math.isfinite(low):
                low = high - 4.0
            if not math.isfinite(high):
                high = low + 4.0
            pad = 0.5 * (high - low)
            grid = np.linspace(low - pad, high + pad, num)
        theta = np.asarray(grid, dtype=float)
        ll = self.loglik(theta)
        frame = pd.DataFrame({"theta": theta, "loglik": ll, "deviance": 2 * (self.llf - ll)})
        if self.metric == "r":
            frame.insert(1, "rho", np.tanh(theta))
        return frame

    def conf_int(self, kind: str = "profile") -> tuple[float, float]:
        """(low, high): "profile" likelihood (default) or "wald"."""
        check_choice(kind, "kind", ("profile", "wald"))
        if kind == "wald":
            return self.wald_low, self.wald_high
        return self.conf_low, self.conf_high

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table: term, estimate, std_error, statistic, p_value, conf_low,
        conf_high, k, method."""
        return pd.DataFrame({
            "term": ["delta" if self.metric == "d" else "rho"],
            "estimate": [self.estimate], "std_error": [self.se],
            "statistic": [self.statistic], "p_value": [self.p_value],
            "conf_low": [self.conf_low], "conf_high": [self.conf_high],
            "k": [self.k], "method": [self.method],
        })

    def summary(self) -> Summary:
        """Printable summary."""
        header = [
            ("Method", self.method),
            ("Studies", f"{self.k} ({self.k_votes} vote counts, {self.k_effect_sizes} effect "
                        f"sizes); positive votes: {self.n_positive}"),
            ("Primary level", f"alpha = {self.alpha:g} (two-sided)"),
            ("Log-likelihood", f"{self.llf:.4f}"),
        ]
        table = self.to_frame().set_index("term").drop(columns=["k", "method"])
        table["wald_low"], table["wald_high"] = self.wald_low, self.wald_high
        notes = [
            f"{self.ci:.0%} CI by profile likelihood; std_error from the expected "
            f"information; statistic = signed root of the LR test of no effect.",
            "Assumes one common (fixed) effect; heterogeneity is not modelled.",
        ]
        if self.metric == "r":
            notes.append("Estimated on the Fisher-z scale (weights n - 3), back-transformed.")
        return Summary("Vote-counting estimate of a common effect", header,
                       [("Estimate", table)], list(self.warnings), notes)

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __str__(self) -> str:
        return self.summary().as_text()


def _size_weights(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-study weight w (sqrt(n~) or sqrt(n - 3)) and total size; NaN where missing."""
    n, n1, n2 = roles["n"], roles["n1"], roles["n2"]
    if (n1 is None) != (n2 is None):
        raise ValueError("Give both `n1` and `n2` (group sizes), or `n` (total size) alone.")
    if n is not None and n1 is not None:
        raise ValueError("Give either `n` (total size) or `n1` and `n2` (group sizes), not both.")
    if metric == "r" and n1 is not None:
        raise ValueError("metric='r' needs the sample size `n` (Fisher z weight n - 3), "
                         "not group sizes `n1`/`n2`.")
    if n is None and n1 is None:
        return np.full(len(data), np.nan), np.full(len(data), np.nan)
    for role in ("n", "n1", "n2"):
        col = roles[role]
        if col is None:
            continue
        x = data[col].to_numpy(dtype=float, na_value=np.nan)
        floor = 3 if metric == "r" else 0
        bad = x <= floor
        if bad.any():
            need = "larger than 3 (Fisher z variance 1/(n - 3))" if floor else "positive"
            raise ValueError(f"`{role}` column {col!r} must be {need}; got "
                             f"{_show(x[bad])}.")
    if n1 is not None:
        a = data[n1].to_numpy(dtype=float, na_value=np.nan)
        b = data[n2].to_numpy(dtype=float, na_value=np.nan)
        return np.sqrt(a * b / (a + b)), a + b
    total = data[n].to_numpy(dtype=float, na_value=np.nan)
    # d from a total n assumes two equal groups: n~ = (n/2)(n/2)/n = n/4
    return (np.sqrt(total - 3) if metric == "r" else np.sqrt(total / 4)), total


def _effect_sizes(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], metric: str,
    w: np.ndarray, total: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Effect sizes y and variances v on the estimation scale (NaN where not reported)."""
    if roles["effect_size"] is None:
        nan = np.full(len(data), np.nan)
        return nan, nan
    raw = data[roles["effect_size"]].to_numpy(dtype=float, na_value=np.nan)
    if metric == "r":
        if (np.abs(raw) >= 1).any():
            raise ValueError(f"`effect_size` column {roles['effect_size']!r} must hold "
                             f"correlations in (-1, 1) for metric='r'.")
        y = np.arctanh(raw)
        implied = 1 / w**2  # 1 / (n - 3)
    else:
        y = raw
        implied = 1 / w**2 + raw**2 / (2 * total)  # large-sample variance of d
    v = implied
    if roles["variance"] is not None:
        given = data[roles["variance"]].to_numpy(dtype=float, na_value=np.nan)
        if (given <= 0).any():
            raise ValueError(f"`variance` column {roles['variance']!r} must be positive.")
        v = np.where(np.isnan(given), implied, given)
    return y, v


def _vote_codes(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], mask: np.ndarray,
    direction_only: bool,
) -> np.ndarray:
    """+1 / 0 / -1 per vote row (significant positive / non-sig. / significant negative;
    or observed direction with ``direction_only``). NaN-free rows only."""
    rows = data.loc[mask]
    direction = (
        _directions(rows[roles["effect"]], "effect") if roles["effect"] is not None else None
    )
    if direction_only and direction is not None:  # `effect` is required there
        return direction
    sig = _significance(rows[roles["significant"]], None)
    if direction is None:
        return sig.astype(int)  # significant = significant in the hypothesised direction
    _check_sig_direction(sig, direction, pd.Series(rows.index, index=rows.index))
    return np.where(sig, direction, 0)


def _usable_rows(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], w: np.ndarray,
    y: np.ndarray, v: np.ndarray, direction_only: bool, missing: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Masks of usable effect-size and vote rows, and missing counts of dropped rows."""
    is_es = ~np.isnan(y)
    vote_cols = [roles["effect"] if direction_only else roles["significant"]]
    if roles["effect"] is not None and not direction_only:
        vote_cols.append(roles["effect"])
    vote_ok = ~is_es & ~np.isnan(w) & data[vote_cols].notna().all(axis=1).to_numpy()
    es_ok = is_es & ~np.isnan(v)
    dropped = ~(vote_ok | es_ok)
    counts: dict[str, int] = {}
    if dropped.any():
        size_cols = [c for c in (roles["n"], roles["n1"], roles["n2"]) if c is not None]
        cols = list(dict.fromkeys([*vote_cols, *size_cols]))
        miss = data.loc[dropped, cols].isna().sum()
        counts = {str(c): int(m) for c, m in miss.items() if m > 0}
        if not counts:
            counts = {"sample size": int(dropped.sum())}
        detail = ", ".join(f"{c!r}: {m}" for c, m in counts.items())
        if missing == "raise" or dropped.all():
            raise ValueError(
                f"{int(dropped.sum())} of {len(data)} studies have neither a usable vote "
                f"(vote and sample size) nor an effect size with a variance (missing: "
                f"{detail})." + (" Use missing='drop' to drop them." if not dropped.all() else "")
            )
        warnings.warn(f"Dropped {int(dropped.sum())} of {len(data)} studies without a usable "
                      f"vote or effect size (missing: {detail}).", DataWarning, stacklevel=3)
    return es_ok, vote_ok, counts


def _method_label(k_votes: int, k_es: int, three: bool, direction_only: bool) -> str:
    if k_votes == 0:
        return "inverse-variance fixed effect (every study reports an effect size)"
    kind = ("direction of effect" if direction_only else
            "three-category (sig+/ns/sig-)" if three else "significant positive vs not")
    label = f"Hedges-Olkin vote counting, {kind}, large-sample normal"
    if k_es:
        label += f"; Bushman-Wang combination with {k_es} effect sizes"
    return label


def vote_count_estimate(
    studies: pd.DataFrame,
    *,
    significant: Hashable | None,
    n: Hashable | None = None,
    n1: Hashable | None = None,
    n2: Hashable | None = None,
    effect: Hashable | None = None,
    effect_size: Hashable | None = None,
    variance: Hashable | None = None,
    metric: str = "d",
    alpha: float = 0.05,
    direction_only: bool = False,
    three_category: bool = False,
    ci: float = 0.95,
    missing: str = "drop",
) -> VoteCountResult:
    r"""Hedges-Olkin vote-counting estimate of a common effect (with Bushman-Wang).

    Parameters
    ----------
    studies : DataFrame
        One row per independent study (aggregate several findings per study first, e.g.
        with :func:`box_score`'s study-level votes).
    significant : column name or None
        Boolean: the study's test was significant (two-sided, level ``alpha``). Without
        ``effect``, True means significant *in the hypothesised (positive) direction*. May
        be None with ``direction_only=True``.
    n : column name, optional
        Total sample size. For ``metric="d"`` two equal groups are assumed (n~ = n/4); for
        ``metric="r"`` the Fisher-z weight is n - 3.
    n1, n2 : column names, optional
        Group sizes for ``metric="d"``: n~ = n1 n2 / (n1 + n2).
    effect : column name, optional
        Observed direction (numeric sign or labels as in :func:`box_score`); needed for
        ``direction_only`` and ``three_category``; otherwise a significant study counts as
        positive only if its direction is positive.
    effect_size : column name, optional
        Reported effect size (d, or r for ``metric="r"``); NaN where a study reports only
        significance. Rows with an effect size enter through its normal likelihood
        (Bushman & Wang) and not as votes.
    variance : column name, optional
        Sampling variance of ``effect_size`` (of Fisher z for ``metric="r"``). Where missing
        it is computed from the sizes: 1/n~ + d^2 / (2 (n1 + n2)) for d, 1/(n - 3) for z.
    metric : {"d", "r"}
        Standardised mean difference or correlation (estimated on the Fisher-z scale).
    alpha : float
        Two-sided significance level of the primary studies.
    direction_only : bool
        Count votes by observed direction only (cut-off 0 instead of z_{1-alpha/2});
        studies with no direction are left out with a warning.
    three_category : bool
        Use significant positive, non-significant and significant negative as three
        outcomes (multinomial) instead of significant positive vs the rest.
    ci : float
        Confidence level of the profile-likelihood interval.
    missing : {"drop", "raise"}
        Studies with neither a usable vote nor an effect size are dropped (DataWarning) or
        raise.

    Returns
    -------
    VoteCountResult

    Warns
    -----
    BoundaryFitWarning
        When every vote agrees (all significant positive, none, ...) and no effect size is
        given: the likelihood is monotone, the MLE is infinite, and a one-sided bound is
        reported instead of an interval.

    Notes
    -----
    With test statistic approximately N(theta w_i, 1), w_i = sqrt(n~_i) for d and
    sqrt(n_i - 3) for Fisher z (Hedges & Olkin, 1985, ch. 4),

    .. math::

        p_i(\theta) = P(\text{sig}+) = 1 - \Phi(z_{1-\alpha/2} - \theta w_i), \qquad
        \ell(\theta) = \sum_i x_i \log p_i + (1 - x_i) \log(1 - p_i)
        - \sum_{j \in ES} \frac{(y_j - \theta)^2}{2 v_j} + \text{const},

    where x_i = 1 for a significant positive vote and the last sum runs over studies that
    report an effect size y_j with variance v_j (Bushman & Wang, 1995, 1996). Every term
    is log-concave, so the maximum is unique; it is found as the root of the score. The
    standard error is 1 / sqrt(I) with the expected information
    I = sum p_i'^2 / (p_i (1 - p_i)) + sum 1 / v_j; the CI inverts the likelihood-ratio
    test. With equal n~ the estimate has the closed form
    (z_{1-alpha/2} + Phi^{-1}(n_+ / k)) / sqrt(n~).

    This is a large-sample normal approximation to the t test (or Fisher z); for very
    small primary studies it slightly overstates their power, so the estimate is slightly
    too small. The model assumes one common effect; with heterogeneous effects it
    estimates a compromise. A raw box score, by contrast, ignores the sizes altogether:
    with power below 1/2 per study, the share of significant studies stays below 1/2 however
    many studies agree on a real effect (Hedges & Olkin, 1980).

    Examples
    --------
    >>> import pandas as pd
    >>> studies = pd.DataFrame({"sig": [True, False, False, True, False, False],
    ...                         "n1": [20, 25, 30, 40, 15, 20],
    ...                         "n2": [20, 25, 30, 40, 15, 20]})
    >>> res = vote_count_estimate(studies, significant="sig", n1="n1", n2="n2")
    >>> round(res.estimate, 3), res.k
    (0.447, 6)
    """
    data = require_frame(studies, "studies")
    check_choice(metric, "metric", ("d", "r"))
    check_choice(missing, "missing", ("drop", "raise"))
    alpha_f, ci_f = _check_level(alpha, "alpha"), _check_level(ci, "ci")
    for name, flag in (("direction_only", direction_only), ("three_category", three_category)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"`{name}` must be True or False; got {flag!r}.")
    roles = {
        "significant": _single_column(significant, "significant", required=False),
        "effect": _single_column(effect, "effect", required=False),
        "n": _single_column(n, "n", required=False),
        "n1": _single_column(n1, "n1", required=False),
        "n2": _single_column(n2, "n2", required=False),
        "effect_size": _single_column(effect_size, "effect_size", required=False),
        "variance": _single_column(variance, "variance", required=False),
    }
    _check_vote_options(roles, direction_only, three_category)
    require_columns(data, roles, "studies")
    require_numeric(data, {r: roles[r] for r in ("n", "n1", "n2", "effect_size", "variance")})
    w, total = _size_weights(data, roles, metric)
    y, v = _effect_sizes(data, roles, metric, w, total)
    es_ok, vote_ok, dropped = _usable_rows(data, roles, w, y, v, direction_only, missing)
    codes = _vote_codes(data, roles, vote_ok, direction_only) if vote_ok.any() else np.zeros(0)
    w_votes = w[vote_ok]
    notes: list[str] = []
    if direction_only and (codes == 0).any():
        msg = (f"{int((codes == 0).sum())} studies with no observed direction were left out "
               f"of direction-only vote counting.")
        warnings.warn(msg, DataWarning, stacklevel=2)
        notes.append(msg)
        w_votes, codes = w_votes[codes != 0], codes[codes != 0]
    if not three_category:
        codes = (codes == 1).astype(int)
    crit = 0.0 if direction_only else float(stats.norm.ppf(1 - alpha_f / 2))
    lik = _VoteLikelihood(w_votes, codes, crit, three_category, y[es_ok], v[es_ok])
    k_votes, k_es = len(codes), int(es_ok.sum())
    if k_votes + k_es == 0:
        raise ValueError("No usable studies: every row lacks both a vote and an effect size.")
    boundary = _boundary(codes, three_category, k_es)
    fit = _fit_votes(lik, boundary, ci_f)
    if boundary is not None:
        notes.append(_boundary_message(boundary, k_votes, fit, ci_f, three_category))
        warnings.warn(notes[-1], BoundaryFitWarning, stacklevel=2)
    return _vote_result(fit, lik, metric, k_votes, k_es, int((codes == 1).sum()), alpha_f,
                        ci_f, boundary, notes, dropped,
                        _method_label(k_votes, k_es, three_category, direction_only))


def _check_vote_options(roles: Mapping[str, Hashable | None], direction_only: bool,
                        three_category: bool) -> None:
    if direction_only and three_category:
        raise ValueError("Choose one of `direction_only` and `three_category`, not both.")
    if (direction_only or three_category) and roles["effect"] is None:
        which = "direction_only" if direction_only else "three_category"
        raise ValueError(f"`{which}=True` needs `effect`, the column with each study's "
                         f"observed direction.")
    if roles["significant"] is None and not direction_only:
        raise TypeError("`significant` must name the boolean column of significant results "
                        "(it may be None only with direction_only=True).")
    if roles["variance"] is not None and roles["effect_size"] is None:
        raise ValueError("`variance` was given without `effect_size`.")
    if roles["n"] is None and roles["n1"] is None and roles["effect_size"] is None:
        raise ValueError("Vote counting needs study sizes: give `n` (total) or `n1` and `n2` "
                         "(group sizes).")


def _boundary(codes: np.ndarray, three: bool, k_es: int) -> str | None:
    """Direction in which the likelihood is monotone (MLE at +/-inf), if any."""
    if k_es or len(codes) == 0:
        return None
    if three:
        return "upper" if (codes == 1).all() else "lower" if (codes == -1).all() else None
    return "upper" if (codes == 1).all() else "lower" if (codes == 0).all() else None


def _boundary_message(boundary: str, k: int, fit: Mapping[str, float], ci: float,
                      three: bool) -> str:
    if boundary == "upper":
        what, bound = f"All {k} votes are positive", f"lower bound {fit['low']:.4g}"
    else:
        neg = "significant negative" if three else "negative (not significant positive)"
        what, bound = f"All {k} votes are {neg}", f"upper bound {fit['high']:.4g}"
    hint = ("" if three or boundary == "upper" else
            " To tell non-significant from significant negative results, pass `effect` and "
            "three_category=True.")
    return (f"{what}: the likelihood is monotone and the maximum-likelihood estimate is "
            f"infinite. Reported a one-sided {ci:.0%} profile-likelihood {bound} (estimation "
            f"scale) instead of an interval.{hint}")


def _vote_result(fit: Mapping[str, float], lik: _VoteLikelihood, metric: str, k_votes: int,
                 k_es: int, n_positive: int, alpha: float, ci: float, boundary: str | None,
                 notes: list[str], dropped: Mapping[str, int], method: str) -> VoteCountResult:
    theta, se = fit["theta"], fit["se"]
    stat = math.copysign(math.sqrt(fit["lr"]), theta) if fit["lr"] > 0 else 0.0
    if metric == "r":  # back-transform from Fisher z; delta-method SE
        out = {key: math.tanh(fit[key]) for key in ("theta", "low", "high")}
        out["se"] = (1 - out["theta"] ** 2) * se
        wald = (math.tanh(fit["wald_low"]), math.tanh(fit["wald_high"]))
    else:
        out = {"theta": theta, "low": fit["low"], "high": fit["high"], "se": se}
        wald = (fit["wald_low"], fit["wald_high"])
    return VoteCountResult(
        estimate=out["theta"], se=out["se"], conf_low=out["low"], conf_high=out["high"],
        wald_low=wald[0], wald_high=wald[1], statistic=stat,
        p_value=float(stats.chi2.sf(fit["lr"], 1)), theta=theta, theta_se=se,
        theta_conf_low=fit["low"], theta_conf_high=fit["high"], method=method, metric=metric,
        k=k_votes + k_es, k_votes=k_votes, k_effect_sizes=k_es, n_positive=n_positive,
        alpha=alpha, ci=ci, llf=fit["llf"], boundary=boundary, warnings=tuple(notes),
        dropped_rows=types.MappingProxyType(dict(dropped)), _lik=lik,
    )
