"""%aiaas through a real IPython InteractiveShell: help, parsing, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError


def run_and_capture(shell, capsys, source: str) -> list[str]:
    """Run *source* as a cell the way a notebook does; return the non-empty output lines."""
    import re

    shell.run_cell(source)
    out = capsys.readouterr()
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.out + out.err)
    return [line for line in text.splitlines() if line.strip()]


def test_help_and_question_mark(shell, capsys):
    shell.run_line_magic("aiaas", "--help")
    text = capsys.readouterr().out
    assert "usage: %aiaas" in text and "preprocess" in text and "train" in text and "models" in text
    shell.run_line_magic("aiaas", "train --help")
    text = capsys.readouterr().out
    for opt in ("--data", "--target", "--test-size", "--gpus", "--name", "--block", "--epochs",
                "--batch-size", "--lr", "-o JOBVAR"):
        assert opt in text
    shell.run_cell("%aiaas?")
    # the pager prints the docstring, which is the full usage
    assert "usage: %aiaas" in capsys.readouterr().out


@pytest.mark.parametrize("line, expected", [
    ("", "missing SUBCOMMAND"),
    ("frobnicate", "invalid choice: 'frobnicate'"),
    ("connect --bogus", "unrecognized arguments: --bogus"),
    ("connect --workers many", "expected a whole number"),
    ("models show", "the following arguments are required: NAME[:VERSION|@ALIAS]"),
    ("jobs --limit -3", "expected a whole number from 1 to 1000000"),
    ("models show 'unbalanced", "cannot parse the line"),
])
def test_bad_lines_are_one_line_usage_errors(shell, capsys, line, expected):
    with pytest.raises(UsageError, match=None) as info:
        shell.run_line_magic("aiaas", line)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    lines = run_and_capture(shell, capsys, f"%aiaas {line}")
    assert len(lines) == 1 and lines[0].startswith("UsageError:"), lines


def test_cell_subcommands_need_a_cell(shell):
    with pytest.raises(UsageError, match="write it as %%aiaas train"):
        shell.run_line_magic("aiaas", "train --data x --target y")


def test_train_option_validation(shell):
    with pytest.raises(UsageError, match="between 0 and 1"):
        shell.run_cell_magic("aiaas", "train --data x --target y --test-size 1.5", "model = 1")
    with pytest.raises(UsageError, match="not allowed with argument --block"):
        shell.run_cell_magic("aiaas", "train --data x --target y --block -o j", "model = 1")


def test_quoted_arguments_are_kept_whole(shell, tmp_path, capsys):
    """arg_split keeps a quoted path with spaces as one argument."""
    import pandas as pd

    d = tmp_path / "dir with space"
    d.mkdir()
    pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", "y", None]}).to_csv(d / "part-1.csv", index=False)
    result = shell.run_cell_magic("aiaas", f'preprocess --input "{d}/part-*.csv" --output quoted',
                                  "df = df.dropna()")
    assert (result.rows_in, result.rows_out) == (3, 1)
    assert shell.user_ns["quoted"].compute().to_dict("list") == {"a": [1.0], "b": ["x"]}


def test_load_ext_is_light():
    """Loading the extension imports neither dask, torch, scikit-learn nor pandas."""
    code = ("import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
            "sh = InteractiveShell.instance()\nsh.run_line_magic('load_ext', 'aiaas_jupyter')\n"
            "assert 'aiaas' in sh.magics_manager.magics['line'] and 'aiaas' in sh.magics_manager.magics['cell']\n"
            "heavy = [m for m in ('dask', 'distributed', 'torch', 'sklearn', 'pandas', 'numpy', 'starlette', 'httpx',\n"
            "                      'aiaas_jupyter.registry') if m in sys.modules]\n"
            "print(','.join(heavy) or 'none')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_trailing_comment_is_ignored(shell):
    from aiaas_jupyter.magics.parser import strip_comment

    assert strip_comment("models show a  # the prod one") == "models show a  "
    assert strip_comment("connect '#not-a-comment' x") == "connect '#not-a-comment' x"
    table = shell.run_line_magic("aiaas", "jobs --limit 1  # newest only")
    assert len(table.rows) <= 1


def test_unreachable_scheduler_is_one_line(shell, capsys):
    lines = run_and_capture(shell, capsys, "%aiaas connect tcp://127.0.0.1:9 --timeout 1")
    assert len(lines) == 1 and lines[0].startswith("ClusterError") and "within 1 s" in lines[0], lines
