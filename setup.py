"""Packaging for speechbrain-eres2net."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="speechbrain-eres2net",
    version="0.4.0",
    description=(
        "ERes2Net speaker embeddings for SpeechBrain: lobe, VoxCeleb recipe, "
        "3D-Speaker checkpoint import, Hub folders, ONNX export and a CLI"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["speechbrain_eres2net", "speechbrain_eres2net.*"])
    + ["speechbrain_eres2net.hparams"],
    # The YAML files live at the top level (SpeechBrain layout) and are
    # installed inside the package so that an installed quickstart finds them.
    package_dir={"speechbrain_eres2net.hparams": "hparams"},
    package_data={"speechbrain_eres2net.hparams": ["*.yaml"]},
    install_requires=[
        # Private Brain/Pretrainer hooks are overridden: pin the tested minor.
        "speechbrain>=1.1.2,<1.2",
        # torch.load defaults to weights_only=True from 2.6 (the loads here pass
        # it explicitly too).
        "torch>=2.6",
        "torchaudio",
        "hyperpyyaml",
        "ruamel.yaml",
        "soundfile",
        "numpy",
        "scipy",
        "tqdm",
        # DET curves and score histograms are part of every evaluation.
        "matplotlib",
        # Speech presence: Silero VAD's weights ship in this package (MIT,
        # needs only torch); its extras pin torchaudio<2.10 and are not taken.
        "silero-vad",
        # Kaldi ark/scp embeddings (eres2net embed), the field's format.
        "kaldiio",
    ],
    extras_require={
        # ONNX export, and the ONNX Runtime engine of the fast path (fp32 on
        # CPUs without native bf16, int8).
        "export": ["onnx", "onnxruntime"],
        # The fastest CPU engine for fp32 without native bf16 and for int8
        # (onnxruntime's quantizer makes the int8 graph it runs).
        "openvino": ["onnx", "onnxruntime", "openvino"],
        "hub": ["huggingface_hub"],
        # The runtime users deploy exported graphs with; the suite runs our
        # ONNX in it (tests/test_sherpa_onnx.py), never a copy of its logic.
        "sherpa": ["onnx", "sherpa-onnx"],
        # Diarization.to_annotation (pyannote.core), DER and JER
        # (pyannote.metrics): the suite scores our RTTMs with pyannote itself.
        "diarization": ["pyannote.core", "pyannote.metrics"],
        # The diarization benchmark's anchors: SpeechBrain's AMI clustering
        # (scikit-learn) and 3D-Speaker's back end (its imports).
        "bench": [
            "pyannote.metrics",
            "scikit-learn",
            "fastcluster",
            "umap-learn",
            "hdbscan",
        ],
        "dev": [
            "pytest",
            "ruff",
            "onnx",
            "onnxruntime",
            "openvino",
            "sherpa-onnx",
            "pyannote.metrics",
            "scikit-learn",
        ],
    },
    entry_points={"console_scripts": ["eres2net=speechbrain_eres2net.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Speech",
    ],
)
