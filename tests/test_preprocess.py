"""%%aiaas preprocess on a real LocalCluster: CSV globs, in-kernel frames, per-partition pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from IPython.utils.capture import capture_output

from aiaas_jupyter.errors import DataError


@pytest.fixture
def raw_csvs(tmp_path):
    """Three CSV files with seeded missing values (seed 0)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(5, 2, size=300),
                          "cat": rng.choice(["a", "b", "c"], size=300), "label": rng.integers(0, 2, 300)})
    holes = rng.random((300, 2)) < 0.05
    frame.loc[holes[:, 0], "x"] = np.nan
    frame.loc[holes[:, 1], "y"] = np.nan
    for i in range(3):
        frame.iloc[i * 100:(i + 1) * 100].to_csv(tmp_path / f"raw-{i}.csv", index=False)
    return tmp_path, frame


def test_read_csv_dropna_save(shell, raw_csvs):
    d, frame = raw_csvs
    out = d / "clean.parquet"
    with capture_output() as cap:
        shell.run_cell(f"%%aiaas preprocess --input {d}/raw-*.csv --output clean --save {out}\ndf = df.dropna()\n")
    assert not cap.stderr, cap.stderr
    result = shell.last_execution_result.result
    expected = frame.dropna()
    assert (result.rows_in, result.rows_out) == (300, len(expected))
    assert result.partitions == 3 and result.nulls == {"x": 0, "y": 0, "cat": 0, "label": 0}
    assert result.dtypes["x"] == "float64" and result.dtypes["label"] == "int64"
    # bound in the notebook, persisted on the cluster, equal to pandas doing the same
    clean = shell.user_ns["clean"].compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(clean, expected.reset_index(drop=True), check_dtype=False)
    saved = pd.read_parquet(out)
    assert len(saved) == len(expected) and list(saved.columns) == ["x", "y", "cat", "label"]
    # the summary tells the story in one table
    assert f"300 rows in, {len(expected)} rows out, 4 columns" in repr(result)
    assert "<table>" in result._repr_html_() and str(out) in repr(result)
    # `df` of the notebook is left alone
    assert "df" not in shell.user_ns or not hasattr(shell.user_ns.get("df"), "dask")


def test_normalize_numeric_columns_from_variable(shell, raw_csvs):
    _, frame = raw_csvs
    shell.user_ns["raw"] = frame.dropna()
    cell = ("num = [c for c in df.select_dtypes('number').columns if c != 'label']\n"
            "df[num] = (df[num] - df[num].mean()) / df[num].std()\n")
    with capture_output():
        result = shell.run_cell_magic("aiaas", "preprocess --input raw --output normed", cell)
    normed = shell.user_ns["normed"].compute()
    assert result.rows_in == result.rows_out == len(frame.dropna())
    assert normed["x"].mean() == pytest.approx(0, abs=1e-9) and normed["y"].std() == pytest.approx(1)
    assert normed["label"].tolist() == frame.dropna()["label"].tolist()


def test_per_partition_runs_pandas_code(shell, raw_csvs):
    d, frame = raw_csvs
    cell = "df = df.fillna(0)\ndf['ratio'] = df['x'] / (df['y'].abs() + 1)\ndf = df[df['cat'] != 'c']\n"
    with capture_output():
        result = shell.run_cell_magic("aiaas", f"preprocess --input {d}/raw-*.csv --output pp --per-partition", cell)
    expected = frame.fillna(0)
    expected["ratio"] = expected["x"] / (expected["y"].abs() + 1)
    expected = expected[expected["cat"] != "c"]
    got = shell.user_ns["pp"].compute()
    assert result.rows_out == len(expected) and result.partitions == 3
    np.testing.assert_allclose(got["ratio"].to_numpy(), expected["ratio"].to_numpy())


def test_python_api_with_a_function(aiaas, raw_csvs):
    d, frame = raw_csvs
    result = aiaas.preprocess(str(d / "raw-*.csv"), "api_out", body=lambda df: df.dropna(subset=["x"]))
    assert result.rows_out == int(frame["x"].notna().sum())


@pytest.mark.parametrize("args, cell, message", [
    ("--input /nonexistent/*.csv --output o", "pass", "no file matches"),
    ("--input nosuchvar --output o", "pass", "no file matches 'nosuchvar' and no variable of that name"),
    ("--input {d}/raw-*.csv --output 'not valid'", "pass", "must be a Python identifier"),
    ("--input {d}/raw-*.csv --output o", "df = 3", "must leave `df` a DataFrame"),
])
def test_bad_preprocess_input(shell, raw_csvs, capsys, args, cell, message):
    d, _ = raw_csvs
    args = args.format(d=d)
    with pytest.raises(Exception, match=message):
        shell.run_cell_magic("aiaas", f"preprocess {args}", cell)
    shell.run_cell(f"%%aiaas preprocess {args}\n{cell}")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines


def test_unreadable_kind_of_file(shell, tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="do not know how to read"):
        shell.run_cell_magic("aiaas", f"preprocess --input {tmp_path}/x.json --output o", "pass")


def test_per_partition_leaves_its_input_alone(aiaas, raw_csvs):
    """A per-partition cell gets a copy: the persisted input frame keeps its columns."""
    d, _ = raw_csvs
    ns: dict = {}
    aiaas.preprocess(str(d / "raw-*.csv"), "clean", "df = df.dropna()", namespace=ns)
    aiaas.preprocess("clean", "featured", "df['c'] = df['x'] * df['y']", namespace=ns, per_partition=True)
    assert list(ns["clean"].compute().columns) == ["x", "y", "cat", "label"]
    assert list(ns["featured"].compute().columns) == ["x", "y", "cat", "label", "c"]
