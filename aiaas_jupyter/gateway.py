"""Clusters from a dask-gateway server: what JupyterHub deployments and most institutes run.

A gateway is a multi-tenant service that starts Dask clusters on the user's behalf (on
Kubernetes, YARN, HPC or local processes) behind one authenticated HTTP address, and proxies
their schedulers (``gateway://``) and dashboards (``/clusters/NAME/status``). :func:`connect_gateway`
creates a cluster there (with the gateway's cluster options, a size or an adaptive range) or
attaches to one by name, and returns it with its Dask client; from then on it is an external
cluster like any other — jobs outlive the kernel, and ``%aiaas disconnect --shutdown`` stops it.

Credentials come the way dask-gateway reads them, from the environment and dask config only
(``DASK_GATEWAY__AUTH__TYPE=basic`` with ``..._KWARGS__USERNAME`` / ``..._PASSWORD``, ``jupyterhub``
with ``JUPYTERHUB_API_TOKEN``, ``kerberos``), and go only to the gateway the user named. Every
failure — unreachable, refused credentials, an unknown cluster or option — is one ClusterError.
``dask_gateway`` is imported only here, when a gateway is asked for.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import ClusterError

_AUTH_HINT = ("set the gateway's credentials in the environment, e.g. DASK_GATEWAY__AUTH__TYPE=basic with "
              "DASK_GATEWAY__AUTH__KWARGS__USERNAME and ..._PASSWORD (JupyterHub: JUPYTERHUB_API_TOKEN)")


def gateway_url(address: str) -> str:
    """``http(s)://HOST[:PORT][/PREFIX]`` as given, or ``gateway://HOST:PORT`` (the address a gateway
    prints for its schedulers, which its HTTP API shares) as ``http://HOST:PORT``."""
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address.strip()):
        raise ClusterError(f"gateway address must be one word such as http://HOST:PORT, got {str(address)[:40]!r}")
    address = address.strip().rstrip("/")
    if address.startswith("gateway://"):
        address = "http://" + address[len("gateway://"):]
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClusterError(f"bad gateway address {address[:80]!r}",
                           hint="use the gateway's URL, e.g. http://HOST:8000 or https://hub.example.org/services/dask-gateway")
    try:
        parts.port
    except ValueError:
        raise ClusterError(f"bad gateway address {address[:80]!r}: the port is not a number from 1 to 65535") from None
    return address


def parse_options(pairs) -> dict:
    """``["worker_cores=2", "image=org/img:1"]`` → ``{"worker_cores": 2, "image": "org/img:1"}``
    (numbers and true/false become numbers and booleans; the gateway checks the rest)."""
    out = {}
    for pair in pairs or ():
        key, sep, value = str(pair).partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ClusterError(f"cluster option {str(pair)[:60]!r} is not KEY=VALUE", hint="e.g. --cluster-options worker_cores=2")
        out[key] = _value(value)
    return out


def _value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_adapt(text) -> tuple[int, int]:
    """``"MIN:MAX"`` (or a pair) → ``(min, max)``, 0 <= MIN <= MAX."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        lo, hi = text
    else:
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
        if not match:
            raise ClusterError(f"adapt must be MIN:MAX worker counts, got {str(text)[:40]!r}", hint="e.g. --adapt 1:10")
        lo, hi = int(match.group(1)), int(match.group(2))
    if isinstance(lo, bool) or isinstance(hi, bool) or not (isinstance(lo, int) and isinstance(hi, int)) \
            or not 0 <= lo <= hi or hi < 1:
        raise ClusterError(f"adapt must be MIN:MAX with 0 <= MIN <= MAX and MAX >= 1, got {lo}:{hi}")
    return lo, hi


def connect_gateway(address: str, *, cluster_name: str | None = None, options: dict | None = None,
                    n_workers: int | None = None, adapt: tuple[int, int] | None = None,
                    timeout_s: float = 60.0):
    """Create (or, with *cluster_name*, attach to) a cluster of the gateway at *address*; return
    ``(gateway_cluster, dask_client)``. A cluster this call created and could not get ready is
    shut down again: a failed connect leaves nothing running."""
    url = gateway_url(address)
    try:
        from dask_gateway import Gateway
    except ImportError:
        raise ClusterError("connecting to a dask-gateway needs the dask-gateway package",
                           hint="pip install 'aiaas-jupyter[gateway]' (or dask-gateway)") from None
    try:
        gateway = Gateway(url)
    except (AssertionError, RuntimeError, OSError) as e:  # its own event-loop thread did not start (10 s)
        raise ClusterError(f"could not start a dask-gateway client for {url}: {_line(e)}",
                           hint="its event-loop thread did not start in time: is this process overloaded?") from None
    created = None
    try:
        with _gateway_errors(url):
            if cluster_name:
                if options:
                    raise ClusterError("cluster options only apply to a new cluster, not to one attached by name")
                cluster = gateway.connect(cluster_name, shutdown_on_close=False)
            else:
                opts = gateway.cluster_options()
                for key, value in (options or {}).items():
                    if key not in opts:
                        known = ", ".join(opts) or "none"
                        raise ClusterError(f"the gateway has no cluster option {key!r}", hint=f"its options: {known}")
                    _set_option(opts, key, value)
                cluster = created = gateway.new_cluster(opts, shutdown_on_close=False)
            if adapt is not None:
                cluster.adapt(minimum=adapt[0], maximum=adapt[1])
            elif n_workers is not None:
                cluster.scale(n_workers)
            client = cluster.get_client()  # the default client, as Client(address) makes it
            wanted = adapt[0] if adapt is not None else n_workers
            if wanted:
                try:
                    client.wait_for_workers(wanted, timeout=timeout_s)
                except TimeoutError:
                    raise ClusterError(f"the gateway cluster {cluster.name} did not get {wanted} worker(s) within "
                                       f"{timeout_s:g} s", hint="is the gateway short of resources? see its logs") from None
        return cluster, client
    except BaseException:
        if created is not None:
            try:
                release(created, shutdown=True)
            except Exception:  # noqa: BLE001 - already failing; the gateway's idle timeout is the backstop
                pass
        raise
    finally:
        close_client(gateway)  # now, on this thread: never later from a finalizer (see _RETIRED)


#: Gateway clients and clusters this process closed, kept until it exits. dask-gateway's ``Gateway.__del__``
#: closes its client again once collected, and on a client closed before that raises
#: ("Accessing the loop property while the loop is not running"): an "Exception ignored" trace in the
#: notebook at some random later moment, and on CPython 3.11.7 formatting that trace from inside a
#: running ``ast.parse`` (a garbage collection there) breaks the parse (gh-106905). At exit
#: ``__del__`` does nothing, so kept they are harmless; each is a few small objects.
_RETIRED: list = []


def close_client(gateway) -> None:
    """Close a Gateway client now (its clusters share its event loop, which runs on while they
    use it) and keep it, so that its ``__del__`` never closes it a second time."""
    _RETIRED.append(gateway)
    try:
        gateway.close()
    except Exception:  # noqa: BLE001 - closing a client of ours; nothing to tell the user
        pass


def release(cluster, *, shutdown: bool = False) -> None:
    """Close (or, with *shutdown*, stop) a gateway cluster and keep it (see ``_RETIRED``)."""
    _RETIRED.append(cluster)
    (cluster.shutdown if shutdown else cluster.close)()


def _set_option(opts, key: str, value) -> None:
    try:
        opts[key] = value
    except (ValueError, TypeError) as exc:
        raise ClusterError(f"cluster option {key}={value!r}: {exc}") from None


class _gateway_errors:
    """dask-gateway's and aiohttp's exceptions as one ClusterError line (httpx's map_exceptions)."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, ClusterError) or not isinstance(exc, Exception):
            return False
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise ClusterError(f"the dask-gateway at {self.url} refused the credentials ({status})",
                               hint=_AUTH_HINT) from None
        from dask_gateway import GatewayClusterError, GatewayServerError

        if isinstance(exc, ValueError) and "not found" in str(exc).lower() or status == 404:
            raise ClusterError(f"no such cluster on the dask-gateway at {self.url}: {_line(exc)}",
                               hint="list them with dask_gateway.Gateway(URL).list_clusters()") from None
        if isinstance(exc, (GatewayClusterError, GatewayServerError)):
            raise ClusterError(f"the dask-gateway at {self.url} failed: {_line(exc)}") from None
        if isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.startswith("aiohttp"):
            raise ClusterError(f"could not reach the dask-gateway at {self.url} ({_line(exc)})",
                               hint="is the address right and the gateway running?") from None
        return False


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
