"""A seconds-long run of the training recipe on a tiny synthetic corpus.

Not a test module: shared by the resume, DDP and journey tests.
"""

from __future__ import annotations

from pathlib import Path

from speechbrain_eres2net.dataio.synthetic import make_corpus

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "VoxCeleb" / "ERes2Net" / "train_speaker_embeddings.py"


def tiny_corpus(folder: Path) -> dict:
    """6 speakers, 4 short utterances each; 2 speakers held out for trials."""
    return make_corpus(
        folder,
        num_speakers=6,
        num_trial_speakers=2,
        utts_per_speaker=4,
        min_duration=1.2,
        max_duration=2.0,
    )


def tiny_settings(corpus: dict, output: Path, **options) -> dict:
    """YAML overrides of a seconds-long run (tiny model, 16 utterances).

    Defaults: batch 2, 2 epochs (8 steps each), a checkpoint every 2 steps;
    ``options`` override or add keys.
    """
    return {
        "data_folder": corpus["root"],
        "verification_file": corpus["trials"],
        "output_folder": output,
        "m_channels": 4,
        "emb_dim": 16,
        "sentence_len": 1.0,
        "batch_size": 2,
        "number_of_epochs": 2,
        "warmup_epochs": 0.5,
        "ckpt_interval_minutes": 0,
        "ckpt_interval_steps": 2,
        **options,
    }


def tiny_run_args(corpus: dict, output: Path, **options) -> list[str]:
    """Recipe arguments of :func:`tiny_settings`' run, as ``--key=value``."""
    settings = tiny_settings(corpus, output, **options)
    return [
        str(SCRIPT),
        str(REPO / "hparams" / "quickstart.yaml"),
        *(f"--{key}={value}" for key, value in settings.items()),
        "--noprogressbar",
    ]
