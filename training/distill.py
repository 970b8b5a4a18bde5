"""Distillation teacher -> student, on logits and features, then calibration.

Loss on every training crop (both networks see the same crop):
``BCE(student, label) + alpha * T^2 * BCE(student / T, sigmoid(teacher / T))
+ beta * (1 - cos(P · student_embedding, teacher_embedding))`` with ``P`` a
linear map that exists only during training. Afterwards a Platt scaling
``sigmoid(a * logit + b)`` fitted on validation recordings is written into
the student's buffers, so its ``risk`` output is a calibrated probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .engine import Task
from .models.student import Student
from .models.windowed import WindowedClassifier


class DistillTask(Task):
    def __init__(self, student: Student, teacher: WindowedClassifier, alpha: float = 0.5, beta: float = 1.0,
                 temperature: float = 2.0):
        super().__init__()
        self.student = student
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.project = nn.Linear(student.embedding_dim, teacher.embed_dim)
        self.alpha, self.beta, self.temperature = alpha, beta, temperature

    def train(self, mode: bool = True) -> "DistillTask":
        super().train(mode)
        self.teacher.eval()  # the teacher is frozen: no batch-norm updates, no dropout
        return self

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        args = (batch["keypoints"], batch["fps"], batch["lengths"], batch["grid_len"])
        s = self.student.score_infant20(*args)
        with torch.no_grad():
            t = self.teacher(*args)
        label = batch["label"].float()
        s_logit, t_logit = s.logit.float(), t.logit.float()
        bce = nn.functional.binary_cross_entropy_with_logits(s_logit, label)
        temp = self.temperature
        kd = nn.functional.binary_cross_entropy_with_logits(s_logit / temp, torch.sigmoid(t_logit / temp)) * temp**2
        feat = 1.0 - nn.functional.cosine_similarity(self.project(s.embedding.float()), t.embedding.float(), dim=-1).mean()
        loss = bce + self.alpha * kd + self.beta * feat
        return loss, {"bce": float(bce.detach()), "kd": float(kd.detach()), "feature": float(feat.detach())}


class StudentOnlyTask(Task):
    """The student trained on labels alone (the no-distillation ablation)."""

    def __init__(self, student: Student):
        super().__init__()
        self.student = student

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        s = self.student.score_infant20(batch["keypoints"], batch["fps"], batch["lengths"], batch["grid_len"])
        loss = nn.functional.binary_cross_entropy_with_logits(s.logit.float(), batch["label"].float())
        return loss, {"bce": float(loss.detach())}


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling on validation logits; identity if the data cannot support it (one class, or a < 0)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels).astype(int)
    if len(set(y.tolist())) < 2:
        return 1.0, 0.0
    lr = LogisticRegression(C=100.0).fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 0 else (1.0, 0.0)


def set_calibration(student: Student, a: float, b: float) -> None:
    student.calib_scale.fill_(a)
    student.calib_bias.fill_(b)
