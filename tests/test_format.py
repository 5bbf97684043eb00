"""One number / p-value formatter for summaries and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliancestats._format import format_number, format_p, format_table
from alliancestats.results import Summary


@pytest.mark.parametrize(("p", "shown"), [
    (0.0, "< 0.001"), (1e-300, "< 0.001"), (0.000999, "< 0.001"), (0.001, "0.001"),
    (0.0456, "0.046"), (1.0, "1.000"), (np.nan, ""), (None, ""),
])
def test_format_p(p: float, shown: str) -> None:
    assert format_p(p) == shown


@pytest.mark.parametrize(("x", "shown"), [
    (1.23456, "1.235"), (-0.00002, "-2e-05"), (0.0, "0.000"), (-0.0001, "-0.0001"),
    (np.inf, "inf"), (-np.inf, "-inf"), (np.nan, ""),
])
def test_format_number(x: float, shown: str) -> None:
    assert format_number(x) == shown


def test_format_table_leaves_the_input_alone() -> None:
    table = pd.DataFrame({"estimate": [1.0], "sign_p_value": [0.0], "n": [3]})
    shown = format_table(table, 2)
    assert shown.iloc[0].tolist() == ["1.00", "< 0.001", 3]
    assert table["sign_p_value"].dtype == float


def test_summary_never_prints_p_equals_zero() -> None:
    # z = 42: the p-value underflows to 0.0; a summary must not print "0" or "0.0000"
    table = pd.DataFrame({"estimate": [4.2], "std_error": [0.1], "statistic": [42.0],
                          "p_value": [0.0]}, index=["x"])
    text = Summary("T", [], [("Fixed effects", table)]).as_text()
    row = next(line for line in text.splitlines() if line.startswith("x "))
    assert row.split()[-2:] == ["<", "0.001"]
    assert "0.0000" not in row
    html = Summary("T", [], [("Fixed effects", table)]).as_html()
    assert "&lt; 0.001" in html
