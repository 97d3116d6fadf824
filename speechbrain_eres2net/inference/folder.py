"""Loading model folders (local or Hub) with SpeechBrain's ``SpeakerRecognition``.

A folder's ``hyperparams.yaml`` names the code that builds its model, and
HyperPyYAML runs it while loading; every tag is checked against the
allow-list ``model_folder_trusted_targets`` of ``verification.yaml`` before
anything is built, unless the caller trusts the folder (``trust_code``).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import inspect
import logging
import pydoc
import re
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Optional, Union

from speechbrain.utils.fetching import FetchSource
from speechbrain.utils.parameter_transfer import Pretrainer

from ..paths import PathLike
from ..settings import default

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
COMMIT = re.compile(r"[0-9a-f]{40}")
HPARAMS_FILE = "hyperparams.yaml"

# HyperPyYAML tags whose values are data: references, copies, tuples.
DATA_TAGS = frozenset({"!ref", "!copy", "!tuple", "!PLACEHOLDER"})
# YAML's own types; any other ``!!`` tag (``!!python/object/apply:...``) runs
# code in the PyYAML loader SpeechBrain uses.
CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}"
    for kind in (
        *("str", "int", "float", "bool", "null", "binary", "timestamp"),
        *("seq", "map", "set", "omap", "pairs"),
    )
)
# Tags that import a dotted target; plain allow-list entries cover them.
IMPORT_TAGS = ("!new:", "!name:", "!module:")
# Tags that call a function or read another file: only an entry that names
# the tag and the exact target (``!apply:pkg.func``) covers them.
CALL_TAGS = ("!apply:", "!applyref:", "!include:")
OVERRIDE = (
    "(model_folder_trusted_targets in verification.yaml); pass "
    "--trust-model-code (trust_code=True) only for a folder you trust"
)


class UntrustedModelError(ValueError):
    """A model folder's ``hyperparams.yaml`` names code outside the allow-list."""


class UnreachableModelError(OSError):
    """A model source is neither a local folder nor a reachable Hub repo."""


def is_trusted(tag: str, target: str, trusted: Sequence[str]) -> bool:
    """Whether an allow-list entry covers ``<tag><target>``.

    An entry ending with ``.`` covers every target it starts, any other entry
    the target it equals; both cover the importing tags (``!new:``,
    ``!name:``, ``!module:``). An entry that starts with ``!`` covers that
    tag and target exactly, and is the only kind that covers ``!apply:``,
    ``!applyref:`` and ``!include:``.

    Example
    -------
    >>> is_trusted("!new:", "torch.nn.Linear", ["torch.nn."])
    True
    >>> is_trusted("!apply:", "torch.nn.Linear", ["torch.nn."])
    False
    >>> is_trusted("!apply:", "pkg.make", ["!apply:pkg.make"])
    True
    """
    for entry in trusted:
        if entry.startswith("!"):
            if entry == f"{tag}{target}":
                return True
        elif tag in IMPORT_TAGS and (
            target.startswith(entry) if entry.endswith(".") else target == entry
        ):
            return True
    return False


def _defined_as(target: str) -> Optional[str]:
    """Where the object ``target`` names is defined (``module.qualname``).

    A name may reach another module through an attribute (``pkg.mod.os.system``
    is ``posix.system``); this is what the allow-list checks it by too. Only
    called on targets the allow-list covers, so only their modules import.
    None when nothing of that name exists (SpeechBrain then says so); an
    object that is no class, function or module is described by its type.
    """
    try:
        obj = pydoc.locate(target)
    except pydoc.ErrorDuringImport:
        return None
    if obj is None:
        return None
    if inspect.ismodule(obj):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return f"a {type(obj).__name__} object"


def tagged_nodes(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(key path, tag)`` of every tagged node of a round-trip YAML tree.

    Mappings (their keys too), sequences and sets are walked; a node reached
    again through an alias is listed once.

    Example
    -------
    >>> from ruamel.yaml import YAML
    >>> tree = YAML(typ="rt").load("a: !new:x.Y {b: [1, !name:os.system ]}")
    >>> list(tagged_nodes(tree))
    [('a', '!new:x.Y'), ('a.b[1]', '!name:os.system')]
    """
    yield from _walk(node, path, set())


def _walk(node: Any, path: str, seen: set[int]) -> Iterator[tuple[str, str]]:
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag:
        yield path, tag
    if not isinstance(node, (Mapping, list, AbstractSet)) or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            yield from _walk(key, f"{path}.<key>" if path else "<key>", seen)
            yield from _walk(value, where, seen)
    else:
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]", seen)


def _refusal(tag: str, trusted: Sequence[str]) -> Optional[str]:
    """Why a tag may not load, or None when it may."""
    if tag in DATA_TAGS or tag in CORE_TAGS:
        return None
    kind = next((k for k in (*IMPORT_TAGS, *CALL_TAGS) if tag.startswith(k)), None)
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    if kind is None:
        return (
            f"uses the tag {shown}, which is neither HyperPyYAML data nor on the "
            "allow-list of trusted targets"
        )
    target = tag[len(kind) :]
    if not is_trusted(kind, target, trusted):
        return f"uses {shown}, which is not on the allow-list of trusted targets"
    if kind != "!include:":
        defined = _defined_as(target)
        if defined not in (None, target) and not is_trusted(kind, defined, trusted):
            return (
                f"uses {shown}, which is {defined}, not on the allow-list of "
                "trusted targets"
            )
    return None


def check_hyperparams(
    text: str, name: str, trusted: Optional[Sequence[str]] = None
) -> None:
    """Refuses a ``hyperparams.yaml`` whose tags name untrusted code.

    HyperPyYAML runs what its tags name while it loads; here every tag is
    checked first, without running anything: data tags (``!ref``, ``!copy``,
    ``!tuple``, ``!PLACEHOLDER``) pass, ``!new:``/``!name:``/``!module:``
    targets (and where they are defined) must be on the allow-list
    (:func:`is_trusted`), and any other tag is refused.

    Arguments
    ---------
    text : str
        The YAML text.
    name : str
        The file, named in the error.
    trusted : sequence of str, optional
        Allow-list; default ``model_folder_trusted_targets`` of
        ``hparams/verification.yaml``.

    Raises
    ------
    UntrustedModelError
        One line naming the file, the key, the tag and the way round it.

    Example
    -------
    >>> check_hyperparams("lin: !new:torch.nn.Linear [2, 2]", "m/hyperparams.yaml")
    >>> check_hyperparams("x: !apply:os.system [ls]", "m/hyperparams.yaml")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.inference.folder.UntrustedModelError: m/hyperparams.yaml: \
'x' uses !apply:os.system, which is not on the allow-list of trusted targets ...
    """
    from ruamel.yaml import YAML

    if trusted is None:
        trusted = default("model_folder_trusted_targets")
    for path, tag in tagged_nodes(YAML(typ="rt").load(text)):
        why = _refusal(tag, trusted)
        if why is not None:
            raise UntrustedModelError(
                f"{name}: '{path or '(document)'}' {why} {OVERRIDE}"
            )


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
    HyperPyYAML runs it: unless ``trust_code``, every tag is checked against
    ``model_folder_trusted_targets`` of ``verification.yaml`` first
    (:func:`check_hyperparams`), before anything is built.

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
        Load whatever the folder names (only for a folder you trust).

    Returns
    -------
    speechbrain.inference.speaker.SpeakerRecognition

    Raises
    ------
    UntrustedModelError
        The folder names code outside the allow-list.
    FileNotFoundError, UnreachableModelError
        No such local folder, or a Hub id that cannot be fetched.
    """
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig

    where = model_source(source)
    hparams, revision = _hparams_to_load(where, savedir)
    if not trust_code:
        check_hyperparams(hparams.read_text(encoding="utf-8"), _shown(hparams, where))
    return SpeakerRecognition.from_hparams(
        source=str(where),
        savedir=None if savedir is None else str(savedir),
        run_opts={"device": device},
        fetch_config=FetchConfig(revision=revision),
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
