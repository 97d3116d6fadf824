"""The README.md model card of a model folder.

The card describes any embedding lobe: its class, parameter count and
embedding size come from the model itself (sizes from a forward pass, see
:func:`~speechbrain_eres2net.inference.probe.probe_model`), and the ERes2Net
paragraph appears only for ERes2Net models.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from .yaml_nodes import FRONT_END, dump_yaml

ERES2NET_ABOUT = """ERes2Net (Chen et al., "An Enhanced Res2Net with Local and
Global Feature Fusion for Speaker Verification", Interspeech 2023, arXiv
2305.12838): a 2-D Res2Net over the filterbank with attentional feature fusion.
"""


@dataclass
class ModelCard:
    """What the model card says beyond what the folder itself holds."""

    title: str = "Speaker embeddings"
    training_data: str = "not stated"
    source: str = ""
    license: str = "apache-2.0"
    metrics: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def model_title(model: torch.nn.Module, detail: str) -> str:
    """``"<model class> speaker embeddings (<detail>)"``.

    Example
    -------
    >>> model_title(torch.nn.Linear(2, 2), "quickstart")
    'Linear speaker embeddings (quickstart)'
    """
    return f"{type(model).__name__} speaker embeddings ({detail})"


def _results(metrics: Mapping[str, Any]) -> str:
    if not metrics:
        return "Not measured when this folder was written (no trial list given).\n"
    return (
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


def _decisions(calibration: Mapping[str, Any], threshold: Optional[float]) -> str:
    if calibration:
        fitted = calibration.get("fitted_on", {})
        quality = ", ".join(calibration.get("quality_names", ())) or "none"
        return (
            "`calibration.json` maps a cosine score to a log-likelihood ratio "
            "(LLR) by logistic regression (prior-weighted Cllr objective, "
            f"prior {fitted.get('p_target')}), fitted on `{fitted.get('trials')}` "
            f"({fitted.get('n_target')} target / {fitted.get('n_nontarget')} "
            f"non-target trials, utterances of {fitted.get('durations_s')} s; "
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


def model_card(
    card: ModelCard,
    nodes: Mapping[str, Any],
    model: torch.nn.Module,
    embedding_size: int,
    sample_rate: int,
    threshold: Optional[float],
) -> str:
    """The README.md model card of a folder."""
    params = sum(p.numel() for p in model.parameters())
    arch = dump_yaml({"embedding_model": nodes["embedding_model"]}).strip()
    front = dump_yaml({k: nodes[k] for k in FRONT_END}).strip()
    name = type(model).__name__
    about = ERES2NET_ABOUT if name == "ERes2Net" else ""
    notes = "".join(f"- {note}\n" for note in card.notes)
    return f"""---
license: {card.license}
library_name: speechbrain
tags:
- speaker-verification
- speaker-recognition
- {name.lower()}
- speechbrain
---

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

{card.training_data}

## Results

{_results(card.metrics)}
{_decisions(card.calibration, threshold)}

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

## License

{card.license}
"""
