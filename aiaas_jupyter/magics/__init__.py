"""IPython magics: ``%aiaas`` (line) and ``%%aiaas`` (cell)."""

from .core import AiaasMagics

__all__ = ["AiaasMagics"]
