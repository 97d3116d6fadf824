"""The error a user fixes by installing an optional package."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependencyError(ImportError):
    """An optional package that a feature needs is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Imports ``module`` or says in one line which extra installs it.

    Example
    -------
    >>> require("json", "dev", "this example").__name__
    'json'
    >>> require("no_such_module_xyz", "export", "ONNX export")
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.errors.MissingDependencyError: ONNX export needs no_such_module_xyz: pip install 'speechbrain-eres2net[export]'
    """  # noqa: E501
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{feature} needs {module}: pip install 'speechbrain-eres2net[{extra}]'"
        ) from err


def importable(*modules: str) -> bool:
    """Whether every one of ``modules`` can be imported (optional engines).

    Example
    -------
    >>> importable("json"), importable("json", "no_such_module_xyz")
    (True, False)
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return True
