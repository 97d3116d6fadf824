"""VoxCeleb2's m4a audio to 16 kHz wav with ffmpeg, resumable and atomic.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from ..paths import PathLike
from .audio import AudioError, check_audio_file
from .files import write_text_atomic
from .voxceleb_prepare import scan_audio

logger = logging.getLogger(__name__)


def ffmpeg_command(
    ffmpeg: str, source: Path, target: Path, sample_rate: int
) -> list[str]:
    """The ffmpeg call converting one file to 16-bit mono WAV at ``sample_rate``.

    Example
    -------
    >>> ffmpeg_command("ffmpeg", Path("a.m4a"), Path("a.wav"), 16000)[-5:]
    ['-ar', '16000', '-f', 'wav', 'a.wav']
    """
    return [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
        "-vn", "-ac", "1", "-acodec", "pcm_s16le", "-ar", str(sample_rate),
        "-f", "wav", str(target),
    ]  # fmt: skip


def _is_complete_wav(path: Path) -> bool:
    # Outputs appear only by rename after ffmpeg succeeded, so an existing
    # file is complete unless someone else truncated it: check the header.
    try:
        check_audio_file(path)
    except AudioError:  # any unusable output is redone
        return False
    return True


def _convert_one(
    ffmpeg: str, source: Path, target: Path, sample_rate: int
) -> Optional[str]:
    """Converts one file through a temporary name; returns an error or None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    proc = subprocess.run(
        ffmpeg_command(ffmpeg, source, tmp, sample_rate),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return last[0]
    os.replace(tmp, target)
    return None


def convert_m4a_tree(
    source_folder: PathLike,
    target_folder: PathLike,
    num_workers: int = 4,
    sample_rate: int = 16000,
    ffmpeg: str = "ffmpeg",
    progress: bool = False,
) -> dict[str, int]:
    """Converts every ``.m4a`` under a folder to 16 kHz mono WAV with ffmpeg.

    ``<source>/<spk>/<session>/<utt>.m4a`` becomes
    ``<target>/<spk>/<session>/<utt>.wav``. Runs ``num_workers`` ffmpeg
    processes at once and is resumable: each output is written under a
    temporary name and renamed when complete, and complete outputs are
    skipped on a rerun. Failures are listed in
    ``<target>/convert_failures.txt``.

    Arguments
    ---------
    source_folder : path
        VoxCeleb2 ``aac`` (or any) folder holding ``.m4a`` files.
    target_folder : path
        Output ``wav`` folder.
    num_workers : int
        Parallel ffmpeg processes.
    sample_rate : int
        Output sample rate.
    ffmpeg : str
        ffmpeg executable name or path.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        Counts of ``converted``, ``skipped`` and ``failed`` files.

    Example
    -------
    >>> import tempfile
    >>> convert_m4a_tree(tempfile.mkdtemp(), tempfile.mkdtemp(), ffmpeg="true")
    {'converted': 0, 'skipped': 0, 'failed': 0}
    """
    source = Path(source_folder)
    target = Path(target_folder)
    if not source.is_dir():
        raise FileNotFoundError(f"m4a source folder not found: {source}")
    executable = shutil.which(ffmpeg)
    if executable is None:
        raise FileNotFoundError(
            f"ffmpeg not found (looked for {ffmpeg!r} on PATH); install it, e.g. "
            "'apt-get install ffmpeg' or 'conda install ffmpeg', "
            "or pass --ffmpeg=/path/to/ffmpeg"
        )
    jobs = []
    skipped = 0
    for rel in scan_audio(source, (".m4a",)):
        out = target / (rel.rsplit(".", 1)[0] + ".wav")
        if _is_complete_wav(out):
            skipped += 1
        else:
            jobs.append((source / rel, out))
    target.mkdir(parents=True, exist_ok=True)
    failures: dict[Path, str] = {}
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        results = pool.map(
            lambda job: _convert_one(executable, *job, sample_rate), jobs
        )
        for (src, _), error in tqdm(
            zip(jobs, results), total=len(jobs), disable=not progress
        ):
            if error is not None:
                failures[src] = error
    report = target / "convert_failures.txt"
    if failures:
        write_text_atomic(
            report, "".join(f"{p}\t{e}\n" for p, e in sorted(failures.items()))
        )
        logger.warning(
            "%d file(s) failed to convert; listed in %s", len(failures), report
        )
    else:
        report.unlink(missing_ok=True)
    return {
        "converted": len(jobs) - len(failures),
        "skipped": skipped,
        "failed": len(failures),
    }
