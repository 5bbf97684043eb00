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

from ..plotting import plot_box_score
from ._box_score import DEFAULT_RULE, BoxScoreResult, VerdictRule, box_score
from ._estimate import VoteCountResult, vote_count_estimate
from ._votes import CATEGORIES

__all__ = [
    "CATEGORIES",
    "DEFAULT_RULE",
    "BoxScoreResult",
    "VerdictRule",
    "VoteCountResult",
    "box_score",
    "plot_box_score",
    "vote_count_estimate",
]
