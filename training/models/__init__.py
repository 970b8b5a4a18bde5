"""Skeleton models on the Infant-20 graph: teacher (CTR-GCN family), plain ST-GCN baseline, student.

Like torchvision/timm: small modules and one factory per variant. ``build_model(name, **overrides)``
builds any of them from its name (as written in config files).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from torch import nn

from .graph import SkeletonGraph, spatial_graph
from .preprocess import SkeletonPreprocess
from .stgcn import STGCN, STGCNConfig, stgcn_base, stgcn_small, stgcn_tiny
from .student import (
    Student, StudentConfig, StudentError, StudentMeta, count_parameters, load_student, save_student,
    student_demo, student_tiny,
)
from .teacher import Teacher, TeacherConfig, teacher_base, teacher_small, teacher_tiny
from .windowed import RecordingOutput, WindowedClassifier

FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "teacher_base": teacher_base, "teacher_small": teacher_small, "teacher_tiny": teacher_tiny,
    "stgcn_base": stgcn_base, "stgcn_small": stgcn_small, "stgcn_tiny": stgcn_tiny,
    "student_demo": student_demo, "student_tiny": student_tiny,
}


def build_model(name: str, **overrides) -> nn.Module:
    """The model variant ``name``; ``overrides`` replace fields of its config (e.g. ``channels``)."""
    if name not in FACTORIES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(FACTORIES))}")
    model = FACTORIES[name]()
    if overrides:
        model = type(model)(replace(model.config, **overrides))
    return model


__all__ = [
    "FACTORIES", "build_model", "SkeletonGraph", "spatial_graph", "SkeletonPreprocess", "STGCN", "STGCNConfig",
    "stgcn_base", "stgcn_small", "stgcn_tiny", "Student", "StudentConfig", "StudentError", "StudentMeta",
    "count_parameters", "load_student", "save_student", "student_demo", "student_tiny", "Teacher", "TeacherConfig",
    "teacher_base", "teacher_small", "teacher_tiny", "RecordingOutput", "WindowedClassifier",
]
