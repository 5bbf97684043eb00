"""Monte-Carlo power for the PRN analyses.

Modules: ``_result`` (:class:`PowerResult`), ``_orchestration`` (:func:`power`, the grid,
seeds and bookkeeping), ``_designs`` (what one replicate simulates and fits) and ``_run``
(the seeded, chunked, checkpointed runner and its backends) and ``_search``
(:func:`find_size`, the adaptive sample-size search) and ``_sensitivity``
(:func:`power_sensitivity`, power over a grid of uncertain simulator parameters). The
command line lives in :mod:`alliancestats.cli` (``alliancestats power``).
"""

from ._orchestration import null_effects, power
from ._result import PowerResult
from ._search import SizeSearch, find_size
from ._sensitivity import power_sensitivity

__all__ = ["PowerResult", "SizeSearch", "find_size", "null_effects", "power",
           "power_sensitivity"]
