"""Knowledge distillation losses between a student's and a teacher's features of the same people
(DKD, Zhang et al., AAAI 2021). The paper publishes no formulas beyond their names; ours:

- probability level: ``T^2 * KL(softmax(z_t / T) || softmax(z_s / T))`` per sample, averaged, over
  the identities both models were trained on (``probability_kd``);
- pair-wise relation: mean squared difference of the in-batch cosine similarity matrices, diagonal
  excluded (``pairwise_relation_kd``);
- triplet-wise relation: for every anchor a, positive p (same identity) and negative n in the batch,
  the probability that p is closer to a than n is, ``sigmoid((s_ap - s_an) / tau)`` with s the cosine
  similarity, is matched to the teacher's by binary cross-entropy, averaged over all such triplets
  (``triplet_relation_kd``).

Teacher inputs carry no gradient (the caller computes them under ``torch.no_grad``); these functions
detach them anyway, so only the student learns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_pair(student: Tensor, teacher: Tensor, what: str) -> None:
    if student.dim() != 2 or teacher.dim() != 2 or student.shape[0] != teacher.shape[0]:
        raise ValueError(f"{what}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} must be "
                         "(N, .) with the same N")


def probability_kd(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``T^2 * KL(p_teacher || p_student)`` at temperature T, mean over the N rows of (N, K) logits."""
    _check_pair(student_logits, teacher_logits, "probability_kd")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"probability_kd: logits over different classes: student {tuple(student_logits.shape)}, "
                         f"teacher {tuple(teacher_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    log_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature**2


def cosine_matrix(features: Tensor) -> Tensor:
    """(N, N) cosine similarities of the rows of ``features``."""
    unit = F.normalize(features.float(), dim=1)
    return unit @ unit.t()


def pairwise_relation_kd(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the student's and the teacher's (N, N) cosine similarity matrices
    over the N(N-1) off-diagonal pairs (features may differ in dimension)."""
    _check_pair(student, teacher, "pairwise_relation_kd")
    n = student.shape[0]
    if n < 2:
        return student.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=student.device)
    return F.mse_loss(cosine_matrix(student)[off], cosine_matrix(teacher.detach())[off])


def triplet_relation_kd(student: Tensor, teacher: Tensor, pids: Tensor, tau: float = 0.1) -> Tensor:
    """Binary cross-entropy between the teacher's and the student's ``sigmoid((s_ap - s_an) / tau)``
    over every (anchor, positive, negative) triplet of the batch (positive: same pid, another row;
    negative: another pid). Zero (with a graph) when the batch has no triplet."""
    _check_pair(student, teacher, "triplet_relation_kd")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    pids = pids.to(student.device).view(-1)
    if pids.numel() != student.shape[0]:
        raise ValueError(f"triplet_relation_kd: {pids.numel()} pids for {student.shape[0]} features")
    same = pids[:, None] == pids[None, :]
    positive = same & ~torch.eye(len(pids), dtype=torch.bool, device=student.device)
    mask = positive[:, :, None] & ~same[:, None, :]  # (a, p, n)
    if not bool(mask.any()):
        return student.sum() * 0.0
    s, t = cosine_matrix(student), cosine_matrix(teacher.detach())
    student_margin = (s[:, :, None] - s[:, None, :])[mask] / tau  # s_ap - s_an
    teacher_prob = torch.sigmoid((t[:, :, None] - t[:, None, :])[mask] / tau)
    return F.binary_cross_entropy_with_logits(student_margin, teacher_prob)
