"""Grouped k-fold CV of the teacher (with and without co-learning), plain ST-GCN, the distilled student and the
hand-crafted baseline, all on the same folds of the default synthetic cohort.

    python benchmarks/training_cv.py [--config training/configs/cv_default.yaml] [KEY=VALUE ...]

Co-learning needs a feature cache; without real VLM/CLIP weights (nothing is downloaded) this script builds tiny
random-weight stand-ins and caches their features, so the co-learning ablation measures the plumbing plus whatever
those targets carry (on synthetic data: the movement class through its description). On a CPU it uses one torch
thread and says so. Writes benchmarks/results/training_cv.json. Synthetic data — not for clinical use.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
            platform.machine(), "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def ensure_feature_cache(cfg) -> str | None:
    from training.data import load_dataset
    from training.features import compute_features
    from training.tiny_models import build_tiny_clip, build_tiny_vlm

    path = Path(cfg.colearning.cache)
    if path.is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        vlm, clip = build_tiny_vlm(Path(tmp) / "vlm"), build_tiny_clip(Path(tmp) / "clip")
        cache = compute_features(load_dataset(dict(cfg.data.spec)), vlm_dir=vlm, clip_dir=clip, frames=4,
                                 image_size=112)
    cache.info["models"] = "tiny random-weight stand-ins (training.tiny_models), not real VLM/CLIP weights"
    cache.save(path)
    return str(path)


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "training/configs/cv_default.yaml"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_cv.json"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    from cogma import NOT_FOR_CLINICAL_USE
    from training.config import load_config
    from training.experiment import run_experiment

    cfg = load_config(args.config, args.overrides)
    gpu = torch.cuda.is_available() and cfg.teacher.train.device != "cpu"
    if not gpu:
        torch.set_num_threads(1)
    print(f"{NOT_FOR_CLINICAL_USE}. Device: {'GPU ' + torch.cuda.get_device_name(0) if gpu else 'CPU, 1 torch thread'}")
    made = ensure_feature_cache(cfg) if cfg.colearning.enabled else None
    started = time.perf_counter()
    result = run_experiment(cfg)
    result["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine()
    result["feature_cache"] = {"path": cfg.colearning.cache, "made_by_this_run": made is not None,
                               "models": "tiny random-weight stand-ins" if made else "as given"}
    print(f"\n{'variant':<24}{'CV AUC (95% CI)':<26}{'fold AUC mean±sd':<20}{'sens/spec':<14}{'train s':>8}")
    for name, v in result["variants"].items():
        if "error" in v:
            print(f"{name:<24}{v['error']}")
            continue
        cv, folds = v["cv"], [a for a in v["fold_aucs"] if a is not None]
        ci = cv["auc_ci"] or [float("nan")] * 2
        import numpy as np

        print(f"{name:<24}{cv['auc']:.3f} ({ci[0]:.3f}-{ci[1]:.3f})    {np.mean(folds):.3f}±{np.std(folds, ddof=1):.3f}"
              f"       {cv['sensitivity']:.2f}/{cv['specificity']:.2f}    {v['train_seconds_total']:>8.0f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
