"""Where a registry home's model server is, and starting/stopping it (docs/serving.md).

``HOME/server/`` holds ``server.json`` (url, pid, started, tls, version; written by the server
once it listens), ``token`` (bearer token, mode 0600, new at every start), ``deployments.json``
and ``server.log``. The server runs as its own detached process (new session), so it outlives
the kernel that started it; any later kernel finds it again through these files. While the
kernel lives, a daemon thread waits on the server it started, so however the server ends
(``stop_server``, ``aiaas stop`` from a shell, its own idle or home watchdog) it never stays a
zombie of the kernel. Standard library only: a kernel asking "is there a server?" should not
import the web stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .. import malloc_env
from ..clock import now_iso
from ..errors import ServerNotRunningError, ServingError
from ..registry.private_files import make_private_dir, read_private, write_private

_children: dict[int, subprocess.Popen] = {}  # servers this process started and still waits on


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """A running (or recorded) server. The token is read from its file on use, never stored."""

    url: str                      # "http://127.0.0.1:PORT" (https when tls)
    pid: int
    started: str                  # ISO-8601 UTC
    tls: bool
    version: str                  # aiaas-jupyter version of the server
    home: Path
    cert: str | None = None       # the TLS certificate file (to verify against), when tls

    @property
    def token(self) -> str:
        return read_token(self.home)

    @property
    def verify(self) -> str | bool:
        """What to give httpx's ``verify=``: the server's certificate file for a self-signed one."""
        return self.cert if self.tls and self.cert else True

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def __repr__(self) -> str:
        return f"<ServerInfo {self.url} pid={self.pid} version={self.version}>"


def _home(home) -> Path:
    if home is None:
        from ..registry import default_home

        return default_home()
    return Path(home).expanduser()


def server_dir(home=None) -> Path:
    return _home(home) / "server"


def read_token(home=None) -> str:
    """The server's bearer token. A symlink (or anything but a regular file) at the token path
    is refused: whoever planted ``token -> ~/.ssh/id_rsa`` must not get that file sent as a
    bearer token to the URL in ``server.json``."""
    path = server_dir(home) / "token"
    try:
        token = read_private(path, 4096).decode("ascii").strip()
    except FileNotFoundError:
        raise ServerNotRunningError(f"no model server token at {path}",
                                    hint="start the server first (%aiaas deploy or `aiaas serve`)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ServingError(f"refusing the model server token at {path}: not a regular file of ours "
                           f"({getattr(e, 'strerror', None) or 'not ASCII'})",
                           hint="remove it; the server writes a new one when it starts "
                                "(`aiaas stop`, then deploy)") from None
    if not token:
        raise ServerNotRunningError(f"the model server token at {path} is empty",
                                    hint="start the server again (`aiaas stop`, then %aiaas deploy)")
    return token


#: the largest pid Linux can hand out (``/proc/sys/kernel/pid_max`` tops out at 2**22). A pid
#: outside 1..this in ``server.json`` is damage: ``os.kill`` of 10**30 raises OverflowError, and
#: of -1 or 0 would signal every process of the user (``aiaas stop``) or the whole group.
MAX_PID = 2**22
_SERVER_JSON_LIMIT = 64 * 1024


def server_info_problem(home=None) -> str | None:
    """Why ``server.json`` is not usable (None when it is fine or absent), for the sidebar."""
    try:
        _parse_server_info(home)
    except ValueError as e:
        return str(e)
    return None


def read_server_info(home=None) -> ServerInfo | None:
    """``server.json`` as a ServerInfo, without checking that the server is alive. A missing or
    damaged file (not JSON, not an object, missing or ill-typed fields, pid out of range) means
    no server: see :func:`server_info_problem` for why."""
    try:
        return _parse_server_info(home)
    except ValueError:
        return None


def _parse_server_info(home) -> ServerInfo | None:
    path = server_dir(home) / "server.json"
    try:
        raw = read_private(path, _SERVER_JSON_LIMIT + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"{path} is not readable: {e.strerror}") from None
    try:
        if len(raw) > _SERVER_JSON_LIMIT:
            raise ValueError("larger than 64 KiB")
        d = json.loads(raw)
        if not isinstance(d, dict):
            raise ValueError(f"a JSON {type(d).__name__}, not an object")
        url, pid, cert = d.get("url"), d.get("pid"), d.get("cert")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048:
            raise ValueError("no http(s) url")
        if isinstance(pid, bool) or not isinstance(pid, int) or not 1 <= pid <= MAX_PID:
            raise ValueError(f"no pid from 1 to {MAX_PID}")
        if cert is not None and not isinstance(cert, str):
            raise ValueError("cert is not a path")
        started, version = d.get("started", ""), d.get("version", "")
        return ServerInfo(url=url, pid=pid, started=started if isinstance(started, str) else "",
                          tls=d.get("tls") is True, version=version if isinstance(version, str) else "",
                          home=_home(home), cert=cert)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is damaged ({str(e)[:200]}); the server is treated as not running") from None


def pid_alive(pid: int) -> bool:
    """Whether process *pid* runs (not a zombie). Also used for the kernels behind recorded jobs."""
    if isinstance(pid, bool) or not isinstance(pid, int) or not 1 <= pid <= MAX_PID:
        return False  # 0 and -1 would "find" our group / every process; 10**30 overflows os.kill
    proc = _children.get(pid)
    if proc is not None and proc.returncode is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is not a server
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _probe(info: ServerInfo, path: str, timeout: float = 2.0) -> int | None:
    """HTTP status of GET url+path (None when nothing answers). Proxies are never used."""
    handlers: list = [urllib.request.ProxyHandler({})]
    if info.tls:
        ctx = ssl.create_default_context(cafile=info.cert) if info.cert else ssl.create_default_context()
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(info.url + path, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


def find_server(home=None) -> ServerInfo | None:
    """The running, ready server of ``home``: file present, pid alive, ``/v2/health/ready`` 200."""
    info = read_server_info(home)
    if info is None or not pid_alive(info.pid):
        return None
    return info if _probe(info, "/v2/health/ready") == 200 else None


@contextlib.contextmanager
def _start_lock(home: Path):
    """Two kernels calling ensure_server at once must not start two servers."""
    d = server_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".start.lock", "a") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: best effort
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _wait_ready(home: Path, pid: int, deadline: float, proc: subprocess.Popen | None) -> ServerInfo:
    while time.monotonic() < deadline:
        info = read_server_info(home)
        if info is not None and info.pid == pid and _probe(info, "/v2/health/ready", 1.0) == 200:
            return info
        if not pid_alive(pid):
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(2)  # the reaper thread may not have stored the exit code yet
            tail = _log_tail(home)
            raise ServingError(f"the model server exited during start-up"
                               f"{' (exit code ' + str(proc.returncode) + ')' if proc else ''}: {tail}",
                               hint=f"see {server_dir(home) / 'server.log'}")
        time.sleep(0.05)
    raise ServingError("the model server did not become ready in time",
                       hint=f"see {server_dir(home) / 'server.log'}")


def _log_tail(home: Path, n: int = 600) -> str:
    with contextlib.suppress(OSError):
        text = (server_dir(home) / "server.log").read_text(errors="replace").strip()
        return " ".join(text[-n:].split())
    return "(no log)"


def ensure_server(home=None, *, host: str = "127.0.0.1", port: int = 0, tls_cert: str | None = None,
                  tls_key: str | None = None, embeddings: bool = False, deploy: tuple[str, ...] = (),
                  max_batch_size: int | None = None, max_wait_ms: float | None = None,
                  max_body_bytes: int | None = None, timeout_s: float | None = None,
                  idle_timeout: str | float | None = None, wait_s: float = 60.0) -> ServerInfo:
    """The home's server, started detached if none runs; returns once it is ready (≤ wait_s).

    Options only apply when a server is started; a running one is returned as it is.
    ``idle_timeout`` (seconds or "2h"; 0 never) defaults to this kernel's
    ``aiaas.server.idle-timeout``, so a ``dask.config.set`` in the notebook reaches the server.
    """
    home = _home(home)
    deadline = time.monotonic() + wait_s
    with _start_lock(home):
        info = read_server_info(home)
        if info is not None and pid_alive(info.pid) and _is_server_process(info.pid):
            # running (maybe still restoring its deployments): never start a second one beside it
            return _wait_ready(home, info.pid, deadline, None)
        if info is not None:
            with contextlib.suppress(FileNotFoundError):
                (server_dir(home) / "server.json").unlink()
        cmd = [sys.executable, "-m", "aiaas_jupyter.serving", "serve", "--home", str(home),
               "--host", host, "--port", str(port)]
        if tls_cert or tls_key:
            cmd += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
        for flag, value in (("--max-batch-size", max_batch_size), ("--max-wait-ms", max_wait_ms),
                            ("--max-body-bytes", max_body_bytes), ("--timeout-s", timeout_s)):
            if value is not None:
                cmd += [flag, str(value)]
        from ..settings import config

        if idle_timeout is None:
            idle_timeout = config("server.idle-timeout")
        cmd += ["--idle-timeout", str(idle_timeout or 0)]
        # aiaas.server.workers, 1 by default: the kernel and its Dask workers share this machine
        cmd += ["--workers", str(int(config("server.workers")))]
        if embeddings:
            cmd.append("--embeddings")
        if deploy:
            cmd += ["--deploy", *deploy]
        # the embedded cluster's one malloc arena leaks into the kernel's environment: not for the server
        env = {**malloc_env.without_worker_limit(os.environ), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        with open(server_dir(home) / "server.log", "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=env, close_fds=True)
        _reap_when_done(proc)
        return _wait_ready(home, proc.pid, deadline, proc)


def _reap_when_done(proc: subprocess.Popen) -> None:
    """Collect the server's exit status as soon as it ends, whoever ends it (no zombie).

    A thread blocked in ``wait`` rather than ``poll`` on stop: the server may be stopped by
    another process (``aiaas stop``) or stop itself (idle, home removed) while this kernel
    never calls us again. The thread is a daemon: the kernel may exit first, the server stays.
    """
    _children[proc.pid] = proc

    def wait() -> None:
        proc.wait()
        _children.pop(proc.pid, None)

    threading.Thread(target=wait, name=f"aiaas-server-reaper-{proc.pid}", daemon=True).start()


def stop_server(home=None, timeout: float = 15.0) -> bool:
    """Stop the home's server (SIGTERM, then SIGKILL after ``timeout``); False if none ran."""
    home = _home(home)
    info = read_server_info(home)
    if info is None:
        return False
    stopped = False
    if pid_alive(info.pid) and _is_server_process(info.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
            while pid_alive(info.pid) and time.monotonic() < deadline + 5:
                time.sleep(0.05)
        proc = _children.get(info.pid)
        if proc is not None:  # ours: return once the reaper collected it (no zombie left behind)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        stopped = True
    clear_server_info(home, info.pid)
    return stopped


def _is_server_process(pid: int) -> bool:
    """Guard against a stale server.json whose pid now belongs to another program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the file
    return b"aiaas" in cmdline and b"serve" in cmdline


# ---- server side ------------------------------------------------------------------------

def write_token(home) -> str:
    """A fresh token in ``server/token``, mode 0600 whatever the umask, written to a new randomly
    named file opened ``O_EXCL | O_NOFOLLOW`` and renamed over the old one: a symlink planted at
    the token path is replaced, its target never written (:mod:`..registry.private_files`)."""
    d = server_dir(home)
    make_private_dir(d.parent)  # the registry home: private even when the server creates it
    make_private_dir(d)
    token = secrets.token_urlsafe(32)
    write_private(d / "token", token.encode("ascii"))
    return token


def write_server_info(home, url: str, tls: bool, cert: str | None = None) -> ServerInfo:
    from .._version import __version__

    started = now_iso()
    d = {"url": url, "pid": os.getpid(), "started": started, "tls": tls, "version": __version__}
    if cert:
        d["cert"] = str(Path(cert).resolve())
    make_private_dir(server_dir(home))
    write_private(server_dir(home) / "server.json", json.dumps(d, indent=1, sort_keys=True).encode())
    return ServerInfo(home=_home(home), **{k: d.get(k) for k in
                                           ("url", "pid", "started", "tls", "version", "cert")})


def clear_server_info(home, pid: int) -> None:
    """Remove server.json if it still describes ``pid`` (a newer server's file is left alone)."""
    info = read_server_info(home)
    if info is not None and info.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            (server_dir(home) / "server.json").unlink()
