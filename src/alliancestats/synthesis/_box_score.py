"""Box score: tally significant positive / non-significant / significant negative votes.

See :mod:`alliancestats.synthesis` for the method and references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import (
    check_choice,
    handle_missing,
    require_columns,
    require_frame,
    require_numeric,
)
from ..results import Summary
from ._votes import (
    CATEGORIES,
    _check_level,
    _check_sig_direction,
    _directions,
    _show,
    _significance,
    _single_column,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["DEFAULT_RULE", "BoxScoreResult", "VerdictRule", "box_score"]

_UNITS = ("study", "finding")
_WITHIN = ("majority", "first")


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
    """Sign test (votes by observed direction, Bin(m, 1/2)) and one-sided significance-count
    tests (significant votes in one direction vs Bin(k, alpha/2)) per stratum (Hedges & Olkin,
    1980; 1985, ch. 4)."""
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
        """Stacked bar chart of the tally; see :func:`~alliancestats.plot_box_score`."""
        from ..plotting import plot_box_score

        return plot_box_score(self, ax=ax, **kwargs)


