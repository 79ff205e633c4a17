"""The Dask dashboard link the *browser* can open (issue 16 point 3).

A scheduler's dashboard listens where the scheduler runs: on loopback, on a worker host's private
address, in a network namespace. The kernel can reach it; the user's browser, talking only to the
Jupyter server (often through JupyterHub), usually cannot. jupyter-server-proxy (a dependency) makes
the Jupyter server forward ``{base_url}proxy/HOST:PORT/...`` there, behind the server's own login.

Which Jupyter server a kernel belongs to, and whether that server proxies, only the server knows: the
server extension records it (:func:`record_server`: ``aiaas-server-PID.json`` in Jupyter's runtime
directory, beside the server's own ``jpserver-PID.json``), and the kernel finds its own server by
``JPY_PARENT_PID``, which jupyter_client sets for every kernel it starts. :func:`browser_link` then returns the proxied link, or the direct one
where there is no proxying server (a plain Python process, ``aiaas.dashboard.proxy: never``, a host the
server's ``c.ServerProxy.host_allowlist`` refuses, or a link the user templated through dask's
``distributed.dashboard.link``). The dask-gateway path never comes here: its proxy is the link.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .registry.private_files import make_private_dir, read_private, write_private

log = logging.getLogger(__name__)

_LIMIT = 64 * 1024
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_DASK_DEFAULT_LINK = "{scheme}://{host}:{port}/status"


def _server_file(runtime_dir: str | os.PathLike, pid: int) -> Path:
    return Path(runtime_dir) / f"aiaas-server-{int(pid)}.json"


def _runtime_dir() -> str:
    from jupyter_core.paths import jupyter_runtime_dir

    return jupyter_runtime_dir()


def record_server(runtime_dir: str | os.PathLike, *, pid: int, base_url: str, proxy: bool,
                  proxy_hosts: list[str] | None) -> None:
    """Called by the server extension at load: *proxy* whether jupyter-server-proxy is enabled in
    this server, *proxy_hosts* its ``host_allowlist`` (None: a function decides, assume any).
    Files of servers no longer running are removed on the way."""
    from .serving.state import pid_alive

    folder = Path(runtime_dir)
    try:
        make_private_dir(folder)
        for old in folder.glob("aiaas-server-*.json"):
            stem = old.stem.rpartition("-")[2]
            if stem.isdigit() and int(stem) != pid and not pid_alive(int(stem)):
                old.unlink(missing_ok=True)
        body = {"pid": pid, "base_url": base_url, "proxy": bool(proxy),
                "proxy_hosts": None if proxy_hosts is None else [str(h) for h in proxy_hosts]}
        write_private(_server_file(folder, pid), json.dumps(body).encode())
    except (OSError, ValueError) as e:  # links only: never stop the server for it
        log.warning("aiaas_jupyter: could not record this server for dashboard links in %s: %s", folder, e)


def server_of_this_kernel(environ: Mapping[str, str] = os.environ,
                          runtime_dir: str | os.PathLike | None = None) -> dict | None:
    """The record of the Jupyter server that started this process (``JPY_PARENT_PID``), if any."""
    from .serving.state import MAX_PID, pid_alive

    text = environ.get("JPY_PARENT_PID", "")
    if not text.isdigit() or not 1 <= int(text) <= MAX_PID or not pid_alive(int(text)):
        return None
    try:
        data = json.loads(read_private(_server_file(runtime_dir or _runtime_dir(), int(text)), _LIMIT))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("pid") != int(text):
        return None
    base, hosts = data.get("base_url"), data.get("proxy_hosts")
    if not isinstance(base, str) or not re.fullmatch(r"/(?!/)[A-Za-z0-9._~%!$&'()*+,;=:@/-]*", base):
        return None  # a path on the same server only: never another origin (//host) for an href
    if hosts is not None and not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
        return None
    return data


def browser_link(direct: str | None, mode: str = "auto", environ: Mapping[str, str] = os.environ,
                 runtime_dir: str | os.PathLike | None = None) -> tuple[str | None, str | None]:
    """``(link, note)``: the dashboard link for the browser and, where it stays direct although a
    proxying server is there, why (a one-line hint for status)."""
    if not direct or mode == "never" or _user_templated():
        return direct, None
    server = server_of_this_kernel(environ, runtime_dir)
    if server is None or not server.get("proxy"):
        return direct, None
    parts = urlsplit(direct)
    try:
        port = parts.port
    except ValueError:
        return direct, None
    host = parts.hostname or ""
    if parts.scheme != "http" or not host or not port:
        return direct, None
    allowed = server.get("proxy_hosts")
    if allowed is not None and host not in _LOOPBACK and host not in allowed:
        return direct, (f"the dashboard at {host} is not proxied: add {host!r} to "
                        "c.ServerProxy.host_allowlist in the Jupyter server's config")
    target = f"127.0.0.1:{port}" if host in _LOOPBACK else f"{_bracket(host)}:{port}"
    base = server["base_url"] if server["base_url"].endswith("/") else server["base_url"] + "/"
    path = parts.path or "/status"
    query = f"?{parts.query}" if parts.query else ""
    return f"{base}proxy/{target}{path}{query}", None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _user_templated() -> bool:
    """A ``distributed.dashboard.link`` of the user's own (e.g. JupyterHub's documented
    ``{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status``) is their choice: left as it is."""
    import dask

    return dask.config.get("distributed.dashboard.link", _DASK_DEFAULT_LINK) != _DASK_DEFAULT_LINK


def proxy_hosts_of(serverapp: Any) -> tuple[bool, list[str] | None]:
    """Whether jupyter-server-proxy is enabled in *serverapp*, and its effective host allowlist."""
    extension = serverapp.extension_manager.extensions.get("jupyter_server_proxy")
    if extension is None or not extension.enabled:
        return False, []
    try:
        from jupyter_server_proxy.config import ServerProxy
    except ImportError:
        return False, []
    hosts = ServerProxy(config=serverapp.config).host_allowlist
    return True, (list(hosts) if isinstance(hosts, (list, tuple)) else None)


__all__ = ["browser_link", "record_server", "server_of_this_kernel", "proxy_hosts_of"]
