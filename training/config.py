"""Experiment configuration: YAML files with ``key.sub=value`` command-line overrides.

Every section is a dataclass, so a typo in a file or an override is refused
with the list of known keys instead of silently falling back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from skeleton.errors import CogmaError

TASKS = ("classifier", "student", "cv")
CV_VARIANTS = ("teacher", "teacher_no_colearning", "stgcn", "student", "hand_crafted")


class ConfigError(CogmaError):
    """A configuration file or override that cannot be used."""


def _at_least(value: int, low: int, name: str) -> None:
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, not {value!r}")


def _positive(value: float, name: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a number > 0, not {value!r}")


@dataclass
class DataConfig:
    spec: dict[str, Any] = field(default_factory=lambda: {"kind": "synthetic", "n_infants": 160, "seed": 0})
    test_fraction: float = 0.2  # infants held out in the locked test set
    folds: int = 5  # grouped k-fold on the rest; fold ``val_fold`` is the validation split
    val_fold: int = 0
    split_seed: int = 0


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    crop_seconds: float = 30.0  # random crop per recording and epoch (whole recording if shorter)
    augment: bool = True  # training.augment: rotation, scale, mirror, dropout, time warp, fps resampling
    grad_clip: float = 5.0
    device: str = "auto"  # auto, cpu, cuda
    amp: bool = True  # bf16 autocast on a GPU (ignored on CPU)
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's setting
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        _at_least(self.epochs, 1, "epochs")
        _at_least(self.batch_size, 1, "batch_size")
        _positive(self.lr, "lr")
        _positive(self.crop_seconds, "crop_seconds")
        _positive(self.grad_clip, "grad_clip")
        for name in ("warmup_epochs", "num_threads", "num_workers"):
            _at_least(getattr(self, name), 0, name)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a number >= 0, not {self.weight_decay!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, not {self.device!r}")


@dataclass
class StageConfig:
    model: str = "teacher_small"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        from .models import FACTORIES  # the model registry (imports torch: only when a config is built)

        if self.model not in FACTORIES:
            raise ConfigError(f"unknown model {self.model!r}; known models: {', '.join(sorted(FACTORIES))}")


@dataclass
class ColearningConfig:
    enabled: bool = False
    cache: str | None = None  # feature cache written by `cogma features`
    weight_video: float = 0.2
    weight_text: float = 0.2
    weight_clinical: float = 0.2
    temperature: float = 0.1
    proj_hidden: int = 128


@dataclass
class DistillConfig:
    teacher: str | None = None  # teacher checkpoint; None: train one with the `teacher` section first
    alpha: float = 0.5  # weight of the soft-label (logit) loss
    beta: float = 1.0  # weight of the feature loss
    temperature: float = 2.0


@dataclass
class EvaluationConfig:
    target_sensitivity: float = 0.90
    prevalence: float | None = None  # stated prevalence for PPV/NPV; None: the sample's
    n_boot: int = 1000

    def __post_init__(self) -> None:
        _at_least(self.n_boot, 0, "n_boot")  # 0: no bootstrap confidence interval
        if not 0.0 < self.target_sensitivity < 1.0:
            raise ConfigError(f"target_sensitivity must be between 0 and 1, not {self.target_sensitivity!r}")
        if self.prevalence is not None and not 0.0 < self.prevalence < 1.0:
            raise ConfigError(f"prevalence must be between 0 and 1, not {self.prevalence!r}")


@dataclass
class CVConfig:
    variants: list[str] = field(default_factory=lambda: list(CV_VARIANTS))
    folds: int | None = None  # default: data.folds


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    task: str = "classifier"  # classifier (teacher or baseline), student (distil), cv (grouped cross-validation)
    seed: int = 0
    output: str = "runs/experiment"
    resume: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    teacher: StageConfig = field(default_factory=StageConfig)
    student: StageConfig = field(default_factory=lambda: StageConfig(model="student_demo"))
    baseline: StageConfig = field(default_factory=lambda: StageConfig(model="stgcn_small"))
    colearning: ColearningConfig = field(default_factory=ColearningConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    cv: CVConfig = field(default_factory=CVConfig)

    def __post_init__(self) -> None:
        _at_least(self.seed, 0, "seed")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        bad = sorted(set(self.cv.variants) - set(CV_VARIANTS))
        if bad:
            raise ConfigError(f"unknown cv variant(s) {', '.join(bad)}; known: {', '.join(CV_VARIANTS)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except ConfigError as e:  # a value the section refuses: say which section
        raise ConfigError(f"{where}: {e}" if where else str(e)) from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a {tp}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (arg,) = get_args(tp) or (Any,)
        return [_coerce(arg, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a text, got {value!r}")
        return value
    return value


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {k!r} is not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["train.epochs=3", "data.spec.n_infants=20"]``; values are parsed as YAML (numbers, lists, null)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        if not key.strip():
            raise ConfigError(f"override {item!r} has no key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_path(data, key.strip(), value)
    return data


def _defaults_as_dict(cfg: ExperimentConfig) -> dict:
    return cfg.to_dict()


def config_from_dict(data: dict, overrides: list[str] | None = None) -> ExperimentConfig:
    merged = _merge(_defaults_as_dict(ExperimentConfig()), data)
    # dict-valued leaves (data.spec, model_overrides) are replaced, not merged, by the file
    for path in (("data", "spec"),):
        node_f = data
        for k in path:
            node_f = node_f.get(k) if isinstance(node_f, dict) else None
        if isinstance(node_f, dict):
            merged[path[0]][path[1]] = dict(node_f)
    apply_overrides(merged, overrides or [])
    return _build(ExperimentConfig, merged, "")


def _merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a .yaml config file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a YAML config (not text)") from None
    if not text.strip():
        raise ConfigError(f"{path}: the config file is empty")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections")
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
