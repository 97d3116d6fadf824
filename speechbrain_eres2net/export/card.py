"""The README.md model card of a model folder.

The card is a Hugging Face Hub model card built with ``huggingface_hub``'s
card classes: its front matter holds the license, the library, tags, the
training datasets, the language(s) and a ``model-index`` with the EER,
minDCF (p=0.01) and, for a calibrated folder, Cllr measured on the export's
trial list, so the Hub shows them as evaluation results.

The card describes any embedding lobe: its class, parameter count and
embedding size come from the model itself (sizes from a forward pass, see
:func:`~speechbrain_eres2net.inference.probe.probe_model`), and the ERes2Net
paragraph and citation appear only for ERes2Net models.

Nothing in the card may name a path of the machine that wrote it: datasets
are given by name, trial lists and checkpoints by file name, and
:func:`check_no_local_path` refuses a card that would publish one.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Optional

import torch
from huggingface_hub import EvalResult, ModelCardData
from huggingface_hub import ModelCard as HubModelCard

from ..dataio.speech_handling import SpeechHandling
from .yaml_nodes import FRONT_END, dump_yaml

ERES2NET_ABOUT = """ERes2Net (Chen et al., "An Enhanced Res2Net with Local and
Global Feature Fusion for Speaker Verification", Interspeech 2023, arXiv
2305.12838): a 2-D Res2Net over the filterbank with attentional feature fusion.
"""

# As the authors cite it in the 3D-Speaker repository (modelscope/3D-Speaker,
# references), with the arXiv identifier added.
ERES2NET_BIBTEX = """@inproceedings{chen2023eres2net,
  title={An Enhanced Res2Net with Local and Global Feature Fusion for Speaker Verification},
  author={Chen, Yafeng and Zheng, Siqi and Wang, Hui and Cheng, Luyao and Chen, Qian and Qi, Jiajun},
  booktitle={Interspeech 2023},
  year={2023},
  eprint={2305.12838},
  archivePrefix={arXiv}
}"""  # noqa: E501

# The license identifiers the Hub accepts in a card's ``license`` field, as
# listed in its documentation (huggingface/hub-docs,
# docs/hub/repositories-licenses.md, 2026-08); huggingface_hub has no list.
# ``other`` means "see the LICENSE file of the repo".
HUB_LICENSES = frozenset(
    # One word per identifier, in the documentation's order, so the list
    # can be compared with it line by line.
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m
    bigscience-bloom-rail-1.0 bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0
    bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
    cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0
    cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0
    etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
    lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl
    apple-amlr mpl-2.0 odc-by odbl openmdw-1.0 openmdw-1.1 openrail++ osl-3.0
    postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
    fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
    llama3.3 llama4 grok2-community gemma unknown other
    """.split()  # noqa: SIM905
)

# The Hub reads ``language`` as ISO 639-1/2/3 codes (optionally with a
# region or script subtag, BCP 47 style) or ``multilingual``.
_LANGUAGE = re.compile(r"^(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*|multilingual)$")

# An absolute POSIX path (/x/y), a home-relative one (~/x) or a Windows
# drive path (C:\x, C:/x) inside free text. The look-behind keeps URLs
# (https://host/a/b), Hub ids (user/repo) and "a / b" arithmetic out.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/~-])(?:~?/[\w.+-]+/[\w.+-]|~/[\w.+-]|[A-Za-z]:[\\/][\w.+-])"
)

TAGS = (
    "speaker-verification",
    "speaker-recognition",
    "embeddings",
    "speechbrain",
    "pytorch",
)


def check_license(license: str, option: str = "license") -> str:
    """Returns ``license`` if the Hub knows it, else raises a one-line error.

    Arguments
    ---------
    license : str
        A license identifier, e.g. ``apache-2.0``.
    option : str
        How the error names the value (the command line passes ``--license``).

    Example
    -------
    >>> check_license("cc-by-4.0")
    'cc-by-4.0'
    >>> check_license("Apache 2", "--license")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --license 'Apache 2' is not a Hugging Face Hub license ...
    """
    if license not in HUB_LICENSES:
        raise ValueError(
            f"{option} {license!r} is not a Hugging Face Hub license identifier; "
            f"use one of: {', '.join(sorted(HUB_LICENSES))}"
        )
    return license


def check_language(language: str, option: str = "language") -> str:
    """Returns ``language`` if it is a language code the Hub reads.

    Example
    -------
    >>> check_language("en"), check_language("zh-Hans")
    ('en', 'zh-Hans')
    >>> check_language("English")
    Traceback (most recent call last):
    ...
    ValueError: language 'English' is not an ISO 639 code (e.g. en, zh, yue) or multilingual
    """  # noqa: E501
    if not _LANGUAGE.match(language):
        raise ValueError(
            f"{option} {language!r} is not an ISO 639 code (e.g. en, zh, yue) "
            "or multilingual"
        )
    return language


def check_name(value: str, option: str) -> str:
    """Returns a dataset name if it holds no absolute local path.

    A card is published; a path such as ``/home/me/voxceleb`` says nothing
    to its readers and tells the world about the machine that wrote it.

    Example
    -------
    >>> check_name("voxceleb2", "--training-data")
    'voxceleb2'
    >>> check_name("quickstart on /data/vox", "--training-data")
    Traceback (most recent call last):
    ...
    ValueError: --training-data must name the data, not a local path: 'quickstart on /data/vox'
    """  # noqa: E501
    if _ABSOLUTE_PATH.search(value) or PurePath(value.strip()).is_absolute():
        raise ValueError(f"{option} must name the data, not a local path: {value!r}")
    return value


def check_no_local_path(text: str, paths: Iterable[str]) -> None:
    """Raises ``ValueError`` if ``text`` contains any of ``paths``.

    The last guard before a card is written: ``paths`` are the local
    folders the export knew (output, trial list, data root, working and
    home folders); a root such as ``/`` is too short to test and skipped.

    Example
    -------
    >>> check_no_local_path("trials `dev.txt`", ["/srv/data/realspk", "/"])
    >>> check_no_local_path("on /srv/data/realspk/dev.txt", ["/srv/data/realspk"])
    Traceback (most recent call last):
    ...
    ValueError: the model card would publish the local path /srv/data/realspk; name the data instead (--training-data, --eval-dataset)
    """  # noqa: E501
    for path in sorted({str(p) for p in paths}, key=len, reverse=True):
        if len(path.strip("/\\")) > 2 and path in text:
            raise ValueError(
                f"the model card would publish the local path {path}; name the "
                "data instead (--training-data, --eval-dataset)"
            )


@dataclass
class ModelCard:
    """What the model card says beyond what the folder itself holds.

    Attributes
    ----------
    title : str
        The card's heading (and its ``model-index`` name).
    training_data : str
        What the model was trained on, in words (never a local path);
        empty: not stated.
    datasets : list of str
        Names or Hub ids of the training datasets (front matter).
    eval_dataset : str
        Name of the data the trial list comes from (``model-index``);
        :func:`~speechbrain_eres2net.export.model_folder.write_model_folder`
        defaults it to the data root folder's name.
    language : list of str
        Language codes of the training speech; empty: not stated (omitted).
    source : str
        Where the weights come from (a recipe, a converted checkpoint).
    license : str
        A Hub license identifier, see :data:`HUB_LICENSES`.
    metrics, calibration : dict
        Filled by the export: the trial list's metrics and the calibration.
    speech : dict
        Speech detection of the measurement: ``vad`` and
        ``min_speech_seconds``.
    notes : list of str
        Extra lines of the Model section.
    """

    title: str = "Speaker embeddings"
    training_data: str = ""
    source: str = ""
    license: str = "apache-2.0"
    metrics: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    datasets: list = field(default_factory=list)
    eval_dataset: str = ""
    language: list = field(default_factory=list)
    speech: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here too, so that a library caller gets the same errors as
        # the command line, before any model is loaded or measured.
        check_license(self.license)
        self.language = [check_language(code) for code in self.language]
        self.datasets = [check_name(d, "dataset") for d in self.datasets]
        check_name(self.training_data, "training data")
        check_name(self.eval_dataset, "evaluation dataset")


def model_title(model: torch.nn.Module, detail: str) -> str:
    """``"<model class> speaker embeddings (<detail>)"``.

    Example
    -------
    >>> model_title(torch.nn.Linear(2, 2), "quickstart")
    'Linear speaker embeddings (quickstart)'
    """
    return f"{type(model).__name__} speaker embeddings ({detail})"


def eval_results(card: ModelCard) -> list[EvalResult]:
    """The ``model-index`` entries of a card's measured metrics.

    EER is published in percent (``metric_name`` says so); minDCF at
    p_target 0.01 with unit costs; Cllr (bits) only for a calibrated
    folder, measured on the same trials the calibration was fitted on.

    Example
    -------
    >>> card = ModelCard(eval_dataset="realspk", metrics={
    ...     "eer": 0.0525, "min_dcf_0.01": 0.31, "trials": "dev_trials.txt"})
    >>> [(r.metric_type, r.metric_value) for r in eval_results(card)]
    [('eer', 5.25), ('min_dcf', 0.31)]
    >>> eval_results(ModelCard())
    []
    """
    metrics = card.metrics
    if not metrics:
        return []
    common = {
        "task_type": "speaker-verification",
        "task_name": "Speaker verification",
        "dataset_type": card.eval_dataset or "unnamed",
        "dataset_name": card.eval_dataset or "unnamed",
        "dataset_split": metrics["trials"],
    }
    # Rounded for display: finer digits than the trial count supports
    # would only be noise.
    results = [
        EvalResult(
            **common,
            metric_type="eer",
            metric_name="EER (%)",
            metric_value=round(100 * float(metrics["eer"]), 4),
            metric_args={"unit": "percent"},
        ),
        EvalResult(
            **common,
            metric_type="min_dcf",
            metric_name="minDCF (p=0.01)",
            metric_value=round(float(metrics["min_dcf_0.01"]), 4),
            metric_args={"p_target": 0.01, "c_miss": 1, "c_fa": 1},
        ),
    ]
    if "cllr" in metrics:
        results.append(
            EvalResult(
                **common,
                metric_type="cllr",
                metric_name="Cllr (bits, calibration fitted on these trials)",
                metric_value=round(float(metrics["cllr"]), 4),
            )
        )
    return results


def card_data(card: ModelCard, model_class: str) -> ModelCardData:
    """The front matter of the card (Hub metadata).

    Example
    -------
    >>> data = card_data(ModelCard(language=["en"], datasets=["voxceleb2"]),
    ...                  "ERes2Net")
    >>> data.library_name, data.license, data.language, data.tags[-1]
    ('speechbrain', 'apache-2.0', ['en'], 'eres2net')
    """
    results = eval_results(card)
    # Only the tag of the model's own class: an ECAPA folder is no ERes2Net.
    tags = [*TAGS, model_class.lower()]
    return ModelCardData(
        license=card.license,
        library_name="speechbrain",
        tags=tags,
        datasets=list(card.datasets) or None,
        language=list(card.language) or None,
        metrics=[r.metric_type for r in results] or None,
        model_name=card.title if results else None,
        eval_results=results or None,
    )


def _results(metrics: Mapping[str, Any], eval_dataset: str) -> str:
    if not metrics:
        return "Not measured when this folder was written (no trial list given).\n"
    return (
        f"Measured on the trial list `{metrics['trials']}` of {eval_dataset} "
        "when this folder was written (cosine scores of the folder's own "
        "embeddings). EER is in percent of trials.\n\n"
        "| trial list | trials | EER | minDCF (p=0.01) | minDCF (p=0.05) "
        "| min Cllr | EER threshold |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| `{metrics['trials']}` | {metrics['n_trials']} | "
        f"{100 * metrics['eer']:.2f} % | {metrics['min_dcf_0.01']:.4f} | "
        f"{metrics['min_dcf_0.05']:.4f} | {metrics['min_cllr']:.3f} | "
        f"{metrics['eer_threshold']:.4f} |\n"
        + (
            f"\nWith the calibration below, on the same list (in-sample): Cllr "
            f"{metrics['cllr']:.3f}, actual DCF {metrics['act_dcf_0.01']:.4f} "
            f"(p=0.01) and {metrics['act_dcf_0.05']:.4f} (p=0.05).\n"
            if "cllr" in metrics
            else ""
        )
    )


def _enrolled(fitted: Mapping[str, Any]) -> str:
    """The share of a calibration's trials with an enrolled speaker side.

    Example
    -------
    >>> _enrolled({"enrolled_trials": 20, "enrolled_recordings": 3})
    ', of which 20 with a speaker enrolled from 3 recordings'
    >>> _enrolled({})
    ''
    """
    if not fitted.get("enrolled_trials"):
        return ""
    return (
        f", of which {fitted['enrolled_trials']} with a speaker enrolled from "
        f"{fitted.get('enrolled_recordings')} recordings"
    )


def _speech_range(fitted: Mapping[str, Any]) -> str:
    low, high = fitted.get("speech_s") or (None, None)
    if low is None:
        return "net speech not recorded"
    return f"{low:g}-{high:g} s of net speech per side"


def _decisions(calibration: Mapping[str, Any], threshold: Optional[float]) -> str:
    if calibration:
        fitted = calibration.get("fitted_on", {})
        quality = ", ".join(calibration.get("quality_names", ())) or "none"
        return (
            "`calibration.json` maps a cosine score to a log-likelihood ratio "
            "(LLR) by logistic regression (prior-weighted Cllr objective, "
            f"prior {fitted.get('p_target')}), fitted on `{fitted.get('trials')}` "
            f"({fitted.get('n_target')} target / {fitted.get('n_nontarget')} "
            f"non-target trials{_enrolled(fitted)}, {_speech_range(fitted)}; "
            f"quality measures: {quality}). `eres2net verify` accepts when the "
            "LLR exceeds the Bayes threshold log((1 - p) / p) for `--p-target p` "
            "(default 0.5: threshold 0). The calibration holds for conditions "
            "like those trials; recalibrate for other domains or durations."
        )
    if threshold is not None:
        return (
            f"`verification_threshold: {threshold:.4f}` in `hyperparams.yaml` is "
            "the cosine score at the equal error rate of the trial list above; "
            "`eres2net verify` uses it (no calibration stored)."
        )
    return (
        "No calibration or verification threshold is stored; pass `--threshold` "
        "to `eres2net verify`, or re-export with `--trials` to fit one."
    )


def _quality_ranges(ranges: Mapping[str, Sequence[float]]) -> str:
    """The fitted range of each quality measure, in readable units."""
    parts = []
    for name, (low, high) in ranges.items():
        if name.startswith("log_dur_"):
            # Stored as natural logs of seconds.
            side = "shorter" if name.endswith("min") else "longer"
            parts.append(f"{side} side {math.exp(low):.2f}-{math.exp(high):.2f} s")
        else:
            parts.append(f"{name} {low:.3g}-{high:.3g}")
    return "; ".join(parts)


def _limitations(card: ModelCard, threshold: Optional[float]) -> str:
    trained = (
        f"Trained on {card.training_data}."
        if card.training_data
        else "The training data is not stated."
    )
    lines = [
        f"- **Domain.** {trained} Scores, and any threshold or calibration "
        "stored here, hold for speech like the data they were measured on; "
        "other languages, "
        "channels (telephone, far field), noise or speaker populations were "
        "not measured here and can behave differently."
    ]
    min_speech = card.speech.get("min_speech_seconds")
    vad = card.speech.get("vad")
    if min_speech is not None:
        lines.append(
            "- **Speech required.** speechbrain-eres2net's entry points "
            "(`eres2net verify` / `embed`, `Verifier`, `SpeakerEmbedder`) "
            "detect speech with Silero VAD (`vad: trim`, the default, or "
            "`check`) and refuse a recording with less than "
            f"{min_speech:g} s of net speech (`min_speech_seconds`): silence "
            "or noise alone is refused, never scored. "
            + (
                "This folder was measured with `vad: off`: only durations "
                "were checked. "
                if vad == "off"
                else "This folder was trained and measured with "
                f"{SpeechHandling.resolve(card.speech).describe()}, which its "
                "`hyperparams.yaml` records and the commands apply. "
            )
            + "SpeechBrain's `SpeakerRecognition` does no such check and "
            "embeds whatever it is given."
        )
    calibration = card.calibration
    if calibration:
        fitted = calibration.get("fitted_on", {})
        ranges = _quality_ranges(calibration.get("quality_ranges", {}))
        lines.append(
            f"- **Durations.** The calibration was fitted on trials with "
            f"{_speech_range(fitted)}"
            + (f" (quality measures: {ranges})" if ranges else "")
            + ". Outside those ranges the measures are clamped into them: "
            "LLRs there are extrapolations nobody measured."
        )
        lines.append(
            "- **What the calibration covers.** LLRs are fitted on one trial "
            f"list, `{fitted.get('trials')}` ({fitted.get('n_target')} target / "
            f"{fitted.get('n_nontarget')} non-target trials{_enrolled(fitted)}), "
            "for the prior "
            f"p_target = {fitted.get('p_target')}; the Cllr above is measured "
            "on the same trials (in-sample, so optimistic). Decisions at "
            "another prior use the same LLR with another Bayes threshold."
        )
    elif threshold is not None:
        lines.append(
            "- **No calibration.** Only a cosine threshold (the EER point of "
            f"`{card.metrics.get('trials')}`) is stored; its error rates hold "
            "for trials like that list only."
        )
    else:
        lines.append(
            "- **Not measured.** No trial list was scored when this folder was "
            "written: its error rates are unknown."
        )
    return "\n".join(lines) + "\n"


def model_card(
    card: ModelCard,
    nodes: Mapping[str, Any],
    model: torch.nn.Module,
    embedding_size: int,
    sample_rate: int,
    threshold: Optional[float],
) -> str:
    """The README.md model card of a folder (front matter and body).

    Built as a ``huggingface_hub.ModelCard``, so the text is what
    ``ModelCard.load`` reads back: ``card.data.eval_results`` holds the
    metrics of ``card.metrics``.
    """
    params = sum(p.numel() for p in model.parameters())
    arch = dump_yaml({"embedding_model": nodes["embedding_model"]}).strip()
    front = dump_yaml({k: nodes[k] for k in FRONT_END}).strip()
    name = type(model).__name__
    is_eres2net = name == "ERes2Net"
    about = ERES2NET_ABOUT if is_eres2net else ""
    notes = "".join(f"- {note}\n" for note in card.notes)
    eval_dataset = card.eval_dataset or "an unnamed dataset"
    citation = (
        "\n## Citation\n\nIf you use this model, please cite ERes2Net:\n\n"
        f"```bibtex\n{ERES2NET_BIBTEX}\n```\n"
        if is_eres2net
        else ""
    )
    body = f"""
# {card.title}

{name} speaker-embedding model for SpeechBrain, packaged by
[speechbrain-eres2net](https://pypi.org/project/speechbrain-eres2net/).
{about}{card.source}
## Model

- Embedding model: `{name}`, {params:,} parameters ({params / 1e6:.2f} M)
- Input: {sample_rate} Hz mono audio
- Output: {embedding_size}-dimensional embeddings, scored by cosine

```yaml
{front}
{arch}
```

{notes}
## Training data

{card.training_data or "Not stated when this folder was written."}

## Results

{_results(card.metrics, eval_dataset)}
{_decisions(card.calibration, threshold)}

## Limitations

{_limitations(card, threshold)}
## Usage

```bash
pip install speechbrain-eres2net
```

```python
from speechbrain.inference.speaker import SpeakerRecognition

verifier = SpeakerRecognition.from_hparams(source="<this folder or user/repo>")
embeddings = verifier.encode_batch(wavs, wav_lens)  # (batch, 1, dim)

from speechbrain_eres2net.evaluation.decisions import Verifier

decision = Verifier.from_folder("<this folder>").verify("a.wav", "b.wav")
print(decision.describe())  # score, LLR, decision at p_target 0.5
```

```bash
eres2net verify --model <this folder> a.wav b.wav [--p-target 0.01]
eres2net embed --model <this folder> wavs/ --out embeddings.npz
eres2net export-onnx --model <this folder> --out model.onnx
```
{citation}
## License

{card.license}
"""
    data = card_data(card, name)
    # Parsed back by the Hub's own class: a front matter it cannot read
    # fails here, not on the Hub.
    return str(HubModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))
