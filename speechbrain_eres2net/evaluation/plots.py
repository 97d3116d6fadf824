"""DET curve and score histogram of a verification run (PNG, matplotlib).

matplotlib is imported only when a plot is drawn, and through its
object-oriented API with the Agg canvas, so the caller's pyplot backend and
state are untouched.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Union

import numpy as np

from ..dataio.files import atomic_open
from .metrics import ErrorCurve

PathLike = Union[str, os.PathLike]

# Operating points drawn per DET curve; more are invisible at PNG size.
_MAX_POINTS = 4000
_DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def _figure(width: float = 5.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: PathLike) -> None:
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")


def _probit(p: np.ndarray) -> np.ndarray:
    """Normal deviate of probabilities, the DET axis scale."""
    from scipy.special import ndtri

    return ndtri(np.clip(p, 1e-6, 1 - 1e-6))


def _thin(curve: ErrorCurve) -> tuple[np.ndarray, np.ndarray]:
    """At most ``_MAX_POINTS`` evenly spaced points, keeping both ends."""
    n = len(curve.p_fa)
    keep = np.unique(np.linspace(0, n - 1, min(n, _MAX_POINTS)).astype(np.int64))
    return curve.p_fa[keep], curve.p_miss[keep]


def plot_det(curves: Mapping[str, ErrorCurve], path: PathLike) -> None:
    """Draws DET curves (miss vs false-alarm rate, normal-deviate axes).

    Arguments
    ---------
    curves : mapping
        Legend label -> :class:`speechbrain_eres2net.evaluation.metrics.ErrorCurve`.
    path : path
        PNG file to write (atomically).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from speechbrain_eres2net.evaluation.metrics import error_curve
    >>> rng = np.random.default_rng(0)
    >>> labels = np.arange(200) % 2
    >>> curve = error_curve(rng.normal(size=200) + labels, labels)
    >>> out = Path(tempfile.mkdtemp()) / "det.png"
    >>> plot_det({"cosine": curve}, out)
    >>> out.read_bytes()[:4]
    b'\\x89PNG'
    """
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        p_fa, p_miss = _thin(curve)
        ax.plot(_probit(p_fa), _probit(p_miss), label=label)
    ticks = _probit(np.asarray(_DET_TICKS))
    names = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.plot([ticks[0], ticks[-1]], [ticks[0], ticks[-1]], ":", color="grey", lw=0.8)
    ax.set_xlabel("False alarm rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.set_title("DET curve")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    _save(fig, path)


def plot_histogram(scores: np.ndarray, labels: np.ndarray, path: PathLike) -> None:
    """Draws target and non-target score histograms.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "hist.png"
    >>> plot_histogram(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]), out)
    >>> out.read_bytes()[1:4]  # the PNG signature
    b'PNG'
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(scores.min(), scores.max(), 61)
    ax.hist(scores[~labels], bins=bins, alpha=0.6, density=True, label="non-target")
    ax.hist(scores[labels], bins=bins, alpha=0.6, density=True, label="target")
    ax.set_xlabel("Score")
    ax.set_ylabel("Density")
    ax.set_title("Score distributions")
    ax.legend()
    _save(fig, path)
