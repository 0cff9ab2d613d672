"""Tracklets: the same person followed over consecutive indexed frames of one video, by position alone.

People in consecutive indexed frames are matched (Hungarian) on the distance between box centres in
units of box height; a match is kept only when it is close (< ``link`` heights) and unambiguous (no
other person within ``crowd`` heights on either side): where people meet or cross the tracklet ends
rather than risk swapping them. The positives are meant to be certain, not complete.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def link_tracklets(frames: Sequence[np.ndarray], link: float = 0.5, crowd: float = 1.0,
                   min_length: int = 4) -> list[list[tuple[int, int]]]:
    """Tracklets over a sequence of frames, each given as its (N, 4) boxes ``[x1, y1, x2, y2]``.

    Returns tracklets of at least ``min_length`` frames as lists of (frame position, box position).
    Frames are taken as consecutive: pass only the indexed frames of one video, in order.
    """
    from scipy.optimize import linear_sum_assignment

    live: list[list[tuple[int, int]]] = []
    done: list[list[tuple[int, int]]] = []
    for f, boxes in enumerate(frames):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        used: set[int] = set()
        kept: list[list[tuple[int, int]]] = []
        if live and len(boxes):
            last = np.array([frames[t[-1][0]][t[-1][1]] for t in live], np.float64).reshape(-1, 4)
            height = np.maximum(last[:, 3] - last[:, 1], 1.0)[:, None]
            cost = np.linalg.norm(((last[:, None, :2] + last[:, None, 2:]) - (boxes[None, :, :2] + boxes[None, :, 2:]))
                                  / 2, axis=2) / height
            matched = dict(zip(*linear_sum_assignment(cost)))
            for r, track in enumerate(live):
                c = matched.get(r)
                clear = c is not None and cost[r, c] < link and (cost[r] < crowd).sum() == 1 \
                    and (cost[:, c] < crowd).sum() == 1
                if clear:
                    track.append((f, int(c)))
                    used.add(int(c))
                    kept.append(track)
                else:
                    done.append(track)
        else:
            done += live
        live = kept + [[(f, c)] for c in range(len(boxes)) if c not in used]
    return [t for t in done + live if len(t) >= min_length]


def merge_tracklets(means: np.ndarray, spans: Sequence[tuple[int, int, int]], max_distance: float) -> np.ndarray:
    """Pseudo-identities: one label per tracklet, tracklets of one person across walks sharing it.

    Average-linkage clustering of the tracklets' mean embeddings ``means`` (L2-normalised rows),
    cosine distance, cut at ``max_distance``. ``spans`` gives each tracklet's (source, first frame,
    last frame): tracklets seen at the same time in the same source are two people, so their distance
    is set to 2 and any cluster still holding such a pair is split back into its tracklets.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = len(means)
    if n < 2 or max_distance <= 0:
        return np.arange(n)
    means = np.asarray(means, np.float64)
    dist = np.clip(1.0 - means @ means.T, 0.0, 2.0)
    src = np.array([s[0] for s in spans])
    first = np.array([s[1] for s in spans])
    last = np.array([s[2] for s in spans])
    together = (src[:, None] == src[None]) & (first[:, None] <= last[None]) & (first[None] <= last[:, None])
    np.fill_diagonal(together, False)
    dist[together] = 2.0
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(linkage(squareform((dist + dist.T) / 2, checks=False), "average"), max_distance,
                      criterion="distance") - 1
    out = np.arange(n)
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        if not together[np.ix_(members, members)].any():
            out[members] = members[0]
    return np.unique(out, return_inverse=True)[1]


__all__ = ["link_tracklets", "merge_tracklets"]
