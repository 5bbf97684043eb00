"""Response surface analysis: single-level, multilevel, lagged, by group, the model family."""

from ._api import (
           MODELS,
           CongruenceTest,
           RSABootstrap,
           RSAResults,
           compare_rsa,
           fit_lagged_rsa,
           fit_rsa,
)

__all__ = ["MODELS", "CongruenceTest", "RSABootstrap", "RSAResults", "compare_rsa",
           "fit_lagged_rsa", "fit_rsa"]
