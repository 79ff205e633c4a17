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


def test_an_integer_column_with_its_first_gap_far_down_reads_as_numbers_with_gaps(shell, tmp_path):
    """Dask types a CSV's columns from its first rows: an integer column whose first missing value
    is at row 5,000 was int64, and the partition holding the gap failed. Read as float64 with the gaps."""
    n = np.arange(8000, dtype="float64")
    n[[5000, 7000]] = np.nan
    ints = pd.array(n, dtype="Int64")  # written as 0, 1, 2, ... and empty: an integer column with gaps
    pd.DataFrame({"n": ints, "x": np.linspace(0, 1, 8000)}).to_csv(tmp_path / "late-gap.csv", index=False)
    assert open(tmp_path / "late-gap.csv").read().splitlines()[2].startswith("1,")
    with capture_output():
        result = shell.run_cell_magic("aiaas", f"preprocess --input {tmp_path}/late-gap.csv --output late", "df = df\n")
    assert result.dtypes["n"] == "float64" and result.nulls["n"] == 2 and result.rows_out == 8000
    assert shell.user_ns["late"]["n"].sum().compute() == n[~np.isnan(n)].sum()


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


# -- functions of the notebook in preprocess cells, and one clear error ------------------------
_ANSI = __import__("re").compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def texts(shell):
    """A frame with a text column holding nulls, and notebook functions defined in a cell."""
    frame = pd.DataFrame({"x": [1.0, -2.0, 3.0, None, 5.0, 6.0],
                          "t": ["  A b", "C ", None, "d E", "F", "g"]})
    shell.user_ns["raw_texts"] = frame
    result = shell.run_cell("THRESHOLD = 2.5\n"
                            "def clean(part):\n"
                            "    return part.dropna()\n"
                            "def norm(s):\n"
                            "    return s.strip().lower()\n"
                            "def big(v):\n"
                            "    return v > THRESHOLD\n"
                            "def as_int(v):\n"
                            "    return int(v) * 2\n"
                            "def refuse(s):\n"
                            "    raise RuntimeError(f'refused {s!r}')\n")
    assert result.success
    return frame


def _expected_clean(frame):
    out = frame.dropna().copy()
    out["t"] = out["t"].map(lambda s: s.strip().lower())
    return out


def test_cell_calls_notebook_functions(shell, texts, capsys):
    """map_partitions(clean) and .apply(norm): norm fails on Dask's made-up rows (<NA>), so the
    meta comes from real rows; no "You did not provide metadata" warning reaches the cell."""
    cell = "df = df.map_partitions(clean)\ndf['t'] = df['t'].apply(norm)\ndf['big'] = df['x'].map(big)\n"
    shell.run_cell(f"%%aiaas preprocess --input raw_texts --output cleaned\n{cell}")
    captured = capsys.readouterr()
    assert "Error" not in captured.out and "metadata" not in captured.err, (captured.out, captured.err)
    got = shell.user_ns["cleaned"].compute()
    expected = _expected_clean(texts)
    expected["big"] = expected["x"] > 2.5
    assert got["t"].tolist() == expected["t"].tolist() == ["a b", "c", "f", "g"]
    assert got["big"].tolist() == expected["big"].tolist() and str(got["big"].dtype) == "bool"


def test_per_partition_cell_takes_the_notebook_names_it_uses(shell, texts):
    cell = "df = clean(df)\ndf['t'] = df['t'].map(norm)\ndf['big'] = df['x'] > THRESHOLD\n"
    with capture_output():
        result = shell.run_cell_magic("aiaas", "preprocess --input raw_texts --output pp_texts --per-partition", cell)
    got = shell.user_ns["pp_texts"].compute()
    assert result.rows_out == 4 and got["t"].tolist() == ["a b", "c", "f", "g"]
    assert got["big"].tolist() == [False, False, True, True]


def test_python_api_function_body_with_a_notebook_function(aiaas, shell, texts):
    norm = shell.user_ns["norm"]
    result = aiaas.preprocess(texts, "api_texts", body=lambda df: df.dropna().assign(t=lambda d: d["t"].apply(norm)))
    assert result.frame.compute()["t"].tolist() == ["a b", "c", "f", "g"]


@pytest.mark.parametrize("cell, flags, first_line, user_line, label", [
    # a bad column: raised in the kernel while the cell builds the graph
    ("df = df[df['nope'] > 1]\n", "",
     "PreprocessError: the preprocess cell raised KeyError: 'nope' (hint: columns of the input: x, t)",
     "df = df[df['nope'] > 1]", "kernel"),
    # a notebook function failing on a worker (the NaN of row 3): the user's line from <dynamic-code>
    ("df['y'] = df['x'].apply(as_int)\n", "",
     "PreprocessError: preprocess → failed_out: a partition failed on a worker: ValueError: "
     "cannot convert float NaN to integer", "return int(v) * 2", "worker"),
    # failing on the real rows too, during meta inference in the kernel
    ("df = df.dropna()\ndf['t'] = df['t'].apply(refuse)\n", "",
     "PreprocessError: the preprocess cell raised RuntimeError: refused '  A b'",
     "raise RuntimeError(f'refused {s!r}')", "kernel"),
    # no real rows to infer from (the filter keeps none): Dask's inference error, said in one line
    ("df = df[df['x'] > 100]\ndf['t'] = df['t'].apply(norm)\n", "",
     "PreprocessError: Dask could not infer the output in `apply` from sample rows: AttributeError: "
     "'NAType' object has no attribute 'strip' (hint: no real rows reach it to infer from: pass meta=",
     "return s.strip().lower()", "kernel"),
    # a --per-partition cell on the workers
    ("df['y'] = df['x'].apply(as_int)\n", "--per-partition",
     "PreprocessError: preprocess → failed_out: a partition failed on a worker: ValueError", "return int(v) * 2",
     "worker"),
    # found by the meta inference in the kernel already (it runs the cell on sample rows)
    ("df['y'] = undefined_name(df)\n", "--per-partition",
     "PreprocessError: the preprocess cell raised NameError: name 'undefined_name' is not defined "
     "(hint: a --per-partition cell sees df, pd, np and the notebook names it uses", "df['y'] = undefined_name(df)",
     "kernel"),
    ("df = df +\n", "", "PreprocessError: the preprocess cell has a syntax error: invalid syntax (line 1)",
     "df = df +", "kernel"),
])
def test_any_preprocess_failure_is_one_line_and_binds_nothing(shell, texts, capsys, cell, flags, first_line,
                                                               user_line, label):
    shell.user_ns.pop("failed_out", None)
    shell.run_cell(f"%%aiaas preprocess --input raw_texts --output failed_out {flags}\n{cell}")
    lines = [ln for ln in _ANSI.sub("", capsys.readouterr().out).splitlines() if ln.strip()]
    assert lines[0].startswith(first_line), lines
    where = "--- remote traceback (on the worker) ---" if label == "worker" else "--- traceback (in the kernel) ---"
    assert lines[1] == where, lines
    assert any(ln.strip() == user_line for ln in lines[2:]), lines  # the user's own line is shown
    assert not any("site-packages" in ln for ln in lines), lines    # library frames are left out
    assert "failed_out" not in shell.user_ns and "df" not in shell.user_ns


def test_python_api_failure_keeps_the_traceback(aiaas, texts):
    from aiaas_jupyter.errors import PreprocessError

    def body(df):
        return df.assign(z=df["x"].map(lambda v: v.missing_attribute))

    with pytest.raises(PreprocessError) as info:
        aiaas.preprocess(texts, "never", body=body)
    assert isinstance(info.value, DataError) and info.value.where == "kernel"
    assert "AttributeError: 'float' object has no attribute 'missing_attribute'" in str(info.value)
    assert "return df.assign(z=df[\"x\"].map(lambda v: v.missing_attribute))" in info.value.remote_traceback


def test_save_failure_is_one_line_and_leaves_nothing(shell, texts, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a directory")
    target = tmp_path / "a-file" / "out.parquet"
    shell.run_cell(f"%%aiaas preprocess --input raw_texts --output saved_out --save {target}\ndf = df.dropna()\n")
    lines = [ln for ln in _ANSI.sub("", capsys.readouterr().out).splitlines() if ln.strip()]
    assert lines[0].startswith(f"PreprocessError: could not save the result to {target}: "), lines
    assert "saved_out" not in shell.user_ns and not target.exists()


def test_unreadable_input_is_one_line(shell, tmp_path, capsys):
    """A damaged Parquet file (read in the kernel for the schema) and CSV files whose column changes
    type in a later file (found by the worker reading it): one PreprocessError line each."""
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "part-0.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(5)))
    (tmp_path / "part-1.csv").write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(5)))
    for source, first in ((tmp_path / "broken.parquet", f"PreprocessError: cannot read the input '{tmp_path}/broken.parquet': "),
                          (tmp_path / "part-*.csv", "PreprocessError: preprocess → unread: a partition failed on a worker: "
                                                    "ValueError: Mismatched dtypes found in `pd.read_csv`/`pd.read_table`. …")):
        shell.run_cell(f"%%aiaas preprocess --input {source} --output unread\ndf = df.dropna()\n")
        lines = [ln for ln in _ANSI.sub("", capsys.readouterr().out).splitlines() if ln.strip()]
        assert lines[0].startswith(first), lines
        assert lines[1].startswith("---") and "unread" not in shell.user_ns
