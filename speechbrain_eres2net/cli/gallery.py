"""``eres2net enroll / identify / gallery``: open-set speaker identification.

``enroll`` creates or extends a speaker of a gallery file from recordings,
``identify`` answers for each recording the enrolled speaker or unknown with
the best candidates, ``gallery`` lists or removes speakers
(:mod:`speechbrain_eres2net.evaluation.gallery`,
:mod:`speechbrain_eres2net.evaluation.identification`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..evaluation.gallery import SCORINGS
from .options import (
    batch_options,
    deprecated_alias,
    json_document,
    model_options,
    speech_options,
    yaml_default,
)


def add_parsers(commands) -> None:
    """Adds ``enroll``, ``identify`` and ``gallery`` to the subcommands."""
    enroll = commands.add_parser(
        "enroll", help="enroll a speaker in a gallery from one or more recordings"
    )
    model_options(enroll)
    speech_options(enroll)
    enroll.add_argument("--gallery", required=True, help="gallery file (.npz)")
    enroll.add_argument("--speaker", required=True, help="the speaker's name")
    enroll.add_argument(
        "audio", nargs="+", help="audio files, folders (recursive) or list files"
    )
    enroll.add_argument(
        "--min-enroll-speech-seconds",
        type=float,
        metavar="S",
        help="least net speech of a speaker (default: "
        + yaml_default("min_enroll_speech_seconds")
        + ")",
    )
    deprecated_alias(
        enroll,
        "--min-enroll-seconds",
        "--min-enroll-speech-seconds",
        "min_enroll_speech_seconds",
        type=float,
    )
    batch_options(enroll)

    identify = commands.add_parser(
        "identify", help="who among the enrolled speakers said each recording"
    )
    model_options(identify)
    speech_options(identify)
    identify.add_argument("--gallery", required=True, help="gallery file (.npz)")
    identify.add_argument(
        "audio", nargs="+", help="audio files, folders (recursive) or list files"
    )
    identify.add_argument(
        "--identify-top-k",
        type=int,
        metavar="K",
        help="candidates listed per recording (default: "
        + yaml_default("identify_top_k")
        + ")",
    )
    deprecated_alias(
        identify, "--top-k", "--identify-top-k", "identify_top_k", type=int
    )
    identify.add_argument(
        "--p-enrolled",
        type=float,
        help="prior that a recording's speaker is enrolled, for the Bayes "
        "decision (default: " + yaml_default("p_enrolled") + ")",
    )
    identify.add_argument(
        "--gallery-scoring",
        choices=SCORINGS,
        help="recording-vs-speaker scoring (default: "
        + yaml_default("gallery_scoring")
        + ")",
    )
    deprecated_alias(
        identify,
        "--scoring",
        "--gallery-scoring",
        "gallery_scoring",
        choices=SCORINGS,
    )
    identify.add_argument(
        "--threshold", type=float, help="decide on the cosine score instead"
    )
    identify.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per recording, on its own line (docs/cli.md)",
    )
    batch_options(identify)

    gallery = commands.add_parser("gallery", help="list or remove enrolled speakers")
    gallery.add_argument("--gallery", required=True, help="gallery file (.npz)")
    gallery.add_argument("--remove", metavar="NAME", help="remove this speaker")
    gallery.add_argument(
        "--json", action="store_true", help="list as one JSON object (docs/cli.md)"
    )


def _inputs(args: argparse.Namespace) -> list[Path]:
    from ..inference.embedder import expand_inputs

    files = expand_inputs(args.audio)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(args.audio)}")
    return files


def run_enroll(args: argparse.Namespace) -> int:
    """``eres2net enroll``: adds a speaker's recordings to a gallery file."""
    from ..evaluation.gallery import SpeakerGallery
    from ..settings import default
    from .embed import embedder

    files = _inputs(args)
    gallery_path = Path(args.gallery)
    if not gallery_path.parent.is_dir():
        raise ValueError(f"--gallery {gallery_path}: folder does not exist")
    model = embedder(args)
    gallery = (
        SpeakerGallery.load(gallery_path, model.fingerprint)
        if gallery_path.exists()
        else SpeakerGallery(model.fingerprint, model.shape.embedding_size)
    )
    done = model.embed_files(
        files,
        batch_size=args.batch_size,
        progress=args.progress,
        batch_seconds=args.batch_seconds,
        num_workers=args.num_workers,
    )
    for path, reason in done.errors.items():
        print(f"eres2net enroll: error: {path}: {reason}", file=sys.stderr)
    good = [str(f) for f in files if str(f) in done.embeddings]
    if not good:
        raise ValueError(f"speaker {args.speaker!r}: no recording could be enrolled")
    minimum = (
        float(default("min_enroll_speech_seconds"))
        if args.min_enroll_speech_seconds is None
        else args.min_enroll_speech_seconds
    )
    gallery.enroll(
        args.speaker,
        [done.embeddings[p] for p in good],
        [done.speech[p].seconds for p in good],
        good,
        min_speech_seconds=minimum,
    )
    gallery.save(gallery_path)
    entry = next(s for s in gallery.summary() if s.name == args.speaker.strip())
    print(
        f"enrolled {len(good)} recording(s) for {entry.name!r}: now "
        f"{entry.recordings} recording(s), {entry.seconds:.1f} s of net speech; "
        f"{len(gallery)} speaker(s) in {gallery_path}",
        file=sys.stderr,
    )
    return 1 if done.errors else 0


def run_identify(args: argparse.Namespace) -> int:
    """``eres2net identify``: the enrolled speaker (or unknown) per recording."""
    from ..evaluation.decisions import folder_calibration
    from ..evaluation.gallery import SpeakerGallery
    from ..evaluation.identification import Identifier
    from .embed import embedder

    files = _inputs(args)
    model = embedder(args)
    gallery = SpeakerGallery.load(args.gallery, model.fingerprint)
    identifier = Identifier(
        model,
        gallery,
        folder_calibration(args.model),
        scoring=args.gallery_scoring,
        p_enrolled=args.p_enrolled,
        threshold=args.threshold,
    )
    failed = 0
    for answer in identifier.identify(
        files,
        top_k=args.identify_top_k,
        batch_size=args.batch_size,
        batch_seconds=args.batch_seconds,
        num_workers=args.num_workers,
    ):
        if answer.error is not None:
            failed += 1
            print(
                f"eres2net identify: error: {answer.file}: {answer.error}",
                file=sys.stderr,
            )
        if args.json:
            print(json.dumps(json_document(answer.as_dict())), flush=True)
        elif answer.error is None:
            print(answer.describe(), flush=True)
    return 1 if failed else 0


def run_gallery(args: argparse.Namespace) -> int:
    """``eres2net gallery``: lists the speakers, or removes one."""
    from ..evaluation.gallery import SpeakerGallery

    gallery = SpeakerGallery.load(args.gallery)
    if args.remove is not None:
        gallery.remove(args.remove)
        gallery.save(args.gallery)
        print(
            f"removed {args.remove!r}; {len(gallery)} speaker(s) left in "
            f"{args.gallery}",
            file=sys.stderr,
        )
        return 0
    rows = gallery.summary()
    if args.json:
        speakers = [s._asdict() for s in rows]
        print(
            json.dumps(
                json_document(
                    {"model": gallery.model, "dim": gallery.dim, "speakers": speakers}
                )
            )
        )
        return 0
    for entry in rows:
        print(f"{entry.name}\t{entry.recordings} recording(s)\t{entry.seconds:.1f} s")
    print(
        f"{len(gallery)} speaker(s), model {gallery.model}, {gallery.dim}-d",
        file=sys.stderr,
    )
    return 0
