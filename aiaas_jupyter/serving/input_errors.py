"""What the server answers when a well-formed request does not suit the model.

Kept apart from :mod:`.runtime` so that the signature checks (:mod:`.signature_check`) and the
runtimes share them without importing each other.
"""

from __future__ import annotations


class InputError(ValueError):
    """The request is well formed but this model cannot take it (HTTP 422)."""


class SignatureError(InputError):
    """The request contradicts the model's recorded input signature (HTTP 400, naming the column)."""
