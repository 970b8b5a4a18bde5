"""``cogma train``, ``cogma evaluate`` and ``cogma features``.

Registration imports nothing heavy; torch and transformers load inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from skeleton.errors import CogmaError


class TrainingCliError(CogmaError):
    """A command-line input to a training command that cannot be used."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a teacher, baseline or student from a YAML config",
        description="Train from a YAML config (training/configs/*.yaml). Overrides: key.sub=value, e.g. "
                    "teacher.train.epochs=3 data.spec.n_infants=40. Several GPUs: "
                    "torchrun --nproc_per_node N -m cogma.cli train --config FILE.",
    )
    p.add_argument("--config", required=True, help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (YAML values)")
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate", help="evaluate a student or teacher checkpoint on labelled recordings",
        description="AUC with bootstrap CI, sensitivity/specificity/PPV/NPV at the checkpoint's frozen threshold, "
                    "Brier score, ECE, per age band. Screening aid, not a diagnosis.",
    )
    e.add_argument("model", help="checkpoint (student.pt or teacher.pt)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder of PoseRecordings with labels.csv, or a dataset spec file (.yaml/.json)")
    src.add_argument("--synthetic", type=int, metavar="N", help="a fresh synthetic cohort of N infants")
    e.add_argument("--seed", type=int, default=0, help="seed of the synthetic cohort (default 0)")
    e.add_argument("--prevalence", type=float, default=None, help="stated prevalence for PPV/NPV")
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the AUC CI (0: no CI)")
    e.add_argument("--out", help="also write report.json, roc.png and calibration.png here")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(func=_evaluate)

    f = subparsers.add_parser(
        "features", help="compute co-learning features with local VLM / CLIP models (nothing downloaded)",
        description="Cache per-recording features for co-learning: a local Qwen2-VL-family model (--vlm) for video "
                    "frames and movement descriptions, a local CLIP text encoder (--clip) for clinical text. "
                    "Recordings without RGB video get frames rendered from the skeleton.",
    )
    f.add_argument("--vlm", help="local multimodal LLM folder (qwen2_vl / qwen2_5_vl)")
    f.add_argument("--clip", help="local CLIP folder (text encoder with projection)")
    fsrc = f.add_mutually_exclusive_group(required=True)
    fsrc.add_argument("--data", help="folder of PoseRecordings with labels.csv, or a dataset spec file")
    fsrc.add_argument("--synthetic", type=int, metavar="N", help="a synthetic cohort of N infants")
    fsrc.add_argument("--config", help="use the data spec of this training config")
    f.add_argument("--seed", type=int, default=0, help="seed of the synthetic cohort")
    f.add_argument("--out", required=True, help="cache file to write (.safetensors)")
    f.add_argument("--frames", type=int, default=8, help="video frames per recording (default 8)")
    f.add_argument("--image-size", type=int, default=224, help="frame side in pixels (default 224)")
    f.add_argument("--video-dir", help="folder with <key>.mp4 RGB videos, where researchers have them")
    f.add_argument("--device", default="cpu", help="cpu or cuda")
    f.set_defaults(func=_features)


def data_spec(data: str | None, synthetic: int | None, seed: int) -> dict[str, Any]:
    """A dataset spec from ``--data`` (folder or spec file) or ``--synthetic N --seed S``."""
    if synthetic is not None:
        if synthetic < 2:
            raise TrainingCliError("--synthetic needs at least 2 infants")
        return {"kind": "synthetic", "n_infants": int(synthetic), "seed": int(seed)}
    path = Path(data)
    if path.is_dir():
        return {"kind": "recordings", "root": str(path)}
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml", ".json"):
        import yaml

        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise TrainingCliError(f"{path}: not a valid dataset spec ({e})") from None
        if not isinstance(spec, dict):
            raise TrainingCliError(f"{path}: a dataset spec must be a mapping with a 'kind'")
        return spec
    raise TrainingCliError(f"{path}: not a folder of recordings nor a dataset spec file (.yaml/.json)")


def _threads(n: int) -> None:
    import torch

    if n > 0:
        torch.set_num_threads(n)


def _train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .experiment import run_experiment

    cfg = load_config(args.config, args.overrides)
    _threads(cfg.teacher.train.num_threads)
    result = run_experiment(cfg)
    brief = {k: result.get(k) for k in ("task", "name", "teacher", "student", "variants", "student_checkpoint",
                                        "seconds", "notice") if result.get(k) is not None}
    print(json.dumps(brief, indent=2, default=str))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from cogma import NOT_FOR_CLINICAL_USE

    from .data import load_dataset
    from .engine import prepare
    from .evaluate import evaluate_items, write_report
    from .experiment import load_any_model, score_recordings

    if args.n_boot < 0:
        raise TrainingCliError("--n-boot must be 0 (no confidence interval) or more")
    if args.prevalence is not None and not 0.0 < args.prevalence < 1.0:
        raise TrainingCliError("--prevalence must be between 0 and 1")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise TrainingCliError(f"--out {args.out} is a file; give a folder for the report")
    torch.set_num_threads(1)
    model, kind, meta = load_any_model(args.model)
    spec = data_spec(args.data, args.synthetic, args.seed)
    items = load_dataset(spec)
    scores = score_recordings(model, kind, prepare(items), progress=not args.json)
    report = evaluate_items(items, scores, threshold=float(meta["threshold"]), prevalence=args.prevalence,
                            n_boot=args.n_boot)
    report.operating_point.setdefault("chosen_on", (meta.get("operating_point") or {}).get("chosen_on", "training"))
    out = report.to_dict()
    synthetic_model = bool(meta.get("not_for_clinical_use", True)) or (meta.get("training_data") or {}).get("synthetic")
    out.update({"model": str(args.model), "model_kind": kind, "data": spec,
                "notice": NOT_FOR_CLINICAL_USE if (synthetic_model or report.synthetic) else
                "research model: not for clinical use", "screening": "screening aid, not a diagnosis"})
    if args.out:
        write_report(report, args.out, f"{Path(args.model).name} on {spec.get('kind')}")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    ci = out.get("auc_ci") or [None, None]
    print(f"{out['notice']} — {out['screening']}")
    print(f"model {args.model} ({kind}); {out['n_recordings']} recordings of {out['n_infants']} infants")
    if out.get("auc") is None:
        auc = "n/a (the recordings hold only one class)"
    else:
        auc = _number(out["auc"]) + (f" (95% CI {_number(ci[0])}-{_number(ci[1])})" if ci[0] is not None else "")
    labels = (("threshold", "threshold"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
              ("PPV", "ppv"), ("NPV", "npv"), ("Brier", "brier"), ("ECE", "ece"))
    rows = [("AUC", auc), *((label, _number(out.get(key))) for label, key in labels)]
    for name, value in rows:
        print(f"  {name:<12} {value}")
    return 0


def _number(value: float | None) -> str:
    """Three decimals, or "n/a" where a metric is undefined (one class only, no positives, ...)."""
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _features(args: argparse.Namespace) -> int:
    import torch

    from .data import load_dataset
    from .features import compute_features

    torch.set_num_threads(1)
    if args.config:
        from .config import load_config

        spec = dict(load_config(args.config).data.spec)
    else:
        spec = data_spec(args.data, args.synthetic, args.seed)
    if args.frames < 1 or args.image_size < 28:
        raise TrainingCliError("--frames must be >= 1 and --image-size >= 28")
    items = load_dataset(spec)
    cache = compute_features(items, vlm_dir=args.vlm, clip_dir=args.clip, frames=args.frames,
                             image_size=args.image_size, video_dir=args.video_dir, device=args.device)
    cache.info["data"] = spec
    path = cache.save(args.out)
    dims = {m: cache.dim(m) for m in cache.modalities()}
    print(json.dumps({"cache": str(path), "recordings": len(items), "dims": dims,
                      "video_source": cache.info.get("video_source")}, indent=2))
    return 0
