"""Which files a model folder's ``Pretrainer`` may read, and how they load.

SpeechBrain's ``Pretrainer`` reads each ``paths`` entry as ``<source>/<file>``
where the source may be a local folder, a Hub repo or a URL, and a path
without ``/`` as a file of the current directory. An untrusted folder may
read only its own files: its folder (local, symlinks resolved) or the Hub
repo it came from, at the snapshot that was checked (the caller passes the
revision).

Checkpoints are unpickled: SpeechBrain's hooks call ``torch.load`` without
``weights_only``, which ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns into a full
unpickler. :func:`use_weights_only_hooks` gives every loadable a hook that
passes ``weights_only=True`` explicitly (torch then ignores that variable).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Callable, Union

from .yaml_guard import OVERRIDE, ModelFolderError, UntrustedModelError

logger = logging.getLogger(__name__)


def load_weights(path: Union[str, Path], device: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only.

    Raises
    ------
    UntrustedModelError
        The file pickles anything else (one line naming it).

    Example
    -------
    >>> import tempfile, torch
    >>> path = Path(tempfile.mkdtemp()) / "w.ckpt"
    >>> torch.save({"weight": torch.ones(2)}, path)
    >>> load_weights(path)["weight"]
    tensor([1., 1.])
    """
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is a page; the line naming the object is the news.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if "GLOBAL" in line), lines[:1])
        raise UntrustedModelError(
            f"{path}: holds pickled objects other than weights, which "
            f"torch.load(weights_only=True) refuses ({''.join(detail)})"
        ) from err


def transfer_weights(obj: Any, path: Union[str, Path]) -> None:
    """SpeechBrain's ``torch_parameter_transfer``, loading weights only.

    Non-strict, as SpeechBrain's: keys missing on either side are logged.
    """
    from speechbrain.utils.checkpoints import hook_on_loading_state_dict_checkpoint

    state = hook_on_loading_state_dict_checkpoint(load_weights(path))
    incompatible = obj.load_state_dict(state, strict=False)
    for key in incompatible.missing_keys:
        logger.warning("%s has no parameters for %s of %s", path, key, type(obj))
    for key in incompatible.unexpected_keys:
        logger.warning("%s: %s has no use for the key %s", path, type(obj), key)


def recover_weights(obj: Any, path: Union[str, Path]) -> None:
    """SpeechBrain's ``torch_recovery`` (strict), loading weights only."""
    from speechbrain.utils.checkpoints import hook_on_loading_state_dict_checkpoint

    obj.load_state_dict(hook_on_loading_state_dict_checkpoint(load_weights(path)))


# The statistics SpeechBrain 1.1's InputNormalization saves and loads: public
# attributes, kept outside its state_dict.
NORMALISER_STATS = ("count", "glob_mean", "glob_std")


def normalization_statistics(obj: Any, path: Union[str, Path]) -> None:
    """``InputNormalization._load``, loading weights only."""
    state = load_weights(path, obj.device)
    for key in NORMALISER_STATS:
        setattr(obj, key, state[key])


def _safe_hook(obj: Any) -> Union[Callable[[Any, Any], None], None, str]:
    """The weights-only hook for ``obj``; None: its own loader reads no pickle.

    A string: the SpeechBrain hook that would load it, not known to be safe.
    """
    from speechbrain.dataio.encoder import CategoricalEncoder
    from speechbrain.processing.features import InputNormalization
    from speechbrain.utils.checkpoints import (
        DEFAULT_LOAD_HOOKS,
        DEFAULT_TRANSFER_HOOKS,
        get_default_hook,
        torch_parameter_transfer,
        torch_recovery,
    )

    hook = get_default_hook(obj, DEFAULT_TRANSFER_HOOKS)
    if hook is torch_parameter_transfer:
        return transfer_weights
    # SpeechBrain registers its loader as the hook; comparing with it is the
    # only way to recognise it (no public name; hence speechbrain<1.2).
    if hook is InputNormalization._load:
        return normalization_statistics
    if hook is None:
        hook = get_default_hook(obj, DEFAULT_LOAD_HOOKS)
        if hook is torch_recovery:
            return recover_weights
        # Label files: text read with ast.literal_eval.
        if hook is CategoricalEncoder.load_if_possible:
            return None
    return getattr(hook, "__qualname__", repr(hook))


def use_weights_only_hooks(pretrainer: Any, name: str) -> None:
    """Makes ``pretrainer`` load every loadable with ``weights_only=True``.

    Raises
    ------
    UntrustedModelError
        The folder names its own load hooks, or a loadable whose SpeechBrain
        loader is not known to load weights only.
    """
    if pretrainer.custom_hooks:
        raise UntrustedModelError(
            f"{name}: 'pretrainer' names its own load hooks "
            f"({', '.join(pretrainer.custom_hooks)}) {OVERRIDE}"
        )
    for key, obj in pretrainer.loadables.items():
        hook = _safe_hook(obj)
        if isinstance(hook, str):
            raise UntrustedModelError(
                f"{name}: 'pretrainer.loadables.{key}' would load with {hook}, "
                f"which may unpickle code {OVERRIDE}"
            )
        if hook is not None:
            pretrainer.custom_hooks[key] = hook


def _outside(path: str, where: Union[Path, str]) -> Union[str, None]:
    """Why a Pretrainer path leaves the model folder, or None when it stays."""
    if "://" in path:
        return "a URL"
    # Pretrainer.split_path: <source>/<file>, a bare name in the current
    # directory.
    folder, file = path.rsplit("/", 1) if "/" in path else (".", path)
    if file in ("", ".", ".."):
        return "not a file name"
    if isinstance(where, str):  # a Hub repo: its own files, at its revision
        return None if folder == where.rstrip("/") else "not a file of the Hub repo"
    # SpeechBrain reads <folder> from the disk when it is a folder there, and
    # as a Hub id otherwise.
    if not Path(folder or "/").is_dir():
        return "not in the folder (SpeechBrain would fetch it from the Hub)"
    if not Path(folder or "/", file).resolve().is_relative_to(where.resolve()):
        return "outside the folder"
    return None


def check_pretrainer_paths(pretrainer: Any, where: Union[Path, str], name: str) -> None:
    """Refuses a ``Pretrainer`` that would read outside its model folder.

    ``pretrainer.paths`` as SpeechBrain will read them (after
    ``FolderPretrainer`` has joined bare names to ``where``): no URL, no
    other folder or Hub repo, no ``..`` or symlink leading out; a loadable
    without a path is ``<where>/<name>.ckpt``, inside.

    Arguments
    ---------
    pretrainer : speechbrain.utils.parameter_transfer.Pretrainer
        Built, nothing collected yet.
    where : Path or str
        The local folder, or the Hub id.
    name : str
        The checked ``hyperparams.yaml``, named in the error.

    Raises
    ------
    UntrustedModelError, ModelFolderError
        One line naming the file and the key.

    Example
    -------
    >>> import tempfile, torch
    >>> from speechbrain_eres2net.inference.folder import FolderPretrainer
    >>> folder = Path(tempfile.mkdtemp())
    >>> pre = FolderPretrainer(
    ...     loadables={"model": torch.nn.Linear(2, 2)}, paths={"model": "m.ckpt"}
    ... )
    >>> check_pretrainer_paths(pre, folder, "hyperparams.yaml")
    >>> pre.paths["model"] = "../m.ckpt"
    >>> check_pretrainer_paths(pre, folder, "hyperparams.yaml")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.inference.yaml_guard.UntrustedModelError: \
hyperparams.yaml: 'pretrainer.paths.model' reads '../m.ckpt', outside the folder; ...
    """
    from speechbrain.utils.parameter_transfer import Pretrainer

    if not isinstance(pretrainer, Pretrainer):
        raise ModelFolderError(
            f"{name}: 'pretrainer' is a {type(pretrainer).__name__}, expected a "
            "SpeechBrain Pretrainer"
        )
    joined = getattr(pretrainer, "_folder_paths", None)
    paths = joined(str(where)) if joined is not None else dict(pretrainer.paths)
    for key, path in paths.items():
        if key not in pretrainer.loadables:
            continue
        why = _outside(path, where) if isinstance(path, str) else "not a file name"
        if why is not None:
            raise UntrustedModelError(
                f"{name}: 'pretrainer.paths.{key}' reads {path!r}, {why}; an "
                f"untrusted folder reads only its own files {OVERRIDE}"
            )
