"""Tests of the bundled data sets (``alliancestats.datasets``)."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import PRNParams, datasets, simulate_prn
from alliancestats.simulate import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
RATINGS = ["alliance_therapist", "alliance_patient", "wellbeing"]


@pytest.fixture(scope="module")
def prn() -> pd.DataFrame:
    return datasets.load("prn")


def test_prn_shape_columns_dtypes(prn: pd.DataFrame) -> None:
    assert list(prn.columns) == list(COLUMNS)
    assert prn["therapist"].nunique() == 40
    assert prn["patient"].nunique() == 117
    assert sorted(prn["session"].unique()) == list(range(1, 7))
    assert 0.02 * 702 < 702 - len(prn) < 0.09 * 702  # about 5 % of sessions missed
    assert prn["session"].dtype == np.int64
    assert prn["condition"].dtype == np.int64
    assert pd.api.types.is_string_dtype(prn["therapist"])
    assert pd.api.types.is_string_dtype(prn["patient"])
    assert prn["patient"].iloc[0] == "P001"
    assert prn[RATINGS].dtypes.eq(np.float64).all()
    assert not prn.isna().any().any()
    assert prn.groupby("therapist")["condition"].first().value_counts().to_dict() == {
        0: 20,
        1: 20,
    }


def test_prn_attrs(prn: pd.DataFrame) -> None:
    params = prn.attrs["params"]
    assert params["n_therapists"] == 40
    assert params["n_patients"] == 117
    assert params["n_sessions"] == 6
    assert params["p_missing"] == 0.05
    fields = {k: v for k, v in params.items() if not k.startswith(("n_", "p_missing"))}
    assert PRNParams(**fields) == PRNParams()
    meta = prn.attrs["dataset"]
    assert meta["name"] == "prn"
    assert meta["simulated"] is True
    assert "simulated" in meta["description"].lower()
    assert "not public" in meta["description"]
    assert isinstance(meta["seed"], int)


def test_prn_is_reproduced_by_the_generator(prn: pd.DataFrame) -> None:
    # The bundled file is exactly simulate_prn at the recorded parameters and seed,
    # rounded to the recorded number of decimals.
    params = dict(prn.attrs["params"])
    sizes = {k: params.pop(k) for k in ("n_therapists", "n_patients", "n_sessions")}
    p_missing = params.pop("p_missing")
    fresh = simulate_prn(
        **sizes, params=params, p_missing=p_missing, rng=prn.attrs["dataset"]["seed"]
    )
    decimals = prn.attrs["dataset"]["rounding_decimals"]
    pd.testing.assert_frame_equal(prn.drop(columns=RATINGS), fresh.drop(columns=RATINGS))
    np.testing.assert_allclose(prn[RATINGS], fresh[RATINGS], atol=0.5 * 10**-decimals + 1e-9)
    assert fresh.attrs["params"] == prn.attrs["params"]


def test_load_returns_fresh_copy() -> None:
    first = datasets.load("prn")
    first.loc[0, "wellbeing"] = -999.0
    first.attrs["params"]["gamma13"] = 99.0
    second = datasets.load("prn")
    assert second.loc[0, "wellbeing"] != -999.0
    assert second.attrs["params"]["gamma13"] == PRNParams().gamma13


def test_list_datasets(prn: pd.DataFrame) -> None:
    listing = datasets.list_datasets()
    assert list(listing.columns) == ["name", "description", "n_rows", "columns"]
    row = listing.set_index("name").loc["prn"]
    assert row["n_rows"] == len(prn)
    assert row["columns"] == ", ".join(COLUMNS)
    assert "simulated" in row["description"].lower()


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"Unknown data set 'prm'\. Did you mean 'prn'\? Valid"):
        datasets.load("prm")
    with pytest.raises(ValueError, match=r"Valid names: 'prn'"):
        datasets.load("sleepstudy")


def test_name_must_be_string() -> None:
    with pytest.raises(TypeError, match=r"`name` must be a string"):
        datasets.load(1)  # type: ignore[arg-type]


def test_files_are_package_data() -> None:
    files = resources.files("alliancestats.datasets")
    assert files.joinpath("prn.csv").is_file()
    meta = json.loads(files.joinpath("prn.json").read_text(encoding="utf-8"))
    assert meta["file"] == "prn.csv"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = config["tool"]["setuptools"]["package-data"]["alliancestats"]
    assert {"datasets/*.csv", "datasets/*.json"} <= set(package_data)
