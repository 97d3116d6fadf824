"""Loading model folders (local or Hub) with SpeechBrain's ``SpeakerRecognition``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Union

from speechbrain.utils.fetching import FetchSource
from speechbrain.utils.parameter_transfer import Pretrainer

from ..paths import PathLike

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def load_model_folder(
    source: PathLike, savedir: Optional[PathLike] = None, device: str = "cpu"
):
    """Loads a model folder with SpeechBrain's ``SpeakerRecognition``.

    Arguments
    ---------
    source : str or path
        A local model folder or a Hugging Face Hub id (``user/repo``).
    savedir : str or path, optional
        Where SpeechBrain collects the files; None uses the folder itself
        (local) or the Hugging Face cache (Hub), creating no links.
    device : str
        Torch device for the modules.

    Returns
    -------
    speechbrain.inference.speaker.SpeakerRecognition
    """
    from speechbrain.inference.speaker import SpeakerRecognition

    source = str(source)
    if Path(source).is_dir():
        if not (Path(source) / "hyperparams.yaml").is_file():
            raise FileNotFoundError(
                f"{source} is not a model folder: it has no hyperparams.yaml"
            )
    elif not HUB_ID.fullmatch(source):
        # SpeechBrain reads any non-folder as a Hub id and goes to the
        # network; a mistyped local path deserves a local error.
        raise FileNotFoundError(f"model folder not found: {source}")
    return SpeakerRecognition.from_hparams(
        source=source,
        savedir=None if savedir is None else str(savedir),
        run_opts={"device": device},
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
        if default_source is not None:
            self.paths = self._folder_paths(default_source)
        return super().collect_files(default_source=default_source, **kwargs)
