"""Checkpoints of a torch job: what lets a job whose worker died resume on another worker.

What a checkpoint holds (one safetensors file, safe to load: tensors and a JSON header, never
pickle): the model's ``state_dict``, the optimizer's per-parameter state, the global torch RNG
and the trainer's shuffling generator as tensors; the epoch, the history so far and the
optimizer's param groups as JSON metadata. Restored, a resumed run draws the same batches and
the same dropout masks as an uninterrupted one: it ends with the same weights (same seed, same
device and thread count).

Where: :class:`CheckpointStore` writes under a fsspec URL (``aiaas.checkpoints.url``) that every
worker reaches — nothing assumes the kernel's disk. A write goes to a temporary name first and
is then moved over the checkpoint, so a worker killed mid-write leaves the previous checkpoint
whole. The dispatcher drops a job's checkpoints once the job ended (registered or not).
"""

from __future__ import annotations

import dataclasses
import json
import struct
import time
import uuid
from typing import Any

from ..errors import ModelSpecError

FORMAT = "aiaas-checkpoint/1"
FILE = "checkpoint.safetensors"


class CheckpointError(ModelSpecError):
    """A model or optimizer whose state cannot be written as safe data (the job then runs
    without checkpoints), or a checkpoint that does not fit the job's model."""


@dataclasses.dataclass
class Checkpoint:
    epoch: int
    history: list[dict]
    tensors: dict[str, Any]
    meta: dict[str, Any]


def encode(model, opt, gen, epoch: int, history: list[dict]) -> bytes:
    """The state after *epoch* as safetensors bytes (CheckpointError when not expressible)."""
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"the model's state entry {name!r} is a {type(value).__name__}, not a tensor")
        tensors[f"model.{name}"] = value.detach().to("cpu").clone().contiguous()
    state = opt.state_dict()
    plain: dict[str, dict] = {}
    for pid, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().to("cpu").clone().contiguous()
            else:
                plain.setdefault(str(pid), {})[key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = gen.get_state()
    if gen.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(gen.device)
    try:
        meta = {"format": FORMAT, "epoch": epoch, "history": history, "optim_groups": state["param_groups"],
                "optim_plain": plain, "optimizer": type(opt).__name__}
        header = {key: json.dumps(value) for key, value in meta.items()}
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the optimizer's state is not plain data: {e}") from None
    return save(tensors, metadata=header)


def decode(blob: bytes) -> Checkpoint:
    """A checkpoint from its bytes (safetensors: tensors and JSON only)."""
    from safetensors.torch import load

    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length]).get("__metadata__") or {}
    meta = {key: json.loads(value) for key, value in header.items()}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint of this version (format {meta.get('format')!r})")
    return Checkpoint(epoch=int(meta["epoch"]), history=list(meta["history"]), tensors=load(blob), meta=meta)


def restore(ckpt: Checkpoint, model, opt, gen) -> None:
    """Put a checkpoint's state into a freshly built *model*, *opt* and *gen* (in place)."""
    import torch

    t = ckpt.tensors
    weights = {k.removeprefix("model."): v for k, v in t.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"the checkpoint does not fit this model: {str(e).splitlines()[0]}") from None
    per_param: dict[int, dict] = {}
    for key, value in t.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            per_param.setdefault(int(pid), {})[name] = value
    for pid, plain in ckpt.meta["optim_plain"].items():
        per_param.setdefault(int(pid), {}).update(plain)
    if ckpt.meta["optimizer"] != type(opt).__name__:
        raise CheckpointError(f"the checkpoint is of a {ckpt.meta['optimizer']} optimizer, "
                              f"this job uses {type(opt).__name__}")
    opt.load_state_dict({"state": per_param, "param_groups": ckpt.meta["optim_groups"]})
    torch.set_rng_state(t["rng.torch"])
    gen.set_state(t["rng.generator"])
    if "rng.cuda" in t and gen.device.type == "cuda":
        torch.cuda.set_rng_state(t["rng.cuda"], gen.device)


class CheckpointStore:
    """A job's checkpoints under one fsspec URL (``file://``, ``s3://``, ``memory://``, a path)."""

    def __init__(self, url: str, storage_options: dict | None = None):
        import fsspec

        self.url = url
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = fsspec.core.url_to_fs(url, **self.storage_options)

    def __reduce__(self):  # travels to the worker as its URL, not as a live filesystem
        return (CheckpointStore, (self.url, self.storage_options))

    def _dir(self, job_id: str) -> str:
        if not job_id.isalnum():
            raise ValueError(f"invalid job id {job_id!r}")
        return f"{self.root.rstrip('/')}/{job_id}"

    def write(self, job_id: str, blob: bytes) -> None:
        """Atomically replace the job's checkpoint: a temporary name first, then a move."""
        where = self._dir(job_id)
        self.fs.makedirs(where, exist_ok=True)
        tmp = f"{where}/.tmp-{uuid.uuid4().hex}"
        try:
            self.fs.pipe_file(tmp, blob)
            self.fs.mv(tmp, f"{where}/{FILE}")
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    def read(self, job_id: str) -> bytes | None:
        try:
            return self.fs.cat_file(f"{self._dir(job_id)}/{FILE}")
        except FileNotFoundError:
            return None

    def drop(self, job_id: str) -> bool:
        """Remove everything of the job; whether there was anything."""
        where = self._dir(job_id)
        if not self.fs.exists(where):
            return False
        self.fs.rm(where, recursive=True)
        return True


class JobCheckpoints:
    """One job's checkpoints as the torch trainer uses them: load once, save when due.

    ``min_interval`` seconds must pass between two saves (0: every epoch); the last epoch is
    not saved (the job packages its model right after). A model or optimizer whose state is
    not plain data turns checkpointing off for the job, with the reason in :attr:`disabled`."""

    def __init__(self, store: CheckpointStore, job_id: str, min_interval: float = 0.0):
        self.store, self.job_id, self.min_interval = store, job_id, float(min_interval)
        self.disabled: str | None = None
        self.saves = 0
        self.seconds = 0.0  # spent encoding and writing: what checkpointing cost the job
        self._last = time.monotonic()

    def load(self) -> Checkpoint | None:
        blob = self.store.read(self.job_id)
        return decode(blob) if blob is not None else None

    def due(self) -> bool:
        return self.disabled is None and time.monotonic() - self._last >= self.min_interval

    def save(self, model, opt, gen, epoch: int, history: list[dict]) -> bool:
        t0 = time.perf_counter()
        try:
            blob = encode(model, opt, gen, epoch, history)
        except CheckpointError as e:
            self.disabled = str(e)
            return False
        self.store.write(self.job_id, blob)
        self._last = time.monotonic()
        self.saves += 1
        self.seconds += time.perf_counter() - t0
        return True


__all__ = ["Checkpoint", "CheckpointError", "CheckpointStore", "JobCheckpoints", "decode", "encode", "restore",
           "FORMAT", "FILE"]
