"""The ``eres2net`` command line: one module per command group."""

from .main import main

__all__ = ["main"]
