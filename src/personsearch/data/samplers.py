"""PK sampling: batches of P identities x K images each, as batch-hard triplet losses need.

Deterministic per (seed, epoch); under DDP each rank takes a disjoint share of the epoch's batches.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[int]):
    """Yields indices so that consecutive runs of ``p * k`` form one PK batch.

    Identities with fewer than ``k`` images are sampled with replacement (torchreid's
    RandomIdentitySampler rule); each epoch covers every identity's images about once.
    """

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if p < 2 or k < 1:
            raise ValueError(f"PK sampling needs p >= 2 identities and k >= 1 images per batch, got p={p}, k={k}")
        self.index_of: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_of[int(pid)].append(index)
        if len(self.index_of) < p:
            raise ValueError(f"PK sampling with p={p} needs at least {p} identities, the dataset has {len(self.index_of)}")
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, seed, rank, world_size
        self.epoch = 0
        self._len = len(self._batches()) * p * k

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose (deterministic) order is produced next."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks: dict[int, list[list[int]]] = {}
        for pid in sorted(self.index_of):
            idx = np.asarray(self.index_of[pid])
            if len(idx) < self.k:
                idx = rng.choice(idx, size=self.k, replace=True)
            idx = rng.permutation(idx)
            usable = len(idx) // self.k * self.k
            chunks[pid] = [idx[i:i + self.k].tolist() for i in range(0, usable, self.k)]
        batches: list[list[int]] = []
        available = [pid for pid in chunks if chunks[pid]]
        while len(available) >= self.p:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            batch: list[int] = []
            for i in sorted(chosen):
                batch += chunks[available[i]].pop()
            batches.append(batch)
            available = [pid for pid in available if chunks[pid]]
        per_rank = len(batches) // self.world_size
        return batches[self.rank * per_rank:(self.rank + 1) * per_rank]

    def __iter__(self) -> Iterator[int]:
        for batch in self._batches():
            yield from batch

    def __len__(self) -> int:
        return self._len
