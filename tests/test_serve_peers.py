"""The agreement between the processes of ``aiaas serve --workers N`` (``serving/peers.py``), each
side a real :class:`Peers` on one real shared-memory block, driven on one event loop so that the
timing of each step is the test's to choose. The whole server is exercised in test_serve_workers.py."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest

from aiaas_jupyter.serving.peers import Peers, PeersError, block_size


def _pair(n: int = 2):
    block, lock = multiprocessing.RawArray("d", block_size(n)), multiprocessing.Lock()
    return [Peers(block, lock, i, n) for i in range(n)]


def _run(coro):
    return asyncio.run(coro)


def test_a_change_is_answered_once_the_other_process_has_followed_it():
    a, b = _pair()
    a.ready(0)
    b.ready(0)
    followed = []

    async def reconcile():
        await asyncio.sleep(0.2)  # loading a model
        followed.append(time.monotonic())
        return []

    async def main():
        follower = asyncio.create_task(b.follow(reconcile, lambda: None))
        t0 = time.monotonic()
        await a.announce()
        took = time.monotonic() - t0
        follower.cancel()
        return took

    took = _run(main())
    assert len(followed) == 1 and took >= 0.2 and a.behind(a.generation) == []
    assert a.generation == 1


def test_a_process_that_cannot_load_the_change_is_named():
    a, b = _pair()
    a.ready(0)
    b.ready(0)

    async def main():
        follower = asyncio.create_task(b.follow(lambda: asyncio.sleep(0, result=["iris"]), lambda: None))
        try:
            with pytest.raises(PeersError, match=r"^server process 1 could not load the change and serves what it "
                                                 r"served before \(see the server log\)$"):
                await a.announce()
            # the next change it can follow is answered normally
            b_ok = asyncio.create_task(b.follow(lambda: asyncio.sleep(0, result=[]), lambda: None))
            follower.cancel()
            await a.announce()
            b_ok.cancel()
        finally:
            follower.cancel()

    _run(main())


def test_a_process_that_never_follows_is_named_and_nothing_hangs():
    a, b = _pair()
    a.ready(0)
    b.ready(0)  # ready, but it runs no follow loop

    async def main():
        with pytest.raises(PeersError, match=r"server process 1 did not follow the change within 0.3 s"):
            await a.announce(timeout=0.3)

    t0 = time.monotonic()
    _run(main())
    assert time.monotonic() - t0 < 2


def test_a_process_still_starting_is_not_waited_for():
    """It reads deployments.json before it takes a connection: the change is in what it reads."""
    a, b, c = _pair(3)
    a.ready(0)
    c.ready(0)
    c.leaving()  # stopped
    _run(asyncio.wait_for(a.announce(), 2))
    assert a.behind(1) == [] and not b.is_ready(1) and not c.is_ready(2)


def test_the_server_is_idle_only_when_no_process_has_a_request():
    a, b = _pair()
    now = time.monotonic()
    a.activity(now - 10, 0)
    b.activity(now - 4, 0)
    assert a.idle_seconds(now) == pytest.approx(4)
    b.activity(now - 4, 1)
    assert a.idle_seconds(now) == 0.0
