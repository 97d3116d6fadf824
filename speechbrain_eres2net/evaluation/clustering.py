"""Who spoke which window: clustering speaker embeddings into speakers.

Three methods, all on the embeddings of any SpeechBrain embedding lobe:

* :class:`LLRClustering` (agglomerative): each cluster is scored as a
  verification trial against every other, the cosine of their mean
  directions turned into a calibrated log-likelihood ratio by the model
  folder's calibration (with each side's net speech and embedding norm, as
  it scores two recordings), and the pair with the highest LLR is merged
  while that LLR beats the Bayes threshold ``log((1 - p_same) / p_same)``.
  The stopping rule is the decision the folder's verification makes, so it
  needs no tuning per model; a folder without a calibration stops at its
  cosine threshold instead.
* :class:`SpectralClustering`: the pruned cosine affinity's unnormalised
  Laplacian, the speaker count from its largest eigengap, k-means on the
  eigenvectors (Ning et al. 2006; the recipe of SpeechBrain's AMI
  diarization and of 3D-Speaker, written here afresh on scipy).
* :class:`SpectralLLRClustering`: the spectral clusters, merged while the
  calibrated LLR of merging two of them beats the Bayes threshold, on
  embeddings from which the recording's mean is removed.

A given speaker count is honoured exactly and bounds are kept: the
agglomeration goes on past its stopping rule down to ``max_speakers`` and
stops at ``min_speakers``; the spectral count is searched within the bounds.

Why not ``scipy.cluster.hierarchy.linkage``: its linkages merge by a fixed
distance, where here the merge score of two clusters depends on both
clusters' durations and norms, which no linkage update formula carries.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.linalg
from scipy.cluster.vq import kmeans2

from .calibration_map import Calibration
from .llr_costs import bayes_threshold


class ClusteringError(ValueError):
    """A speaker count that the recording cannot give (too few windows)."""


@dataclass(frozen=True)
class SpeakerCount:
    """The speakers asked for: exactly ``num``, or between ``low`` and ``high``.

    Example
    -------
    >>> SpeakerCount.of(None, 2, 4).bounds(10)
    (2, 4)
    >>> SpeakerCount.of(3, None, None).bounds(10)
    (3, 3)
    """

    num: Optional[int] = None
    low: int = 1
    high: Optional[int] = None

    @classmethod
    def of(
        cls,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> SpeakerCount:
        """Checks the options (``--num-speakers`` excludes the bounds)."""
        if num_speakers is not None and (
            min_speakers is not None or max_speakers is not None
        ):
            raise ValueError(
                "--num-speakers cannot be combined with --min-speakers/--max-speakers"
            )
        for name, value in (
            ("--num-speakers", num_speakers),
            ("--min-speakers", min_speakers),
            ("--max-speakers", max_speakers),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        low = 1 if min_speakers is None else int(min_speakers)
        if max_speakers is not None and max_speakers < low:
            raise ValueError(
                f"--max-speakers ({max_speakers}) is below --min-speakers ({low})"
            )
        return cls(num_speakers, low, max_speakers)

    def bounds(self, items: int) -> tuple[int, int]:
        """(fewest, most) clusters for ``items`` windows.

        Raises
        ------
        ClusteringError
            More speakers asked for than there are windows.
        """
        low = self.low if self.num is None else self.num
        high = self.high if self.num is None else self.num
        if low > items:
            raise ClusteringError(
                f"{low} speaker(s) asked for, but the speech gives only {items} "
                "window(s) to cluster"
            )
        return low, items if high is None else min(high, items)


def _unit(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class LLRClustering:
    """Agglomerative clustering that stops by the calibrated LLR of merging.

    Arguments
    ---------
    calibration : Calibration, optional
        The model folder's score -> LLR map; clusters are its trial sides
        (net speech: the sum of their windows' ``seconds``; norm: the mean
        raw norm of their windows).
    threshold : float, optional
        Without a calibration: merge while the cosine of the mean
        directions exceeds it (the folder's verification threshold). With
        neither, only a fixed speaker count can be clustered.
    p_same : float
        Prior that two clusters are one speaker; merging stops when no pair
        has ``llr > log((1 - p_same) / p_same)``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 16))
    >>> x = np.repeat(centres, 5, axis=0) + 0.3 * rng.normal(size=(15, 16))
    >>> clustering = LLRClustering(Calibration(score_weight=20.0, bias=-10.0))
    >>> labels = clustering(x, np.full(15, 1.5))
    >>> len(set(labels)), len(set(labels[:5])), len(set(clustering(x, None, 2)))
    (3, 1, 2)
    """

    def __init__(
        self,
        calibration: Optional[Calibration] = None,
        threshold: Optional[float] = None,
        p_same: float = 0.5,
    ) -> None:
        if not 0.0 < p_same < 1.0:
            raise ValueError(f"p_same must be in (0, 1), got {p_same}")
        self.calibration = calibration
        self.threshold = threshold
        self.p_same = p_same

    @property
    def stop(self) -> float:
        """The merge score the best pair must beat to be merged."""
        if self.calibration is None:
            return np.inf if self.threshold is None else float(self.threshold)
        return bayes_threshold(self.p_same, 1.0, 1.0)

    def merge_scores(
        self,
        rows: np.ndarray,
        directions: np.ndarray,
        seconds: np.ndarray,
        norms: np.ndarray,
    ) -> np.ndarray:
        """(len(rows), n) LLRs (or cosines, without a calibration) of merging
        the clusters ``rows`` with every cluster, from the clusters' unit mean
        directions, net speech and mean raw norms."""
        cos = directions[rows] @ directions.T
        if self.calibration is None:
            return cos
        # Every (row, cluster) pair as one trial of the calibration.
        n = directions.shape[0]
        llr = self.calibration.sides_llr(
            cos.ravel(),
            (np.repeat(seconds[rows], n), np.tile(seconds, rows.size)),
            (np.repeat(norms[rows], n), np.tile(norms, rows.size)),
            warn=False,
        )
        return llr.reshape(cos.shape)

    def __call__(
        self,
        embeddings: np.ndarray,
        seconds: Optional[np.ndarray] = None,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> np.ndarray:
        """(n,) cluster labels, 0.. in order of first appearance.

        The (n, n) matrix of merge scores is kept (float32: 92 MB for 4,800
        windows, an hour of speech at a 0.75 s hop); a merge recomputes one
        row and the best partner of the rows whose best it took.

        Arguments
        ---------
        embeddings : np.ndarray
            (n, dim) raw embeddings of the windows.
        seconds : np.ndarray, optional
            (n,) net speech each window stands for (default 1 s each).
        num_speakers, min_speakers, max_speakers : int, optional
            The speaker count asked for (:class:`SpeakerCount`).
        """
        raw = np.asarray(embeddings, dtype=np.float64)
        n = raw.shape[0]
        low, high = SpeakerCount.of(num_speakers, min_speakers, max_speakers).bounds(n)
        secs = np.ones(n) if seconds is None else np.array(seconds, dtype=float)
        sums = _unit(raw)  # sum of the unit embeddings of each cluster
        directions = sums.copy()
        size = np.ones(n)
        norm_sums = np.linalg.norm(raw, axis=1)
        owner = np.arange(n)  # window -> the cluster it is in
        scores = np.empty((n, n), dtype=np.float32)
        for first in range(0, n, 256):
            rows = np.arange(first, min(n, first + 256))
            scores[rows] = self.merge_scores(rows, directions, secs, norm_sums / size)
        np.fill_diagonal(scores, -np.inf)
        partner = scores.argmax(axis=1)
        best = scores[np.arange(n), partner]
        if low < high and self.calibration is None and self.threshold is None:
            raise ValueError(
                "the model has neither a calibration nor a verification threshold "
                "to stop clustering: give the speaker count (--num-speakers), use "
                "spectral clustering, or re-export the model with --trials"
            )
        clusters, stop = n, self.stop
        while clusters > low:
            a = int(np.argmax(best))
            if best[a] <= stop and clusters <= high:
                break
            a, b = sorted((a, int(partner[a])))
            sums[a] += sums[b]
            size[a] += size[b]
            secs[a] += secs[b]
            norm_sums[a] += norm_sums[b]
            directions[a] = sums[a] / max(np.linalg.norm(sums[a]), 1e-12)
            owner[owner == b] = a
            clusters -= 1
            scores[b, :] = scores[:, b] = -np.inf
            best[b] = -np.inf
            row = self.merge_scores(np.array([a]), directions, secs, norm_sums / size)[
                0
            ].astype(np.float32)
            row[owner != np.arange(n)] = -np.inf  # merged-away clusters
            row[a] = -np.inf
            scores[a, :] = scores[:, a] = row
            partner[a] = int(np.argmax(row))
            best[a] = row[partner[a]]
            stale = np.flatnonzero((partner == a) | (partner == b))
            stale = stale[(stale != a) & np.isfinite(best[stale])]
            if stale.size:
                partner[stale] = scores[stale].argmax(axis=1)
                best[stale] = scores[stale, partner[stale]]
            better = row > best
            partner[better], best[better] = a, row[better]
        return first_appearance(owner)


class SpectralClustering:
    """Spectral clustering of cosine affinities, counting by the eigengap.

    Arguments
    ---------
    pval : float
        Share of each row's largest affinities kept (the others are zeroed;
        at least ``min_neighbours``), which keeps the graph's clusters apart.
    min_neighbours : int
        Fewest affinities kept per row.
    max_speakers : int
        Most speakers the eigengap looks for when none is given.
    seed : int
        Seed of the k-means initialisations.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 16))
    >>> x = np.repeat(centres, 8, axis=0) + 0.3 * rng.normal(size=(24, 16))
    >>> labels = SpectralClustering(pval=0.3)(x)
    >>> len(set(labels)), [len(set(labels[i:i + 8])) for i in (0, 8, 16)]
    (3, [1, 1, 1])
    """

    def __init__(
        self,
        pval: float = 0.3,
        min_neighbours: int = 6,
        max_speakers: int = 10,
        seed: int = 0,
    ) -> None:
        if not 0.0 < pval <= 1.0:
            raise ValueError(f"pval must be in (0, 1], got {pval}")
        self.pval = pval
        self.min_neighbours = min_neighbours
        self.max_speakers = max_speakers
        self.seed = seed

    def affinity(self, embeddings: np.ndarray) -> np.ndarray:
        """Pruned, symmetric cosine affinity with a zero diagonal."""
        units = _unit(embeddings)
        affinity = np.clip(units @ units.T, 0.0, None)
        n = affinity.shape[0]
        keep = min(n, max(self.min_neighbours, int(math.ceil(self.pval * n))))
        weakest = np.argsort(affinity, axis=1)[:, : n - keep]
        np.put_along_axis(affinity, weakest, 0.0, axis=1)
        affinity = 0.5 * (affinity + affinity.T)
        np.fill_diagonal(affinity, 0.0)
        return affinity

    def __call__(
        self,
        embeddings: np.ndarray,
        seconds: Optional[np.ndarray] = None,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> np.ndarray:
        """(n,) cluster labels, 0.. in order of first appearance
        (``seconds`` is not used: every window weighs the same)."""
        n = int(np.asarray(embeddings).shape[0])
        if max_speakers is None and num_speakers is None:
            max_speakers = min(self.max_speakers, n)
        low, high = SpeakerCount.of(num_speakers, min_speakers, max_speakers).bounds(n)
        if n == 1:
            return np.zeros(1, dtype=int)
        affinity = self.affinity(embeddings)
        laplacian = np.diag(affinity.sum(axis=1)) - affinity
        values, vectors = scipy.linalg.eigh(
            laplacian, subset_by_index=[0, min(n - 1, high)]
        )
        if low == high:
            k = low
        else:
            # Gap after the k-th smallest eigenvalue, k within the bounds; a
            # graph in more pieces than that has no gap there (its smallest
            # eigenvalues are all zero) and gets as many clusters as allowed.
            gaps = np.diff(values[: high + 1])
            k = low + int(np.argmax(gaps[low - 1 : high]))
            pieces = int((values < 1e-9 * max(float(values.max()), 1.0)).sum())
            k = max(k, min(pieces, high))
        if k == 1:
            return np.zeros(n, dtype=int)
        return first_appearance(self._kmeans(vectors[:, :k], k))

    def _kmeans(self, points: np.ndarray, k: int) -> np.ndarray:
        """Best of 10 k-means++ runs by inertia (as scikit-learn's n_init)."""
        best, best_inertia = None, np.inf
        for attempt in range(10):
            rng = np.random.default_rng(self.seed + attempt)
            centres, labels = kmeans2(points, k, minit="++", seed=rng)
            inertia = float(((points - centres[labels]) ** 2).sum())
            if inertia < best_inertia:
                best, best_inertia = labels, inertia
        return best


class SpectralLLRClustering:
    """Spectral clusters, merged while the calibrated LLR says one speaker.

    The eigengap of :class:`SpectralClustering` reads the structure of the
    recording's affinities (which noise or a channel shift as a whole); the
    clusters it finds, each many seconds of speech, are then scored against
    each other as :class:`LLRClustering` scores clusters, and merged while
    the Bayes decision says "same speaker". Before that merge, the
    recording's mean unit embedding is subtracted from every window (the
    per-recording mean normalisation of Kaldi's and SpeechBrain's AMI
    diarization recipes): what all of a recording's windows share (its
    noise, its channel) is not evidence that two clusters are one speaker.
    Each window then goes to the nearest merged cluster (in the same
    space). A recording that spectral clustering finds to be one speaker, a
    given speaker count, or a folder without a calibration keep the spectral
    clusters.

    Arguments
    ---------
    calibration : Calibration, optional
        The model folder's score -> LLR map.
    p_same : float
        Prior that two clusters are one speaker.
    pval, max_speakers : optional
        Those of :class:`SpectralClustering`.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 16))
    >>> x = np.repeat(centres, 8, axis=0) + 0.3 * rng.normal(size=(24, 16))
    >>> clustering = SpectralLLRClustering(Calibration(20.0, -10.0), pval=0.3)
    >>> len(set(clustering(x))), len(set(clustering(x, num_speakers=4)))
    (3, 4)
    """

    def __init__(
        self,
        calibration: Optional[Calibration] = None,
        p_same: float = 0.5,
        pval: float = 0.3,
        max_speakers: int = 10,
    ) -> None:
        self.spectral = SpectralClustering(pval=pval, max_speakers=max_speakers)
        self.merge = (
            None if calibration is None else LLRClustering(calibration, None, p_same)
        )

    def __call__(
        self,
        embeddings: np.ndarray,
        seconds: Optional[np.ndarray] = None,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> np.ndarray:
        """(n,) cluster labels, 0.. in order of first appearance."""
        labels = self.spectral(
            embeddings, seconds, num_speakers, min_speakers, max_speakers
        )
        clusters = int(labels.max()) + 1
        if self.merge is None or num_speakers is not None or clusters == 1:
            return labels
        raw = np.asarray(embeddings, dtype=np.float64)
        n = raw.shape[0]
        seconds = np.ones(n) if seconds is None else np.asarray(seconds, float)
        centred = recording_centred(raw, seconds)
        means, total = group_means(raw, seconds, labels, centred)
        merged = self.merge(means, total, min_speakers=min_speakers)[labels]
        # The merged clusters' means are better estimates than the spectral
        # ones: each window goes to the nearest, unless a cluster would empty
        # below the speakers asked for.
        return first_appearance(nearest_clusters(centred, merged, min_speakers or 1))


def group_means(
    embeddings: np.ndarray,
    seconds: np.ndarray,
    groups: np.ndarray,
    directions: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each group as one recording: (mean of its ``directions`` (default: the
    unit embeddings) normalised, times its ``embeddings``' mean norm; its net
    speech). The rule of
    :class:`~speechbrain_eres2net.inference.streaming.WindowMean`, for many
    groups at once, so that the norm quality measure stays on the scale of
    one forward pass.

    Example
    -------
    >>> x = np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    >>> means, seconds = group_means(x, np.ones(3), np.array([0, 0, 1]))
    >>> means.round(3).tolist(), seconds.tolist()
    ([[1.414, 1.414], [0.0, 2.0]], [2.0, 1.0])
    """
    raw = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(raw, axis=1)
    directions = _unit(raw) if directions is None else directions
    count = int(groups.max()) + 1
    means = np.stack(
        [
            _unit(directions[groups == g].sum(0, keepdims=True))[0]
            * norms[groups == g].mean()
            for g in range(count)
        ]
    )
    return means, np.array([seconds[groups == g].sum() for g in range(count)])


def recording_centred(embeddings: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Unit embeddings less the recording's mean unit embedding (weighted by
    net speech), normalised again.

    Example
    -------
    >>> recording_centred(np.array([[2.0, 0.0], [0.0, 3.0]]), np.ones(2)).round(3)
    array([[ 0.707, -0.707],
           [-0.707,  0.707]])
    """
    units = _unit(embeddings)
    mean = (units * seconds[:, None]).sum(0) / seconds.sum()
    return _unit(units - mean)


def nearest_clusters(
    centred: np.ndarray, labels: np.ndarray, fewest: int = 1
) -> np.ndarray:
    """Each item's nearest cluster mean (one k-means step in ``centred``
    space), or ``labels`` when that would leave fewer than ``fewest``."""
    kept = np.unique(labels)
    if kept.size < 2:
        return labels
    centres = _unit(np.stack([centred[labels == c].sum(0) for c in kept]))
    nearest = kept[np.argmax(centred @ centres.T, axis=1)]
    return nearest if np.unique(nearest).size >= fewest else labels


def cluster_in_groups(
    clustering,
    embeddings: np.ndarray,
    seconds: np.ndarray,
    groups: np.ndarray,
    **count,
) -> np.ndarray:
    """Clusters groups of items (each the mean of its items), then gives
    every item its nearest cluster: bounds the clustering's memory (an hour
    of speech is thousands of windows, and spectral clustering holds a
    matrix of their square).

    Arguments
    ---------
    clustering : callable
        Any of this module's clusterings.
    embeddings, seconds : np.ndarray
        (n, dim) raw embeddings and (n,) net speech of the items.
    groups : np.ndarray
        (n,) group of each item, 0..g-1.
    **count
        ``num_speakers``, ``min_speakers``, ``max_speakers``.

    Example
    -------
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> cluster_in_groups(SpectralClustering(min_neighbours=1), x, np.ones(4),
    ...                   np.array([0, 0, 1, 1]), num_speakers=2).tolist()
    [0, 0, 1, 1]
    """
    raw = np.asarray(embeddings, dtype=np.float64)
    means, total = group_means(raw, seconds, groups)
    labels = clustering(means, total, **count)[groups]
    fewest = count.get("num_speakers") or count.get("min_speakers") or 1
    return first_appearance(
        nearest_clusters(recording_centred(raw, seconds), labels, fewest)
    )


def first_appearance(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... in the order they first appear.

    Example
    -------
    >>> first_appearance(np.array([7, 7, 2, 7, 5])).tolist()
    [0, 0, 1, 0, 2]
    """
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse]


CLUSTERINGS = ("ahc", "spectral", "spectral-ahc")


def make_clustering(
    method: str,
    calibration: Optional[Calibration] = None,
    threshold: Optional[float] = None,
    p_same: float = 0.5,
    pval: float = 0.3,
    max_speakers: int = 10,
):
    """The clustering ``method`` (:data:`CLUSTERINGS`) of a model folder.

    Example
    -------
    >>> type(make_clustering("spectral")).__name__
    'SpectralClustering'
    """
    if method == "ahc":
        return LLRClustering(calibration, threshold, p_same)
    if method == "spectral":
        return SpectralClustering(pval=pval, max_speakers=max_speakers)
    if method == "spectral-ahc":
        return SpectralLLRClustering(calibration, p_same, pval, max_speakers)
    raise ValueError(f"clustering must be one of {CLUSTERINGS}, got {method!r}")
