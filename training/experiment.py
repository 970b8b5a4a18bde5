"""What ``cogma train`` runs: data, splits, training stages, calibration, evaluation, checkpoints.

Tasks (``task`` in the config):

* ``classifier`` — train the ``teacher`` stage (a teacher, or the plain ST-GCN
  baseline by naming ``stgcn_*``), with co-learning if enabled;
* ``student``    — train (or load) the teacher, distil the student, calibrate it,
  freeze its threshold and write the student checkpoint of the contract;
* ``cv``         — grouped k-fold cross-validation of several variants on the
  same folds (teacher, teacher without co-learning, plain ST-GCN, distilled
  student, hand-crafted baseline), out-of-fold scores evaluated together.

Splits are always by infant: a locked test set (``training.splits``) is held
out first; the validation split that picks thresholds is a fold of the rest.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml
from torch import nn

from cogma import NOT_FOR_CLINICAL_USE, __version__

from .colearning import ColearningHeads, FeatureCache, SupervisedTask, target_fn
from .config import ConfigError, ExperimentConfig, StageConfig
from .distill import DistillTask, fit_platt, set_calibration
from .engine import CropDataset, DistEnv, PreparedRecording, predict_logits, prepare, seed_everything, sigmoid, train
from .models import Student, StudentMeta, WindowedClassifier, build_model, count_parameters, save_student
from .models.student import MAX_PARAMETERS, input_contract, output_contract

CLASSIFIER_FORMAT = "cogma.classifier"


# ---------------------------------------------------------------------------------------------- checkpoints


def save_classifier(path: Path, name: str, model: WindowedClassifier, heads: ColearningHeads | None,
                    info: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CLASSIFIER_FORMAT, "version": 1, "model": name, "config": asdict(model.config),
               "state_dict": model.state_dict(), "heads": None if heads is None else
               {"dims": heads.dims, "hidden": heads.heads[next(iter(heads.dims))][0].out_features,
                "state_dict": heads.state_dict()}, "info": info}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_classifier(path: str | Path) -> tuple[WindowedClassifier, ColearningHeads | None, dict[str, Any]]:
    from .models.student import read_checkpoint

    payload = read_checkpoint(path, CLASSIFIER_FORMAT, "teacher/baseline")
    model = build_model(payload["model"], **payload["config"])
    model.load_state_dict(payload["state_dict"])
    heads = None
    if payload.get("heads"):
        h = payload["heads"]
        heads = ColearningHeads(model.embed_dim, h["dims"], h["hidden"])
        heads.load_state_dict(h["state_dict"])
        heads.eval()
    return model.eval(), heads, payload["info"]


def load_any_model(path: str | Path) -> tuple[nn.Module, str, dict[str, Any]]:
    """A student (``kind="student"``) or a teacher/baseline (``kind="classifier"``) checkpoint."""
    from .models.student import StudentError, load_student

    try:
        student, meta = load_student(path)
        return student, "student", meta.to_dict()
    except StudentError as first:
        try:
            model, _, info = load_classifier(path)
            return model, "classifier", info
        except StudentError:
            raise first from None


def score_recordings(model: nn.Module, kind: str, recordings: Sequence[PreparedRecording], device: str = "cpu",
                     progress: bool = False) -> np.ndarray:
    """Probabilities of atypical movements for whole recordings."""
    if kind == "student":
        def call(m, b):
            out = m.score_infant20(b["keypoints"], b["fps"], grid_len=b["grid_len"])
            return m.calibrated(out.logit, out.logit_sd)[:, 0]

        return predict_logits(model, recordings, device, call=call, progress=progress)
    return sigmoid(predict_logits(model, recordings, device, progress=progress))


# ---------------------------------------------------------------------------------------------- data


def load_items(cfg: ExperimentConfig):
    from .data import load_dataset

    return load_dataset(dict(cfg.data.spec))


def split_items(cfg: ExperimentConfig, items: list) -> tuple[list, list, Any]:
    """(train, validation, locked test) — by infant; validation = fold ``val_fold`` of the non-test rest."""
    from .splits import grouped_kfold, hold_out_locked_test

    rest, locked = hold_out_locked_test(items, cfg.data.test_fraction, cfg.data.split_seed)
    folds = grouped_kfold(rest, cfg.data.folds, cfg.data.split_seed)
    fold = folds[cfg.data.val_fold]
    return [rest[i] for i in fold.train], [rest[i] for i in fold.val], locked


def _provenance(cfg: ExperimentConfig, items: list) -> dict[str, Any]:
    from .data import dataset_summary

    summary = dataset_summary(items)
    synthetic = "synthetic" in summary.get("sources", [])
    text = (f"{NOT_FOR_CLINICAL_USE}: synthetic cohort from skeleton.synthetic" if synthetic
            else "recordings listed in the dataset spec")
    return {"text": text, "spec": dict(cfg.data.spec), "summary": summary, "synthetic": synthetic,
            "split": {"test_fraction": cfg.data.test_fraction, "folds": cfg.data.folds, "val_fold": cfg.data.val_fold,
                      "split_seed": cfg.data.split_seed, "grouped_by": "infant"}}


# ---------------------------------------------------------------------------------------------- stages


def _colearning_parts(cfg: ExperimentConfig, model: WindowedClassifier, recs: Sequence[PreparedRecording],
                      enabled: bool):
    if not (enabled and cfg.colearning.enabled):
        return None, None
    if not cfg.colearning.cache:
        from .colearning import FeatureCacheError

        raise FeatureCacheError("co-learning is enabled but colearning.cache is not set: make one with `cogma features`")
    cache = FeatureCache.load(cfg.colearning.cache)
    dims = {m: cache.dim(m) for m in cache.modalities()}
    heads = ColearningHeads(model.embed_dim, dims, cfg.colearning.proj_hidden)
    return heads, target_fn(cache, [r.key for r in recs])


def train_classifier(cfg: ExperimentConfig, stage: StageConfig, recs: Sequence[PreparedRecording], env: DistEnv,
                     out_dir: Path, *, colearning: bool, desc: str) -> tuple[WindowedClassifier, ColearningHeads | None]:
    seed_everything(cfg.seed)
    model = build_model(stage.model, **stage.model_overrides)
    heads, extra = _colearning_parts(cfg, model, recs, colearning)
    weights = {"video": cfg.colearning.weight_video, "text": cfg.colearning.weight_text,
               "clinical": cfg.colearning.weight_clinical}
    task = SupervisedTask(model, heads, weights, cfg.colearning.temperature)
    data = CropDataset(recs, crop_seconds=stage.train.crop_seconds, seed=cfg.seed, augment=stage.train.augment,
                       extra=extra)
    train(task, data, stage.train, seed=cfg.seed, env=env, checkpoint_dir=out_dir, resume=cfg.resume, desc=desc)
    return model.eval(), (heads.eval() if heads is not None else None)


def train_student(cfg: ExperimentConfig, teacher: WindowedClassifier, recs: Sequence[PreparedRecording],
                  env: DistEnv, out_dir: Path, desc: str = "student") -> Student:
    seed_everything(cfg.seed + 1)
    student = build_model(cfg.student.model, **cfg.student.model_overrides)
    n = count_parameters(student)
    if n > MAX_PARAMETERS:
        raise ValueError(f"student {cfg.student.model} has {n} parameters; the contract allows {MAX_PARAMETERS}")
    d = cfg.distill
    task = DistillTask(student, teacher, d.alpha, d.beta, d.temperature)
    data = CropDataset(recs, crop_seconds=cfg.student.train.crop_seconds, seed=cfg.seed + 1,
                       augment=cfg.student.train.augment)
    train(task, data, cfg.student.train, seed=cfg.seed + 1, env=env, checkpoint_dir=out_dir, resume=cfg.resume,
          desc=desc)
    return student.eval()


def _evaluate(items, scores, cfg: ExperimentConfig, **kwargs):
    from .evaluate import evaluate_items

    return evaluate_items(items, scores, prevalence=cfg.evaluation.prevalence,
                          target_sensitivity=cfg.evaluation.target_sensitivity, n_boot=cfg.evaluation.n_boot,
                          seed=cfg.seed, **kwargs)


def _write(report, out_dir: Path, title: str) -> None:
    from .evaluate import write_report

    write_report(report, out_dir, title)


# ---------------------------------------------------------------------------------------------- tasks


# settings that change where or how fast a run goes, not what it learns: a run may resume with others
_RUN_NEUTRAL = {"output", "resume", "device", "num_threads", "num_workers"}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _config_yaml(cfg: ExperimentConfig) -> str:
    """The run's ``config.yaml``, as written to its folder and compared on resume."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def check_run_folder(out: Path, cfg: ExperimentConfig) -> None:
    """Refuse to resume a run folder that holds a run of another config: its teacher and last-epoch
    checkpoints would be taken up by this run, mixing the two (with ``resume=false`` it starts over)."""
    saved = out / "config.yaml"
    if not cfg.resume or not saved.is_file():
        return
    try:
        old = yaml.safe_load(saved.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        old = None
    if not isinstance(old, dict):
        raise ConfigError(f"{saved} is not a config this program wrote; choose another output folder")
    before, now = _flat(old), _flat(yaml.safe_load(_config_yaml(cfg)))
    changed = sorted(k for k in before.keys() | now.keys()
                     if before.get(k) != now.get(k) and k.rsplit(".", 1)[-1] not in _RUN_NEUTRAL)
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        raise ConfigError(
            f"{out} holds a run of another config ({shown} differ{'s' if len(changed) == 1 else ''}); resuming it "
            "would mix the two runs. "
            f"Give this run its own folder (output=...), or resume=false to start over in {out} "
            "(its checkpoints are then replaced)"
        )


def run_experiment(cfg: ExperimentConfig, env: DistEnv | None = None) -> dict[str, Any]:
    from .engine import setup_distributed

    out = Path(cfg.output)
    check_run_folder(out, cfg)
    env = env or setup_distributed(cfg.teacher.train.device)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(_config_yaml(cfg))
    started = time.perf_counter()
    items = load_items(cfg)
    if cfg.task == "cv":
        result = run_cv(cfg, items, env, out)
    else:
        result = run_train(cfg, items, env, out)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["notice"] = NOT_FOR_CLINICAL_USE if result.get("training_data", {}).get("synthetic", True) else ""
    if env.is_main:
        (out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def _device_of(env: DistEnv) -> str:
    return str(env.device)


def run_train(cfg: ExperimentConfig, items: list, env: DistEnv, out: Path) -> dict[str, Any]:
    train_items, val_items, locked = split_items(cfg, items)
    provenance = _provenance(cfg, items)
    recs_train, recs_val = prepare(train_items), prepare(val_items)
    result: dict[str, Any] = {"task": cfg.task, "name": cfg.name, "training_data": provenance,
                              "n_train": len(train_items), "n_val": len(val_items), "n_test": locked.n_recordings}
    device = _device_of(env)
    # --- teacher (or baseline)
    t0 = time.perf_counter()
    if cfg.task == "student" and cfg.distill.teacher:
        teacher, heads, _ = load_classifier(cfg.distill.teacher)
        result["teacher_checkpoint"] = cfg.distill.teacher
    elif (out / "teacher.pt").is_file() and cfg.resume:
        teacher, heads, _ = load_classifier(out / "teacher.pt")
    else:
        teacher, heads = train_classifier(cfg, cfg.teacher, recs_train, env, out / "teacher", colearning=True,
                                          desc=cfg.teacher.model)
    result["teacher_seconds"] = round(time.perf_counter() - t0, 1)
    teacher_val = score_recordings(teacher, "classifier", recs_val, device)
    from .evaluate import choose_threshold

    t_threshold, t_sens, t_spec = choose_threshold([it.label for it in val_items], teacher_val,
                                                   cfg.evaluation.target_sensitivity)
    if env.is_main and not (cfg.task == "student" and cfg.distill.teacher):
        save_classifier(out / "teacher.pt", cfg.teacher.model, teacher, heads,
                        {"threshold": t_threshold, "training_data": provenance, "notice": NOT_FOR_CLINICAL_USE,
                         "colearning": cfg.colearning.enabled, "version": __version__})
    test_items = locked.unlock(f"final evaluation of {cfg.name} after training")
    recs_test = prepare(test_items)
    teacher_test = score_recordings(teacher, "classifier", recs_test, device)
    t_report = _evaluate(test_items, teacher_test, cfg, threshold=t_threshold)
    t_report.operating_point.update({"chosen_on": "validation fold", "sensitivity_at_choice": t_sens,
                                     "specificity_at_choice": t_spec})
    result["teacher"] = {"model": cfg.teacher.model, "parameters": count_parameters(teacher),
                         "test": _brief(t_report)}
    if env.is_main:
        _write(t_report, out / "reports" / "teacher", f"{cfg.teacher.model} — locked test set")
    if cfg.task != "student":
        return result
    # --- student
    t0 = time.perf_counter()
    student = train_student(cfg, teacher, recs_train, env, out / "student")
    result["student_seconds"] = round(time.perf_counter() - t0, 1)
    raw = predict_logits(student, recs_val, device,
                         call=lambda m, b: m.score_infant20(b["keypoints"], b["fps"], grid_len=b["grid_len"]).logit)
    a, b = fit_platt(raw, np.array([it.label for it in val_items]))
    set_calibration(student, a, b)
    student_val = score_recordings(student, "student", recs_val, device)
    threshold, sens, spec = choose_threshold([it.label for it in val_items], student_val,
                                             cfg.evaluation.target_sensitivity)
    student_test = score_recordings(student, "student", recs_test, device)
    s_report = _evaluate(test_items, student_test, cfg, threshold=threshold)
    s_report.operating_point.update({"chosen_on": "validation fold", "sensitivity_at_choice": sens,
                                     "specificity_at_choice": spec})
    result["student"] = {"model": cfg.student.model, "parameters": count_parameters(student),
                         "calibration": {"a": a, "b": b}, "test": _brief(s_report)}
    meta = StudentMeta(
        version=f"{__version__}+{cfg.name}", architecture={"name": cfg.student.model, **asdict(student.config),
                                                           "parameters": count_parameters(student)},
        input_contract=input_contract(), output_contract=output_contract(), threshold=float(threshold),
        operating_point={"target_sensitivity": cfg.evaluation.target_sensitivity, "sensitivity": sens,
                         "specificity": spec, "chosen_on": f"validation fold ({len(val_items)} recordings)"},
        metrics={"test": s_report.to_dict() | {"roc": None, "calibration": None},
                 "teacher_test": _brief(t_report), "data_provenance": provenance["text"],
                 "evaluated_on": f"locked test set, {locked.n_recordings} recordings of {locked.n_infants} infants"},
        training_data=provenance, not_for_clinical_use=bool(provenance["synthetic"]),
        notice=NOT_FOR_CLINICAL_USE if provenance["synthetic"] else "research model: not for clinical use",
        extra={"teacher": cfg.teacher.model, "config_name": cfg.name, "seed": cfg.seed,
               "colearning": cfg.colearning.enabled},
    )
    if env.is_main:
        save_student(student, meta, out / "student.pt")
        _write(s_report, out / "reports" / "student", f"{cfg.student.model} — locked test set")
    result["student_checkpoint"] = str(out / "student.pt")
    return result


def _brief(report) -> dict[str, Any]:
    d = report.to_dict()
    keys = ("auc", "auc_ci", "sensitivity", "specificity", "ppv", "npv", "brier", "ece", "threshold",
            "n_recordings", "n_infants", "prevalence")
    return {k: d.get(k) for k in keys}


def run_cv(cfg: ExperimentConfig, items: list, env: DistEnv, out: Path) -> dict[str, Any]:
    """Grouped k-fold CV of every variant on the same folds; the locked test set stays locked."""
    from .splits import grouped_kfold, hold_out_locked_test

    rest, locked = hold_out_locked_test(items, cfg.data.test_fraction, cfg.data.split_seed)
    k = cfg.cv.folds or cfg.data.folds
    folds = grouped_kfold(rest, k, cfg.data.split_seed)
    variants = list(cfg.cv.variants)
    device = _device_of(env)
    oof = {v: np.full(len(rest), np.nan) for v in variants if v != "hand_crafted"}
    seconds = {v: 0.0 for v in variants}
    recs = prepare(rest)
    for f, fold in enumerate(folds):
        tr = [recs[i] for i in fold.train]
        va = [recs[i] for i in fold.val]
        teacher = None
        for variant in variants:
            if variant == "hand_crafted":
                continue
            t0 = time.perf_counter()
            vdir = out / f"fold{f}" / variant
            done = vdir / "scores.json"
            if done.is_file() and cfg.resume and variant != "teacher":
                oof[variant][fold.val] = json.loads(done.read_text())["scores"]
                continue
            if variant in ("teacher", "teacher_no_colearning", "stgcn") or (variant == "student" and teacher is None):
                stage = cfg.baseline if variant == "stgcn" else cfg.teacher
                name = "teacher" if variant == "student" else variant
                model, _ = train_classifier(cfg, stage, tr, env, out / f"fold{f}" / name,
                                            colearning=(name == "teacher"), desc=f"fold {f} {name}")
                if name == "teacher":
                    teacher = model
                if variant != "student":
                    scores = score_recordings(model, "classifier", va, device)
            if variant == "student":
                student = train_student(cfg, teacher, tr, env, vdir, desc=f"fold {f} student")
                scores = score_recordings(student, "student", va, device)
            oof[variant][fold.val] = scores
            seconds[variant] += time.perf_counter() - t0
            if env.is_main:
                vdir.mkdir(parents=True, exist_ok=True)
                done.write_text(json.dumps({"scores": [float(s) for s in scores]}))
        if env.is_main:  # partial results survive an interrupted run
            y_done = np.array([it.label for it in rest])
            progress = {v: [_auc(y_done[fd.val], s[fd.val]) for fd in folds[: f + 1]] for v, s in oof.items()}
            (out / "progress.json").write_text(json.dumps({"folds_done": f + 1, "fold_aucs": progress,
                                                           "seconds": {v: round(t, 1) for v, t in seconds.items()}}))
    result: dict[str, Any] = {"task": "cv", "name": cfg.name, "folds": k, "training_data": _provenance(cfg, items),
                              "n_recordings": len(rest), "n_infants": len({it.infant_id for it in rest}),
                              "locked_test_untouched": not locked.was_unlocked, "variants": {}}
    y = np.array([it.label for it in rest])
    for variant, scores in oof.items():
        if not np.isfinite(scores).all():  # a variant that diverged is reported, not hidden
            result["variants"][variant] = {"error": f"{int((~np.isfinite(scores)).sum())} scores are not finite",
                                           "train_seconds_total": round(seconds[variant], 1)}
            continue
        report = _evaluate(rest, scores, cfg, val_true=y, val_scores=scores)
        fold_aucs = [_auc(y[fd.val], scores[fd.val]) for fd in folds]
        result["variants"][variant] = {"cv": _brief(report), "fold_aucs": fold_aucs,
                                       "train_seconds_total": round(seconds[variant], 1)}
    if "hand_crafted" in variants:
        from .baselines import logistic_baseline

        t0 = time.perf_counter()
        base = logistic_baseline(rest, folds, seed=cfg.seed, n_boot=cfg.evaluation.n_boot,
                                 prevalence=cfg.evaluation.prevalence,
                                 target_sensitivity=cfg.evaluation.target_sensitivity)
        result["variants"]["hand_crafted"] = {"cv": _brief(base.cv), "fold_aucs": base.fold_aucs,
                                              "train_seconds_total": round(time.perf_counter() - t0, 1)}
    return result


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from .evaluate import auc_score

    a = auc_score(y, s)
    return None if not np.isfinite(a) else float(a)
