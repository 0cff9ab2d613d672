"""DKD's distillation terms against hand-computed values, and only the student gets gradients."""

from __future__ import annotations

import math

import pytest
import torch

from personsearch.losses import pairwise_relation_kd, probability_kd, triplet_relation_kd


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_probability_kd_is_the_tempered_kl_from_teacher_to_student():
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # T=1: p_t = (s(-1), s(1)), p_s = (s(1), s(-1)); KL = (s(1) - s(-1)) * ln(s(1)/s(-1)) = tanh(1/2) * 1
    assert float(probability_kd(student, teacher, 1.0)) == pytest.approx(math.tanh(0.5), abs=1e-6)
    # T=2: logits halved, the log-ratio is 1/2, times T^2 = 4
    assert float(probability_kd(student, teacher, 2.0)) == pytest.approx(4 * 0.5 * math.tanh(0.25), abs=1e-6)
    assert float(probability_kd(teacher, teacher, 3.0)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="different classes"):
        probability_kd(torch.zeros(2, 3), torch.zeros(2, 4))


def test_pairwise_relation_kd_compares_cosine_matrices_off_the_diagonal():
    orthogonal = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(pairwise_relation_kd(orthogonal, torch.tensor([[1.0, 0.0], [3.0, 0.0]]))) == pytest.approx(1.0)
    # teacher cosine 1/sqrt(2) on both off-diagonal entries; features may differ in dimension
    teacher = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    assert float(pairwise_relation_kd(orthogonal, teacher)) == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="same N"):
        pairwise_relation_kd(torch.zeros(3, 2), torch.zeros(2, 2))


def test_triplet_relation_kd_matches_the_hand_computed_value():
    pids = torch.tensor([0, 0, 1])
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # s01 = 0, s02 = 1, s12 = 0
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # t01 = 1, t02 = 0, t12 = 0
    # triplets (a, p, n): (0, 1, 2) student gap -1, teacher gap 1; (1, 0, 2) student 0, teacher 1
    target = _sigmoid(1.0)
    bce = [-(target * math.log(_sigmoid(g)) + (1 - target) * math.log(1 - _sigmoid(g))) for g in (-1.0, 0.0)]
    assert float(triplet_relation_kd(student, teacher, pids, tau=1.0)) == pytest.approx(sum(bce) / 2, abs=1e-6)
    no_triplet = triplet_relation_kd(student, teacher, torch.tensor([0, 1, 2]))
    assert float(no_triplet) == 0.0 and no_triplet.requires_grad is False  # no positives: nothing to match


@pytest.mark.parametrize("term", ["prob", "pair", "triplet"])
def test_gradients_reach_the_student_only(term):
    torch.manual_seed(0)
    student = torch.randn(6, 8, requires_grad=True)
    teacher = torch.randn(6, 5, requires_grad=True)
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    if term == "prob":
        loss = probability_kd(student[:, :5], teacher, 2.0)
    elif term == "pair":
        loss = pairwise_relation_kd(student, teacher)
    else:
        loss = triplet_relation_kd(student, teacher, pids)
    loss.backward()
    assert teacher.grad is None and student.grad is not None and float(student.grad.abs().sum()) > 0
