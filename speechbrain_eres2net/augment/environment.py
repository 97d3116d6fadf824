"""Environment corruption: MUSAN noise and RIR reverberation from local folders.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..dataio.audio import AUDIO_SUFFIXES, check_audio_file
from ..dataio.files import write_text_atomic

logger = logging.getLogger(__name__)


def write_audio_csv(source: str, csv_path: str) -> str:
    """Returns a SpeechBrain audio CSV for ``source`` (a CSV or a folder).

    A folder is searched recursively for wav/flac files; their list is
    written atomically to ``csv_path`` in the format of SpeechBrain's
    ``speechbrain.augment.preparation`` (ID, duration, wav, wav_format,
    wav_opts).
    """
    path = Path(source)
    if path.is_file():
        return str(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"augmentation source {source} is neither a CSV file nor a folder"
        )
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"augmentation folder {source} holds no audio files")
    # SpeechBrain's augmentation CSV format (legacy ExtendedCSVDataset).
    lines = ["ID,duration,wav,wav_format,wav_opts"]
    for index, file in enumerate(files):
        info = check_audio_file(file)
        ext = file.suffix[1:].lower()
        lines.append(f"{index}_{file.stem},{info.duration:.3f},{file},{ext},")
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(csv_path, "\n".join(lines) + "\n")
    return csv_path


class EnvCorruption(nn.Module):
    """MUSAN noise and RIR reverberation as in the official recipe.

    Each utterance is corrupted with probability ``prob`` by one of
    {noise, reverb, reverb then noise} (uniformly, among those whose source
    is given), then peak-normalised. Sources are local folders or CSV files
    (no downloads). With no source the module is a no-op and says so once.

    Arguments
    ---------
    noise_source : str, optional
        MUSAN noise folder (the official recipe uses ``musan/noise/free-sound``)
        or a SpeechBrain CSV of noise files.
    rir_source : str, optional
        RIR folder (official: ``RIRS_NOISES/real_rirs_isotropic_noises``) or CSV.
    csv_folder : str
        Where CSVs of folders are written.
    prob : float
        Probability that an utterance is corrupted.
    snr_low, snr_high : float
        Uniform SNR range in dB.
    sample_rate : int
        Sample rate of speech, noise and RIRs.

    Example
    -------
    >>> corrupt = EnvCorruption()
    >>> x = torch.rand(2, 800)
    >>> bool(torch.equal(corrupt(x, torch.ones(2)), x))
    True
    """

    def __init__(
        self,
        noise_source: Optional[str] = None,
        rir_source: Optional[str] = None,
        csv_folder: str = ".",
        prob: float = 0.8,
        snr_low: float = 0.0,
        snr_high: float = 15.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        from speechbrain.augment.time_domain import AddNoise, AddReverb

        self.prob = prob
        self.add_noise = self.add_reverb = None
        if noise_source:
            self.add_noise = AddNoise(
                csv_file=write_audio_csv(noise_source, f"{csv_folder}/noise.csv"),
                snr_low=snr_low,
                snr_high=snr_high,
                pad_noise=True,
                noise_sample_rate=sample_rate,
                clean_sample_rate=sample_rate,
            )
        if rir_source:
            self.add_reverb = AddReverb(
                csv_file=write_audio_csv(rir_source, f"{csv_folder}/rir.csv"),
                reverb_sample_rate=sample_rate,
                clean_sample_rate=sample_rate,
            )
        # (reverb?, noise?) of each corruption type the sources allow.
        self.kinds = [
            kind
            for kind in ((False, True), (True, False), (True, True))
            if (not kind[0] or self.add_reverb) and (not kind[1] or self.add_noise)
        ]
        if not self.kinds:
            logger.info(
                "Noise/reverb augmentation is OFF: no MUSAN noise or RIR source "
                "given (set noise_folder / rir_folder to enable it)"
            )

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Corrupts a padded batch (batch, samples) with relative lengths."""
        if not self.kinds or self.prob <= 0:
            return wavs
        batch = wavs.shape[0]
        chosen = torch.randint(len(self.kinds), (batch,)).tolist()
        apply = (torch.rand(batch) < self.prob).tolist()
        reverb = [i for i in range(batch) if apply[i] and self.kinds[chosen[i]][0]]
        noise = [i for i in range(batch) if apply[i] and self.kinds[chosen[i]][1]]
        out = wavs.clone()
        if reverb:
            out[reverb] = self.add_reverb(out[reverb])
        if noise:
            out[noise] = self.add_noise(out[noise], lengths[noise])
        touched = [i for i in range(batch) if apply[i]]
        if touched:
            peak = out[touched].abs().amax(dim=1, keepdim=True).clamp(min=1e-6)
            out[touched] = out[touched] / peak
        return out
