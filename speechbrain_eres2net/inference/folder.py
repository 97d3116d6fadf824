"""Loading model folders (local or Hub) with SpeechBrain's ``SpeakerRecognition``.

A folder's ``hyperparams.yaml`` names the code that builds its model, and
HyperPyYAML runs it while loading; unless the caller trusts the folder
(``trust_code``), the text is read once, checked against the allow-list
``model_folder_trusted_targets`` of ``verification.yaml`` (:mod:`.yaml_guard`)
and that same text is loaded; its Pretrainer then reads only the folder's own
files, weights only (:mod:`.checkpoint_guard`). See docs/security.md.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Optional, Union

from speechbrain.utils.fetching import FetchSource
from speechbrain.utils.parameter_transfer import Pretrainer

from ..paths import PathLike
from .checkpoint_guard import check_pretrainer_paths, use_weights_only_hooks
from .yaml_guard import (  # noqa: F401 (the names callers import from here)
    OVERRIDE,
    ModelFolderError,
    UntrustedModelError,
    check_hyperparams,
    is_trusted,
)

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
COMMIT = re.compile(r"[0-9a-f]{40}")
HPARAMS_FILE = "hyperparams.yaml"


class UnreachableModelError(OSError):
    """A model source is neither a local folder nor a reachable Hub repo."""


def _looks_local(source: str) -> bool:
    """Whether a name that does not exist was meant as a local path."""
    return (
        Path(source).is_absolute()
        or source.startswith((".", "~"))
        or source.count("/") > 1
        or "\\" in source
        or Path(source.split("/")[0]).is_dir()
    )


def model_source(source: PathLike) -> Union[Path, str]:
    """A local model folder (a ``Path``) or a Hub id (a ``str``).

    An existing folder is local; a name that does not exist but looks like
    a path (absolute, starting with ``.`` or ``~``, with more than one
    ``/``, or whose first part is a local folder, like ``models/x``) is an
    error at once; otherwise ``user/repo`` is a Hub id.

    Raises
    ------
    FileNotFoundError
        ``model folder not found: <source>``.

    Example
    -------
    >>> model_source("user/repo")
    'user/repo'
    >>> model_source("./no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: model folder not found: ./no/such/folder
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise FileNotFoundError(f"{text} is not a model folder: it is a file")
    if _looks_local(text) or not HUB_ID.fullmatch(text):
        # SpeechBrain reads any non-folder as a Hub id and goes to the
        # network; a mistyped local path deserves a local error.
        raise FileNotFoundError(f"model folder not found: {text}")
    return text


def _unreachable(repo_id: str, why: str) -> UnreachableModelError:
    return UnreachableModelError(
        f"{repo_id} is neither a local model folder nor a reachable Hugging Face "
        f"Hub repo: {why}"
    )


def _hub_file(
    repo_id: str, name: str, revision: Optional[str] = None
) -> Optional[Path]:
    """A file of a Hub repo from the Hugging Face cache (downloaded if needed).

    ``HF_HUB_OFFLINE=1`` reads the cache alone.

    Returns
    -------
    Path or None
        The cached file; None when the repo has no such file (or, offline,
        its cached copy has none).

    Raises
    ------
    UnreachableModelError
        The repo is not cached and the Hub cannot be reached, or the Hub has
        no such repo.
    """
    import huggingface_hub
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, name, revision=revision))
    except LocalEntryNotFoundError as err:
        cached = huggingface_hub.try_to_load_from_cache(
            repo_id, HPARAMS_FILE, revision=revision
        )
        if isinstance(cached, str):
            logger.debug("%s: the cached copy of %s has no %s", err, repo_id, name)
            return None
        raise _unreachable(
            repo_id,
            "it is not in the Hugging Face cache and the Hub cannot be "
            "reached (offline, HF_HUB_OFFLINE=1, or no network)",
        ) from err
    except EntryNotFoundError:
        return None
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise _unreachable(
            repo_id, "the Hub has no such repo (or it is private or gated)"
        ) from err
    except (OfflineModeIsEnabled, HfHubHTTPError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise _unreachable(repo_id, first or type(err).__name__) from err


def folder_file(source: PathLike, name: str) -> Optional[Path]:
    """A file of a model folder, local or on the Hub; None when it has none.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "calibration.json").write_text("{}")
    >>> folder_file(folder, "calibration.json").name, folder_file(folder, "x.txt")
    ('calibration.json', None)
    """
    where = model_source(source)
    if isinstance(where, Path):
        path = where / name
        if path.is_symlink() and not path.resolve().is_relative_to(where.resolve()):
            # A folder reads only itself (docs/security.md).
            raise UntrustedModelError(f"{path}: is a link to a file outside the folder")
        return path if path.is_file() else None
    return _hub_file(where, name)


def _hparams_to_load(
    where: Union[Path, str], savedir: Optional[PathLike]
) -> tuple[Path, Optional[str]]:
    """The ``hyperparams.yaml`` SpeechBrain will read, and the Hub commit of it."""
    revision = None
    if isinstance(where, Path):
        hparams = where / HPARAMS_FILE
        if not hparams.is_file():
            raise FileNotFoundError(
                f"{where} is not a model folder: it has no {HPARAMS_FILE}"
            )
    else:
        hparams = _hub_file(where, HPARAMS_FILE)
        if hparams is None:
            raise FileNotFoundError(
                f"{where} is not a model folder: the Hub repo has no {HPARAMS_FILE}"
            )
        # SpeechBrain then loads the very commit that was checked.
        commit = hparams.parent.name
        revision = commit if COMMIT.fullmatch(commit) else None
    if savedir is not None and (Path(savedir) / HPARAMS_FILE).exists():
        # SpeechBrain's fetch uses a file already in savedir as it is.
        hparams = Path(savedir) / HPARAMS_FILE
    return hparams, revision


def _shown(hparams: Path, where: Union[Path, str]) -> str:
    """The checked file as people know it (the Hub cache path means little)."""
    if (
        isinstance(where, str)
        and hparams.name == HPARAMS_FILE
        and COMMIT.fullmatch(hparams.parent.name)
    ):
        return f"{where}/{HPARAMS_FILE}"
    return str(hparams)


def load_model_folder(
    source: PathLike,
    savedir: Optional[PathLike] = None,
    device: str = "cpu",
    trust_code: bool = False,
):
    """Loads a model folder with SpeechBrain's ``SpeakerRecognition``.

    Its ``hyperparams.yaml`` names the code that builds the model, and
    HyperPyYAML runs it. Unless ``trust_code``, the file is read once, checked
    (:func:`~.yaml_guard.check_hyperparams`: every tag against
    ``model_folder_trusted_targets`` of ``verification.yaml``, tuple texts,
    references) before anything is built, and that same text is loaded; the
    Pretrainer then reads only the folder's own files
    (:func:`~.checkpoint_guard.check_pretrainer_paths`), with
    ``torch.load(weights_only=True)``. A Hub id is checked and loaded at the
    same commit.

    Arguments
    ---------
    source : str or path
        A local model folder or a Hugging Face Hub id (``user/repo``).
    savedir : str or path, optional
        Where SpeechBrain collects the files; None uses the folder itself
        (local) or the Hugging Face cache (Hub), creating no links.
    device : str
        Torch device for the modules.
    trust_code : bool
        Load whatever the folder names, as SpeechBrain's ``from_hparams``
        does (only for a folder you trust).

    Returns
    -------
    speechbrain.inference.speaker.SpeakerRecognition

    Raises
    ------
    UntrustedModelError
        The folder names code outside the allow-list, or files outside itself.
    ModelFolderError
        The folder's YAML is no model folder's (one line).
    FileNotFoundError, UnreachableModelError
        No such local folder, or a Hub id that cannot be fetched.
    """
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig

    where = model_source(source)
    hparams, revision = _hparams_to_load(where, savedir)
    fetch_config = FetchConfig(revision=revision)
    if trust_code:
        return SpeakerRecognition.from_hparams(
            source=str(where),
            savedir=None if savedir is None else str(savedir),
            run_opts={"device": device},
            fetch_config=fetch_config,
        )
    shown = _shown(hparams, where)
    if isinstance(where, Path) and not (where / HPARAMS_FILE).resolve().is_relative_to(
        where.resolve()
    ):
        raise UntrustedModelError(
            f"{shown}: is a link to a file outside the folder {OVERRIDE}"
        )
    # Read once: the text checked is the text loaded (no second read that
    # could find another file).
    text = hparams.read_text(encoding="utf-8")
    check_hyperparams(text, shown)
    return _load_checked(where, text, shown, savedir, device, fetch_config)


def _load_checked(
    where: Union[Path, str],
    text: str,
    shown: str,
    savedir: Optional[PathLike],
    device: str,
    fetch_config,
):
    """SpeechBrain's ``pretrained_from_hparams`` on checked text, files checked.

    Not SpeechBrain's function itself: it reads the YAML file again (the text
    loaded could then differ from the text checked) and lets the Pretrainer
    fetch and unpickle before its paths can be looked at.
    """
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import LocalStrategy, fetch

    if savedir is not None:
        # As SpeechBrain does: savedir holds a link to the folder's YAML.
        fetch(
            HPARAMS_FILE,
            source=str(where),
            savedir=savedir,
            local_strategy=LocalStrategy.SYMLINK,
            fetch_config=fetch_config,
        )
    hparams = load_hyperpyyaml(io.StringIO(text), {}, True)
    missing = [key for key in ("modules", "pretrainer") if key not in hparams]
    if missing:
        raise ModelFolderError(
            f"{shown}: has no {' or '.join(repr(k) for k in missing)}, which a "
            "model folder names"
        )
    hparams["savedir"] = savedir
    pretrainer = hparams["pretrainer"]
    check_pretrainer_paths(pretrainer, where, shown)
    use_weights_only_hooks(pretrainer, shown)
    pretrainer.set_collect_in(savedir)
    pretrainer.collect_files(
        default_source=str(where),
        local_strategy=LocalStrategy.SYMLINK,
        fetch_config=fetch_config,
    )
    pretrainer.load_collected()
    return SpeakerRecognition(
        modules=hparams["modules"], hparams=hparams, run_opts={"device": device}
    )


class FolderPretrainer(Pretrainer):
    """A ``Pretrainer`` whose bare file names are files of the model folder.

    SpeechBrain reads a path without a ``/`` as relative to the current
    directory; here it is joined to the ``source`` given to
    ``from_hparams`` (a local folder or a Hub repo), so a model folder
    needs no absolute paths and no overrides.

    Example
    -------
    >>> import torch
    >>> pretrainer = FolderPretrainer(
    ...     loadables={"model": torch.nn.Linear(2, 2)},
    ...     paths={"model": "model.ckpt"},
    ... )
    >>> pretrainer._folder_paths("user/repo")["model"]
    'user/repo/model.ckpt'
    """

    def _folder_paths(self, source: Union[str, FetchSource]) -> dict:
        """``self.paths`` with bare file names joined to ``source``."""
        joined = dict(self.paths)
        for name, path in self.paths.items():
            if isinstance(path, str) and "/" not in path:
                if isinstance(source, FetchSource):
                    joined[name] = FetchSource(
                        source.FetchFrom, f"{str(source.path).rstrip('/')}/{path}"
                    )
                else:
                    joined[name] = f"{str(source).rstrip('/')}/{path}"
        return joined

    def collect_files(self, default_source=None, **kwargs):  # noqa: D102
        # Pretrainer resolves a loadable without a path as
        # <default_source>/<name>.ckpt, but model folders name their files
        # (label_encoder.txt is no .ckpt) and published folders' YAML lists
        # them as bare names, which Pretrainer itself reads from the current
        # directory: they are joined to the source here, before it fetches.
        if default_source is not None:
            self.paths = self._folder_paths(default_source)
        return super().collect_files(default_source=default_source, **kwargs)
