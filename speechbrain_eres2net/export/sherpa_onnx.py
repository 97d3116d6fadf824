"""What sherpa-onnx needs of an ONNX speaker model, and whether a folder can give it.

sherpa-onnx (k2-fsa/sherpa-onnx, the runtime that ships speaker models to
Android, iOS, embedded boards and WebAssembly) runs a speaker embedding
graph only with metadata naming its ``framework`` ("3d-speaker" or
"wespeaker"), ``sample_rate``, ``output_dim``, ``normalize_samples`` and
``language`` (``speaker-embedding-extractor-model.cc``), and it computes
the graph's input itself: 80-bin log-mel Kaldi filterbanks by
kaldi-native-fbank with its ``FeatureExtractorConfig`` defaults, which no
metadata changes (25 ms povey window, 10 ms hop, pre-emphasis 0.97, DC
removal, no dither, frames centred on each hop with reflected edges --
``snip_edges=False`` -- and mel banks from 20 Hz to 400 Hz below Nyquist),
then, with ``feature_normalize_type: global-mean``, removes each bin's
mean over the utterance (``speaker-embedding-extractor-general-impl.h``;
read at sherpa-onnx commit 634265c, August 2026). The graph gets
``(1, frames, 80)`` and its first output is taken as ``(1, dim)``.

So a model folder deploys exactly when its front end is that filterbank
with per-utterance mean removal: :class:`~speechbrain_eres2net.KaldiFbank`
with ``high_freq=-400, snip_edges=False`` (what our recipes train with)
followed by a sentence mean normaliser without variance scaling, or with
its own ``mean_norm``. Weights imported from 3D-Speaker were trained on
``torchaudio``'s defaults (banks to Nyquist, ``snip_edges=True``), which
sherpa-onnx does not compute: they run there as sherpa-onnx's own
3D-Speaker exports do, on slightly different features, and the export
says so (:func:`sherpa_deployment`). Any other front end (SpeechBrain's
``Fbank``: other mel scale, window and framing) is refused in one line.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Optional

from torch import nn

from ..lobes.features import KaldiFbank

logger = logging.getLogger(__name__)

# kaldi-native-fbank settings sherpa-onnx feeds a speaker model (features.h).
SHERPA_FBANK = {
    "n_mels": 80,
    "frame_length": 25.0,
    "frame_shift": 10.0,
    "low_freq": 20.0,
    "high_freq": -400.0,
    "snip_edges": False,
}
# What 3D-Speaker's own training computes (torchaudio.compliance.kaldi.fbank
# defaults): the settings of every imported official checkpoint.
OFFICIAL_FBANK = dict(SHERPA_FBANK, high_freq=0.0, snip_edges=True)


class SherpaDeployment(NamedTuple):
    """Whether and how a folder runs in sherpa-onnx.

    Attributes
    ----------
    exact : bool
        sherpa-onnx computes exactly the features the model was trained on.
    note : str
        What differs, when not exact (empty otherwise).
    """

    exact: bool
    note: str


class NotDeployableError(ValueError):
    """A model folder's front end cannot be reproduced by sherpa-onnx."""


def _fbank_settings(fbank: KaldiFbank) -> dict:
    return {key: getattr(fbank, key) for key in SHERPA_FBANK}


def _removes_sentence_mean(
    compute_features: nn.Module, mean_var_norm: Optional[nn.Module]
) -> bool:
    """Whether the features reach the model with only each bin's mean removed."""
    if mean_var_norm is None:
        return bool(compute_features.mean_norm)
    from speechbrain.processing.features import InputNormalization

    # SpeechBrain 1.1 always removes the mean (mean_norm=False is refused).
    return (
        isinstance(mean_var_norm, InputNormalization)
        and mean_var_norm.norm_type == "sentence"
        and not mean_var_norm.std_norm
    )


def sherpa_deployment(
    compute_features: nn.Module, mean_var_norm: Optional[nn.Module]
) -> SherpaDeployment:
    """Says whether a folder's front end is one sherpa-onnx computes.

    Arguments
    ---------
    compute_features : nn.Module
        The folder's ``compute_features``.
    mean_var_norm : nn.Module, optional
        The folder's ``mean_var_norm``.

    Returns
    -------
    SherpaDeployment
        ``exact`` for our recipes' front end; not exact, with a note, for
        the official 3D-Speaker one.

    Raises
    ------
    NotDeployableError
        Any other front end, with the reason.

    Example
    -------
    >>> sherpa_deployment(KaldiFbank(high_freq=-400.0, snip_edges=False), None)
    SherpaDeployment(exact=True, note='')
    >>> sherpa_deployment(KaldiFbank(), None).exact
    False
    >>> from speechbrain.lobes.features import Fbank
    >>> sherpa_deployment(Fbank(n_mels=80), None)
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.export.sherpa_onnx.NotDeployableError: sherpa-onnx computes Kaldi fbank features (kaldi-native-fbank) and this folder's front end is Fbank, which no sherpa-onnx setting reproduces; retrain with a recipe YAML of this version (KaldiFbank, high_freq -400, snip_edges False) or run the ONNX graph with onnxruntime
    """  # noqa: E501
    if not isinstance(compute_features, KaldiFbank):
        raise NotDeployableError(
            "sherpa-onnx computes Kaldi fbank features (kaldi-native-fbank) and "
            f"this folder's front end is {type(compute_features).__name__}, which "
            "no sherpa-onnx setting reproduces; retrain with a recipe YAML of this "
            "version (KaldiFbank, high_freq -400, snip_edges False) or run the "
            "ONNX graph with onnxruntime"
        )
    if not _removes_sentence_mean(compute_features, mean_var_norm):
        raise NotDeployableError(
            "sherpa-onnx removes each utterance's per-bin mean and nothing else, "
            f"and this folder normalises features with {mean_var_norm!r}"
        )
    settings = _fbank_settings(compute_features)
    if settings == SHERPA_FBANK:
        return SherpaDeployment(True, "")
    if settings == OFFICIAL_FBANK:
        return SherpaDeployment(
            False,
            "this folder's weights were trained on torchaudio's Kaldi fbank "
            "defaults (mel banks to Nyquist, snip_edges framing), as every "
            "3D-Speaker checkpoint; sherpa-onnx computes banks to 400 Hz below "
            "Nyquist with centred frames, as it does for 3D-Speaker's own exports",
        )
    differs = {k: v for k, v in settings.items() if SHERPA_FBANK[k] != v}
    raise NotDeployableError(
        f"sherpa-onnx computes its filterbank with {SHERPA_FBANK} and this "
        f"folder's KaldiFbank differs in {differs}"
    )


def sherpa_metadata(
    sample_rate: int,
    output_dim: int,
    language: str = "",
    comment: str = "",
    url: str = "",
) -> dict[str, str]:
    """The ONNX metadata sherpa-onnx reads for a speaker embedding model.

    ``framework`` is "3d-speaker": the family whose feature pipeline
    (inputs in [-1, 1], ``global-mean`` feature normalisation) is ours.
    sherpa-onnx refuses a graph whose ``language`` is empty, so an unknown
    language is written "unknown".

    Example
    -------
    >>> meta = sherpa_metadata(16000, 192, "English")
    >>> meta["framework"], meta["output_dim"], meta["feature_normalize_type"]
    ('3d-speaker', '192', 'global-mean')
    """
    from .. import __version__

    return {
        "framework": "3d-speaker",
        "sample_rate": str(int(sample_rate)),
        "output_dim": str(int(output_dim)),
        "normalize_samples": "1",
        "feature_normalize_type": "global-mean",
        "language": language or "unknown",
        "comment": comment,
        "url": url,
        "exported_by": f"speechbrain-eres2net {__version__}",
    }
