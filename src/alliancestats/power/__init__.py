"""Monte-Carlo power for the PRN analyses: designs, the seeded and checkpointed runner."""

from ._api import PowerResult, add_power_arguments, main, null_effects, power, power_main

__all__ = ["PowerResult", "add_power_arguments", "main", "null_effects", "power", "power_main"]
