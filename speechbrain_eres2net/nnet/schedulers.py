"""Per-iteration schedules of the official recipe: warm-up + cosine LR, AAM margin ramp.

Both are driven by the fractional epoch, so an intra-epoch resume continues
exactly where the run stopped.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .losses import ArcMarginLoss
from .recoverable import Recoverable


class ProgressSchedule(Recoverable):
    """A value that is a function of training progress in (fractional) epochs.

    Subclasses define :meth:`value`. Calling the schedule records the
    progress and value, which the checkpointer saves, so a restored run can
    report where it stopped.
    """

    state_keys = ("progress", "current")

    def __init__(self) -> None:
        self.progress = 0.0
        self.current = self.value(0.0)

    def value(self, progress: float) -> float:
        """The scheduled value after ``progress`` epochs."""
        raise NotImplementedError

    def advance(self, progress: float) -> float:
        """Records ``progress`` and returns the value there."""
        self.progress = float(progress)
        self.current = self.value(self.progress)
        return self.current


class WarmupCosineLR(ProgressSchedule):
    """Linear warm-up, then half-cosine decay, evaluated per iteration.

    The official recipe warms up from ``lr_start`` to ``lr_max`` over
    ``warmup_epochs`` and decays to ``lr_min`` by ``total_epochs``.

    Arguments
    ---------
    lr_max : float
        Peak learning rate (end of warm-up).
    lr_min : float
        Final learning rate.
    warmup_epochs : float
        Length of the linear warm-up.
    total_epochs : float
        Epoch at which the cosine reaches ``lr_min``.
    lr_start : float, optional
        Learning rate at step 0; defaults to ``lr_min``.

    Example
    -------
    >>> sched = WarmupCosineLR(0.2, 5e-5, warmup_epochs=5, total_epochs=70)
    >>> round(sched.value(0), 6), sched.value(5), round(sched.value(70), 6)
    (5e-05, 0.2, 5e-05)
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> round(sched(opt, 2.5), 4), round(opt.param_groups[0]["lr"], 4)
    (0.1, 0.1)
    """

    def __init__(
        self,
        lr_max: float,
        lr_min: float,
        warmup_epochs: float,
        total_epochs: float,
        lr_start: Optional[float] = None,
    ) -> None:
        if total_epochs <= warmup_epochs:
            raise ValueError(
                f"WarmupCosineLR: total_epochs ({total_epochs}) must exceed "
                f"warmup_epochs ({warmup_epochs})"
            )
        self.lr_max = lr_max
        self.lr_min = lr_min
        self.lr_start = lr_min if lr_start is None else lr_start
        self.warmup_epochs = warmup_epochs
        self.total_epochs = total_epochs
        super().__init__()

    def value(self, progress: float) -> float:
        """Learning rate after ``progress`` epochs."""
        if progress < self.warmup_epochs:
            frac = progress / self.warmup_epochs
            return self.lr_start + (self.lr_max - self.lr_start) * frac
        frac = (progress - self.warmup_epochs) / (
            self.total_epochs - self.warmup_epochs
        )
        frac = min(1.0, frac)
        cosine = 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.lr_min + (self.lr_max - self.lr_min) * cosine

    def __call__(self, optimizer: torch.optim.Optimizer, progress: float) -> float:
        """Sets the learning rate of every parameter group; returns it."""
        lr = self.advance(progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


class MarginSchedule(ProgressSchedule):
    """The AAM margin: constant, a ramp, then constant again.

    Before ``start_epoch`` the margin is ``margin_start``; from
    ``end_epoch`` on it is ``margin_end``. In between, with ``t`` the
    fraction of the ramp, the official "exp" curve is
    ``start + (end - start) * (1 - 10 ** (-3 t))``; "linear" is also offered.

    Arguments
    ---------
    margin_end : float
        Margin after the ramp.
    start_epoch : float
        Start of the ramp.
    end_epoch : float
        End of the ramp.
    margin_start : float
        Margin before the ramp.
    curve : str
        "exp" (official) or "linear".

    Example
    -------
    >>> sched = MarginSchedule(0.3, start_epoch=20, end_epoch=50)
    >>> sched.value(19.9), sched.value(50)
    (0.0, 0.3)
    >>> round(sched.value(23), 3)
    0.15
    >>> fixed = MarginSchedule(0.5, start_epoch=0, end_epoch=0)
    >>> fixed.value(0), fixed.value(3.2)
    (0.5, 0.5)
    """

    def __init__(
        self,
        margin_end: float,
        start_epoch: float,
        end_epoch: float,
        margin_start: float = 0.0,
        curve: str = "exp",
    ) -> None:
        if curve not in ("exp", "linear"):
            raise ValueError(
                f"MarginSchedule: curve must be exp or linear, not {curve!r}"
            )
        if end_epoch < start_epoch:
            raise ValueError(
                f"MarginSchedule: end_epoch ({end_epoch}) precedes start_epoch "
                f"({start_epoch})"
            )
        self.margin_end = margin_end
        self.margin_start = margin_start
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.curve = curve
        super().__init__()

    def value(self, progress: float) -> float:
        """Margin after ``progress`` epochs."""
        if progress >= self.end_epoch:
            return self.margin_end
        if progress < self.start_epoch:
            return self.margin_start
        frac = (progress - self.start_epoch) / (self.end_epoch - self.start_epoch)
        ratio = 1.0 - 10.0 ** (-3.0 * frac) if self.curve == "exp" else frac
        return self.margin_start + (self.margin_end - self.margin_start) * ratio

    def __call__(self, loss: ArcMarginLoss, progress: float) -> float:
        """Sets the margin of ``loss``; returns it."""
        margin = self.advance(progress)
        loss.set_margin(margin)
        return margin
