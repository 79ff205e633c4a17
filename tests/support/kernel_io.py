"""Run code in a live Jupyter kernel from a test, and read what came back on iopub."""

from __future__ import annotations

import queue
import time


def execute(kc, code: str, timeout: float = 120) -> list[dict]:
    """Execute *code* through the kernel client *kc*; every iopub message until the kernel is
    idle again for this request (raises TimeoutError after *timeout* s)."""
    msg_id = kc.execute(code)
    messages = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        messages.append(msg)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            return messages
    raise TimeoutError(code)


def errors(messages: list[dict]) -> list[dict]:
    """The error replies among *messages* (empty when the code ran cleanly)."""
    return [m["content"] for m in messages if m["msg_type"] == "error"]
