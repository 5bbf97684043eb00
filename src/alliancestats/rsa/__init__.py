"""Response surface analysis: single-level, multilevel, lagged, by group, the model family.

Modules: :mod:`~alliancestats.rsa.fit` (``fit_rsa``, ``fit_lagged_rsa``, ``compare_rsa``
and the estimation behind them), :mod:`~alliancestats.rsa.results` (``RSAResults``),
:mod:`~alliancestats.rsa.family` (the model family and the surface geometry),
:mod:`~alliancestats.rsa.congruence` (equivalence tests, model weights, curvatures of the
congruence verdict) and :mod:`~alliancestats.rsa.bootstrap` (cluster bootstrap,
congruence-test records).
"""

from .bootstrap import CongruenceTest, RSABootstrap
from .family import MODELS
from .fit import compare_rsa, fit_lagged_rsa, fit_rsa
from .results import RSAResults

__all__ = ["MODELS", "CongruenceTest", "RSABootstrap", "RSAResults", "compare_rsa",
           "fit_lagged_rsa", "fit_rsa"]
