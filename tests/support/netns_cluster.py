"""A Dask cluster on "other hosts" (issue 16 point 2): the scheduler and each worker run in a network
namespace of their own, with an address of their own on a bridge this module creates (the test
process, the "kernel", is the bridge's first address), and in a mount namespace of their own in which
this test run's temporary root (``TMPDIR``: every ``tmp_path``, the kernels' registry homes, the data
files tests write) is an empty private tmpfs. So a worker cannot read one file the kernel wrote, as on
a real cluster; what it needs must travel through Dask or through *storage*, a directory outside
that root which every node and the kernel see at the same path (a stand-in for an NFS mount or an
object store: the configured fsspec location).

Needs root (``ip netns``, ``unshare --mount``), which CI has. Everything is named with a random
suffix and a random 10.x.y.0/24 subnet, so two test runs on one machine do not collide, and
everything is removed again: processes, namespaces, bridge, storage.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.cli_cluster import stop_processes

BIN = Path(sys.executable).parent
PORT = 8786  # every node has its own network stack: the well-known port is free in each


def available() -> str | None:
    """None when this machine can run the cluster, else why not."""
    if os.geteuid() != 0:
        return "network and mount namespaces need root"
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.{random.randint(64, 254)}.{random.randint(0, 254)}.0/24")
        if str(net.network_address).rsplit(".", 1)[0] + "." not in used:
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test bridge")


class Nodes:
    """The bridge and the namespaces: ``add(name)`` gives a namespace its address."""

    def __init__(self):
        self.tag = "%04x" % random.getrandbits(16)
        self.net = _free_subnet()
        hosts = self.net.hosts()
        self.gateway = str(next(hosts))  # the kernel's side of the bridge
        self._hosts = hosts
        self.bridge = f"aiaasbr{self.tag}"
        self.namespaces: list[str] = []
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def add(self) -> tuple[str, str]:
        """A new namespace on the bridge: ``(namespace, address)``."""
        i = len(self.namespaces)
        ns, outside, inside = f"aiaas-{self.tag}-{i}", f"aiv{self.tag}{i}", f"aip{self.tag}{i}"
        address = str(next(self._hosts))
        _run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", ns)
        _run("ip", "link", "set", outside, "master", self.bridge, "up")
        _run("ip", "-n", ns, "addr", "add", f"{address}/{self.net.prefixlen}", "dev", inside)
        _run("ip", "-n", ns, "link", "set", inside, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        return ns, address

    def close(self) -> None:
        for ns in self.namespaces:  # deleting a namespace deletes its veth pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def node_command(ns: str, hidden: Path, private: str, argv: list[str]) -> list[str]:
    """*argv* in namespace *ns*, in a mount namespace where *hidden* is an empty tmpfs
    (holding only this node's *private* working directory)."""
    script = ('set -e; mount -t tmpfs -o mode=0700,size=4g aiaas-node "$1"; mkdir -p "$1/$2"; '
              'cd "$1/$2"; shift 2; exec "$@"')
    return ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", script, "node", str(hidden), private, *argv]


@contextlib.contextmanager
def start_netns_cluster(logs: Path, n_workers: int = 2, env_extra: dict | None = None):
    """Yield ``{"address", "workers": {name: address}, "storage", "gateway", "hidden", "pids"}``."""
    hidden = Path(tempfile.gettempdir())  # this run's TMPDIR root (tests/support/leakcheck.py)
    storage = Path(tempfile.mkdtemp(prefix="aiaas-netns-storage-", dir=hidden.parent))  # outside the root
    os.chmod(storage, 0o755)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(hidden),
           "DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__POLICIES": "[]", **(env_extra or {})}
    nodes = Nodes()
    procs: list[subprocess.Popen] = []
    try:
        ns, sched_ip = nodes.add()
        address = f"tcp://{sched_ip}:{PORT}"
        procs.append(subprocess.Popen(
            node_command(ns, hidden, "scheduler", [str(BIN / "dask"), "scheduler", "--host", sched_ip,
                                                   "--port", str(PORT), "--dashboard-address", f"{sched_ip}:8787"]),
            stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT, env=env))
        workers = {}
        for i in range(n_workers):
            ns, ip = nodes.add()
            name = f"host-{i}"
            procs.append(subprocess.Popen(
                node_command(ns, hidden, name, [str(BIN / "dask"), "worker", address, "--host", ip,
                                                "--nthreads", "1", "--name", name, "--no-dashboard",
                                                "--local-directory", "."]),
                stdout=open(logs / f"{name}.log", "w"), stderr=subprocess.STDOUT, env=env))
            workers[name] = ip
        from distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout=5) as c:
                    c.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    logs_text = "\n".join(f"--- {f.name}\n{f.read_text()[-2000:]}" for f in sorted(logs.glob("*.log")))
                    raise RuntimeError(f"the namespaced cluster did not start:\n{logs_text}") from None
                time.sleep(0.5)
        yield {"address": address, "workers": workers, "storage": storage, "gateway": nodes.gateway,
               "hidden": hidden, "pids": [p.pid for p in procs]}
    finally:
        stop_processes(procs)
        nodes.close()
        shutil.rmtree(storage, ignore_errors=True)
