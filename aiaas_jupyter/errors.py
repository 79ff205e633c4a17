"""The errors aiaas-jupyter raises, and how they show in a notebook.

Every error a user can cause is an :class:`AiaasError` carrying a one-line message and,
where one helps, a hint. In IPython they render as one line (``_render_traceback_``, the
hook IPython and ipyparallel use), never as a traceback into our internals. Magic syntax
errors are IPython's own ``UsageError`` (raised by the magics' argument parser).

Tree::

    AiaasError (Exception)
    ├── ConfigError            bad setting or environment (AIAAS_HOME not writable, ...)
    ├── ClusterError           no cluster, unreachable scheduler, connect timeout
    │   └── ResourceError      a request no worker can ever satisfy (e.g. --gpus 4 on 1-GPU workers)
    ├── DataError              unknown data name, missing target column, unreadable input
    │   └── PreprocessError    a preprocessing cell failed (in the kernel, in meta inference or on a
    │                          worker): one line, its traceback (the user's lines) under it
    ├── ModelSpecError         the cell defines no usable ``model`` (or optimizer/loss)
    │   └── TrainCellError     a train cell did not compile or raised in the kernel: its lines under it
    ├── JobError               job-level problems
    │   ├── JobNotFoundError   unknown job id, or a job that can no longer be re-attached
    │   ├── JobFailedError     the remote task raised: carries the remote traceback
    │   │   └── MapError       an item of ``aiaas_jupyter.map`` raised: names the item's index
    │   └── JobCancelledError  the job was cancelled
    ├── SweepError             hyper-parameter sweep problems (a bad search space, ...)
    │   └── SweepNotFoundError unknown sweep id or trial number (also a RegistryError: the
    │                          registry raises it, like the other "not found" errors it raises)
    ├── ServingError           the local model server could not start, or failed (see server.log)
    │   └── ServerNotRunningError  no server runs for this registry home (no token / server.json)
    ├── RegistryError          registry problems
    │   ├── InvalidNameError   a model/alias name outside [A-Za-z0-9._-] (path traversal, ...)
    │   ├── ModelNotFoundError unknown model, version or alias
    │   ├── IntegrityError     an artifact whose sha256 does not match the registry
    │   └── UnsafeArtifactError an artifact that would need untrusted types to load
    └── EndpointError          a model server or remote endpoint refused or failed a call
        │                      (one line: ``POST URL → 422: message``; never a key or token)
        ├── EndpointNotFoundError  no deployment or endpoint of that name
        └── EndpointAuthError  the API key's environment variable is unset, or 401/403
"""

from __future__ import annotations


class AiaasError(Exception):
    """Base of every error a user of aiaas-jupyter can cause."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback: the error in one line."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(AiaasError):
    pass


class ClusterError(AiaasError):
    pass


class ResourceError(ClusterError):
    pass


class DataError(AiaasError):
    pass


class _ShowsTraceback:
    """Renders as the one-line error with the (remote) traceback text under it, never ours."""

    remote_traceback: str
    traceback_label = "--- remote traceback (on the worker) ---"

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]
        if self.remote_traceback:
            lines.append(self.traceback_label)
            lines.extend(self.remote_traceback.rstrip().splitlines())
        return lines


class PreprocessError(_ShowsTraceback, DataError):
    """A preprocessing cell failed. ``remote_traceback`` shows the user's lines: the worker's
    traceback, or the kernel's (``where == "kernel"``) when the cell itself raised."""

    def __init__(self, message: str, remote_traceback: str = "", hint: str | None = None,
                 where: str = "worker"):
        super().__init__(message, hint)
        self.remote_traceback = remote_traceback
        self.where = where
        if where == "kernel":
            self.traceback_label = "--- traceback (in the kernel) ---"


class ModelSpecError(AiaasError):
    pass


class TrainCellError(_ShowsTraceback, ModelSpecError):
    """A ``%%aiaas train`` cell did not compile or raised in the kernel: one line, the cell's
    own traceback under it (never our frames), like a failing preprocess cell."""

    traceback_label = "--- traceback (in the kernel) ---"

    def __init__(self, message: str, cell_traceback: str = "", hint: str | None = None):
        super().__init__(message, hint)
        self.remote_traceback = cell_traceback


class JobError(AiaasError):
    pass


class JobNotFoundError(JobError):
    pass


class JobCancelledError(JobError):
    pass


class JobFailedError(_ShowsTraceback, JobError):
    """The remote task raised. ``remote_traceback`` holds the worker-side traceback text."""

    def __init__(self, message: str, remote_traceback: str = "", hint: str | None = None):
        super().__init__(message, hint)
        self.remote_traceback = remote_traceback


class MapError(JobFailedError):
    """Item ``index`` of a map raised ``exception`` (the worker's exception object)."""

    def __init__(self, message: str, remote_traceback: str = "", hint: str | None = None,
                 index: int | None = None, exception: BaseException | None = None):
        super().__init__(message, remote_traceback, hint)
        self.index = index
        self.exception = exception


class RegistryError(AiaasError):
    pass


class SweepError(AiaasError):
    """A hyper-parameter sweep cannot run as asked (bad space, metric, option); one line + hint."""


class SweepNotFoundError(SweepError, RegistryError):
    """Unknown sweep id (or trial number). Both a SweepError (what a sweep user catches) and
    a RegistryError (what a caller of the registry catches, like ModelNotFoundError)."""


class InvalidNameError(RegistryError, ValueError):
    pass


class ModelNotFoundError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return AiaasError.__str__(self)


class IntegrityError(RegistryError):
    pass


class UnsafeArtifactError(RegistryError):
    pass


class ServingError(AiaasError):
    """The local model server (``aiaas serve``) could not start or stop, or refused its state."""


class ServerNotRunningError(ServingError):
    pass


class EndpointError(AiaasError):
    """A call to our model server or to a remote endpoint failed; the message is one line."""


class EndpointNotFoundError(EndpointError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return AiaasError.__str__(self)


class EndpointAuthError(EndpointError):
    pass


class AiaasVersionWarning(UserWarning):
    """Kernel and workers run different versions of a package a job needs."""


class AiaasStorageWarning(UserWarning):
    """A configured location is not shared by the workers (e.g. checkpoints on each worker's own disk)."""
