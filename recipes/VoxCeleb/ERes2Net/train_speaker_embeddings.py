#!/usr/bin/env python3
"""Trains ERes2Net (or any embedding model in the YAML) on VoxCeleb.

The official 3D-Speaker recipe expressed with ``speechbrain.Brain``; all
pieces live in :mod:`speechbrain_eres2net.training.recipe`, every value in the YAML.

    python recipes/VoxCeleb/ERes2Net/train_speaker_embeddings.py \\
        hparams/train_eres2net_base.yaml --data_folder=/data/voxceleb2

    # several GPUs (batch_size is global: each process gets batch_size / N)
    torchrun --nproc_per_node=4 recipes/VoxCeleb/ERes2Net/train_speaker_embeddings.py \\
        hparams/train_eres2net_base.yaml --data_folder=/data/voxceleb2

    # mixed precision: --precision=fp16 or --precision=bf16

A killed run restarts from its last checkpoint (epoch end or every
``ckpt_interval_minutes``) when launched again with the same arguments.

Authors
 * speechbrain-eres2net developers 2026
"""

import sys

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main

from speechbrain_eres2net.dataio.voxceleb_prepare import prepare_voxceleb
from speechbrain_eres2net.training.recipe import (
    fit_classifier_size,
    load_hparams,
    prepare_kwargs,
    train,
)

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams = load_hparams(hparams_file, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    if not hparams.get("skip_prep", False):
        run_on_main(prepare_voxceleb, kwargs=prepare_kwargs(hparams))
    hparams = fit_classifier_size(hparams_file, overrides, hparams)
    train(hparams, run_opts)
