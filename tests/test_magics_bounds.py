"""Issue 10, point 5: `%aiaas` never evaluates user text, bounds every number when it parses the
line, and fails on a bad scheduler (address, file or peer) with one line, within its timeout.

Everything runs through a real IPython shell (the session's `shell` fixture), real sockets on
loopback and a real `dask scheduler` process (the session's `cli_cluster`)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from IPython.core.error import UsageError

from aiaas_jupyter.errors import ClusterError, InvalidNameError


# -- no {expr} / $var expansion ------------------------------------------------------------
@pytest.mark.parametrize("text", ["{1+1}", "$x", "{x}", "$x{1+1}"])
def test_line_text_is_never_expanded(shell, text):
    """`%aiaas models show {1+1}` looks up the literal `{1+1}`, not model "2"."""
    shell.user_ns["x"] = "iris"
    with pytest.raises(InvalidNameError) as info:
        shell.run_line_magic("aiaas", f"models show {text}")
    assert repr(text) in str(info.value) or text in str(info.value)
    assert "\n" not in str(info.value)


def test_cell_magic_line_is_never_expanded(shell):
    shell.user_ns["x"] = "gpt"
    with pytest.raises(InvalidNameError) as info:
        shell.run_cell_magic("aiaas", "ask {x}", "a prompt with {x} in it\n")
    assert "{x}" in str(info.value)
    result = shell.run_cell("%aiaas models show {x}")  # the notebook path: the cell transformer
    assert isinstance(result.error_in_exec, InvalidNameError) and "{x}" in str(result.error_in_exec)


# -- numbers and URLs bounded at parse time ------------------------------------------------
@pytest.mark.parametrize("line, option", [
    ("jobs --limit 99999999999999999999", "--limit"),
    ("jobs --limit 0", "--limit"),
    ("jobs --limit " + "9" * 5000, "--limit"),
    ("connect tcp://127.0.0.1:1 --timeout inf", "--timeout"),
    ("connect tcp://127.0.0.1:1 --timeout nan", "--timeout"),
    ("connect tcp://127.0.0.1:1 --timeout 1e300", "--timeout"),
    ("connect tcp://127.0.0.1:1 --timeout 0", "--timeout"),
    ("connect tcp://127.0.0.1:1 --timeout 86401", "--timeout"),
    ("connect --workers 0", "--workers"),
    ("connect --workers 1025", "--workers"),
    ("connect --threads 99999999999", "--threads"),
    ("connect --gpus -1", "--gpus"),
    ("result j1 --timeout inf", "--timeout"),
    ("result j1 --timeout 1e300", "--timeout"),
    ("result j1 -o 'not a name'", "--out"),
    ("models alias m 2147483648 prod", "version"),
    ("models alias m 0 prod", "version"),
    ("models alias m -1 prod", "version"),
    ("map abs [1] --chunksize 0", "--chunksize"),
    ("map abs [1] --chunksize 10000000", "--chunksize"),
    ("map abs [1] --retries 101", "--retries"),
    ("map abs [1] --gpus 257", "--gpus"),
    ("map abs [1] -o for", "--out"),
    ("map abs range(10000001)", "more than 10,000,000 items"),
    ("map abs range(-99999999999999999999999,99999999999999999999999)", "more than 10,000,000 items"),
    ("map abs range(0,10,0)", "step of a range must not be 0"),
    ("endpoints add e --url http://127.0.0.1:99999 --protocol v2", "--url"),
    ("endpoints add e --url http://127.0.0.1:0 --protocol v2", "--url"),
    ("endpoints add e --url http://h:port --protocol v2", "--url"),
    ("endpoints add e --url ftp://h/x --protocol v2", "--url"),
    ("endpoints add e --url http:///v1 --protocol v2", "--url"),
    ("endpoints show e -o 1x", "--out"),
    ("predict m --input [1] -o a.b", "--out"),
])
def test_numbers_and_urls_are_bounded_when_parsed(shell, line, option):
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("aiaas", line)
    message = str(info.value)
    assert option in message and "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize("option, value", [
    ("--epochs", "0"), ("--epochs", "1000001"), ("--batch-size", "0"), ("--lr", "inf"), ("--lr", "nan"),
    ("--lr", "0"), ("--seed", "-1"), ("--seed", "4294967296"), ("--gpus", "257"), ("--test-size", "nan"),
    ("--test-size", "1"), ("-o", "'a b'"),
])
def test_train_options_are_bounded(shell, option, value):
    with pytest.raises(UsageError, match=f"argument (-o/)?{option}"):
        shell.run_cell_magic("aiaas", f"train --data d --target t {option} {value}", "model = None\n")


def test_bounds_keep_their_edges(shell):
    """The largest values accepted still parse (only the magic's own parser: nothing runs)."""
    from aiaas_jupyter.magics.parser import parse

    args = parse("connect tcp://127.0.0.1:1 --timeout 86400 --workers 1024 --threads 1 --gpus 0")
    assert (args.timeout, args.workers, args.threads, args.gpus) == (86400.0, 1024, 1, 0)
    assert parse("models alias m 2147483647 prod").version == 2**31 - 1
    assert parse("jobs --limit 1000000").limit == 10**6
    assert parse("endpoints add e --url https://h:65535/v1 --protocol openai").url == "https://h:65535/v1"
    train = parse("train --data d --target t --seed 4294967295 --lr 0.001 --epochs 1 --batch-size 1")
    assert (train.seed, train.lr, train.epochs, train.batch_size) == (2**32 - 1, 0.001, 1, 1)


# -- schedulers: bad addresses, files and peers fail in one line, in time -------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_peer():
    """A loopback TCP service that is not a scheduler: it talks HTTP, hangs up, or says nothing."""
    servers, accepted = [], []

    def start(mode: str) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        servers.append(server)

        def serve():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                accepted.append(conn)
                if mode == "http":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 40)
                if mode in ("http", "hangup"):
                    conn.close()

        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for s in servers + accepted:
        s.close()


def _connect_line(shell, line: str) -> tuple[ClusterError, float]:
    start = time.monotonic()
    with pytest.raises(ClusterError) as info:
        shell.run_line_magic("aiaas", line)
    elapsed = time.monotonic() - start
    assert "\n" not in str(info.value)
    return info.value, elapsed


@pytest.mark.parametrize("mode, words", [("silent", "within 1 s (TimeoutError)"), ("http", "not as a Dask scheduler"),
                                         ("hangup", "could not reach")])
def test_a_peer_that_is_not_a_scheduler_fails_within_the_timeout(shell, fake_peer, mode, words):
    """Before: a silent peer hung `distributed.Client` for ever; an HTTP one raised MemoryError."""
    address = fake_peer(mode)
    shell.run_line_magic("aiaas", "jobs --limit 1")  # the session cluster is still the one connected
    error, elapsed = _connect_line(shell, f"connect {address} --timeout 1")
    assert words in str(error) and elapsed < 2.5, (str(error), elapsed)
    assert shell.run_line_magic("aiaas", "status").rows  # a failed connect keeps the cluster we had


def test_unreachable_address_fails_within_the_timeout(shell):
    error, elapsed = _connect_line(shell, f"connect tcp://127.0.0.1:{_closed_port()} --timeout 0.5")
    assert "could not reach" in str(error) and "within 0.5 s" in str(error)
    assert 0.4 < elapsed < 2.0, elapsed


@pytest.mark.parametrize("address, words", [
    ("ucx://127.0.0.1:8786", "ucx:// protocol is not supported"),
    ("inproc://x", "inproc:// protocol is not supported"),
    ("tls://127.0.0.1:8786", "tls:// needs TLS settings"),
    ("tcp://127.0.0.1:99999", "port from 1 to 65535"),
    ("tcp://:8786", "needs a host"),
    ("tcp://h:port", "bad scheduler address"),
    ("'tcp://a b:1'", "one word"),
])
def test_bad_addresses_fail_at_once(shell, address, words):
    error, elapsed = _connect_line(shell, f"connect {address} --timeout 5")
    assert words in str(error) and elapsed < 1.0, (str(error), elapsed)


@pytest.mark.parametrize("content, words", [
    (b"not json", "is not JSON"), (b'{"type": "Scheduler"}', 'no scheduler "address"'), (b"[1, 2]", "no scheduler"),
    (b'{"address": 8786}', "no scheduler"), (b"\xff\xfe\x00", "cannot read"),
    (b'{"address": "ucx://127.0.0.1:1"}', "ucx:// protocol is not supported"),
])
def test_bad_scheduler_files_fail_at_once(shell, tmp_path, content, words):
    """Before: a file that is not a scheduler's raised AssertionError from inside distributed."""
    path = tmp_path / "scheduler.json"
    path.write_bytes(content)
    error, elapsed = _connect_line(shell, f"connect --scheduler-file {path} --timeout 5")
    assert words in str(error) and elapsed < 1.0, (str(error), elapsed)


def test_scheduler_file_that_is_a_directory_or_missing(shell, tmp_path):
    assert "is not a file" in str(_connect_line(shell, f"connect --scheduler-file {tmp_path}")[0])
    assert "does not exist" in str(_connect_line(shell, f"connect --scheduler-file {tmp_path}/nope.json")[0])


def test_scheduler_file_of_a_stopped_scheduler_fails_within_the_timeout(shell, tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({"type": "Scheduler", "address": f"tcp://127.0.0.1:{_closed_port()}"}))
    error, elapsed = _connect_line(shell, f"connect --scheduler-file {path} --timeout 0.5")
    assert "could not reach" in str(error) and str(path) in str(error) and elapsed < 2.0


def test_a_real_scheduler_still_connects_by_address_and_file(cli_cluster, tmp_path):
    """The probe lets a real `dask scheduler` through, both ways in."""
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=tmp_path / "home")
    try:
        table = client.connect(cli_cluster["address"], timeout=10)
        assert client.cluster_summary()["n_workers"] == 2 and table.rows
        client.connect(scheduler_file=cli_cluster["scheduler_file"], timeout=10)
        assert client.cluster_summary()["scheduler"] == cli_cluster["address"]
    finally:
        client.disconnect()


# -- the Python API refuses the same numbers ---------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    ({"timeout": float("inf")}, "timeout"), ({"timeout": float("nan")}, "timeout"), ({"timeout": 1e300}, "timeout"),
    ({"timeout": -1}, "timeout"), ({"timeout": "forever"}, "timeout"), ({"timeout": True}, "timeout"),
    ({"n_workers": 0}, "n_workers"), ({"n_workers": 10**30}, "n_workers"), ({"n_workers": 2.5}, "n_workers"),
    ({"threads_per_worker": -3}, "threads_per_worker"), ({"gpus": 10**9}, "gpus"), ({"gpus": "all"}, "gpus"),
])
def test_facade_connect_refuses_bad_numbers_before_starting_anything(tmp_path, kwargs, words):
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=tmp_path / "home")
    with pytest.raises(ClusterError, match=words) as info:
        client.connect(**kwargs)
    assert "\n" not in str(info.value)
    assert client.dask is None and client.cluster is None  # nothing was started


# -- a train cell's own errors are the user's, in one line with their lines under it ----------
@pytest.mark.parametrize("cell, words", [("hi {x} $x\n", "syntax error: invalid syntax (line 1)"),
                                         ("x = 1\nmodel = undefined_name\n", "raised NameError")])
def test_a_failing_train_cell_is_one_line_with_its_own_lines(shell, capsys, cell, words):
    """Found by the fuzz test: the cell's SyntaxError/NameError came out raw, through our frames."""
    from aiaas_jupyter.errors import TrainCellError

    shell.user_ns["model"] = "an earlier model"
    with pytest.raises(TrainCellError) as info:
        shell.run_cell_magic("aiaas", "train --data d --target t", cell)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert shell.user_ns["model"] == "an earlier model"  # set aside and put back
    shell.run_cell("%%aiaas train --data d --target t\n" + cell)
    shown = capsys.readouterr().out
    assert shown.count("TrainCellError") == 1 and "<aiaas train cell" in shown and "core.py" not in shown, shown
