"""Zero-shot fidgety assessment on synthetic cohorts: never trained on fidgety labels.

    python benchmarks/training_zero_shot.py [--vlm DIR --clip DIR]

A teacher with co-learning is trained on a writhing-age cohort only; fidgety-age recordings (normal fidgety vs
absent fidgety) are then scored by similarity of the projected skeleton embedding to the text embeddings of
"fidgety movements present" / "absent". Without --vlm/--clip, tiny random-weight stand-ins are used (nothing is
downloaded): their prompt embeddings carry no meaning, so chance level is the honest expectation. A supervised
reference (the same teacher's own risk score) is reported beside it. CPU: one torch thread.
Writes benchmarks/results/training_zero_shot.json. Synthetic data — not for clinical use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import numpy as np
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vlm")
    parser.add_argument("--clip")
    parser.add_argument("--train-infants", type=int, default=80)
    parser.add_argument("--eval-infants", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--model", default="teacher_small")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_zero_shot.json"))
    args = parser.parse_args()
    from cogma import NOT_FOR_CLINICAL_USE
    from training.config import StageConfig, TrainConfig, config_from_dict
    from training.data import load_dataset
    from training.engine import DistEnv, prepare
    from training.evaluate import auc_score, evaluate_items
    from training.experiment import score_recordings, train_classifier
    from training.features import compute_features
    from training.tiny_models import build_tiny_clip, build_tiny_vlm
    from training.zero_shot import zero_shot_scores

    gpu = torch.cuda.is_available()
    if not gpu:
        torch.set_num_threads(1)
    device = "cuda" if gpu else "cpu"
    print(f"{NOT_FOR_CLINICAL_USE}. Device: {device}{'' if gpu else ', 1 torch thread'}")
    t0 = time.perf_counter()
    writhing = load_dataset({"kind": "synthetic", "n_infants": args.train_infants, "seed": 21, "age_band": "writhing",
                             "infant_prefix": "wr"})
    fidgety = load_dataset({"kind": "synthetic", "n_infants": args.eval_infants, "seed": 22, "age_band": "fidgety",
                            "prevalence": 0.4, "infant_prefix": "fi"})
    with tempfile.TemporaryDirectory() as tmp:
        vlm = args.vlm or build_tiny_vlm(Path(tmp) / "vlm")
        clip = args.clip or build_tiny_clip(Path(tmp) / "clip")
        cache = compute_features(writhing + fidgety, vlm_dir=vlm, clip_dir=clip, frames=4, image_size=112,
                                 device=device)
        cache_path = Path(tmp) / "features.safetensors"
        cache.save(cache_path)
        # fidgety descriptions must not reach training: only writhing recordings are trained on
        cfg = config_from_dict({"name": "zero_shot", "seed": 0, "output": str(Path(tmp) / "run"), "resume": False,
                                "colearning": {"enabled": True, "cache": str(cache_path)}})
        stage = StageConfig(model=args.model, train=TrainConfig(epochs=args.epochs, batch_size=16, crop_seconds=20,
                                                                 lr=0.003, device=device))
        env = DistEnv(device=torch.device(device))
        model, heads = train_classifier(cfg, stage, prepare(writhing), env, Path(tmp) / "run", colearning=True,
                                        desc="writhing teacher")
    recs = prepare(fidgety)
    y = np.array([it.label for it in fidgety])  # 1 = fidgety movements absent
    result = {"notice": NOT_FOR_CLINICAL_USE, "device": device, "model": args.model,
              "encoders": "given" if args.vlm else "tiny random-weight stand-ins (no meaning)",
              "train": {"cohort": "writhing-age only", "recordings": len(writhing)},
              "eval": {"cohort": "fidgety-age", "recordings": len(fidgety), "absent_fidgety": int(y.sum())}}
    for space in [m for m in heads.heads if f"{m}/present" in cache.prompts]:  # text (VLM) and clinical (CLIP)
        scores = zero_shot_scores(model, heads, cache, recs, space=space, device=device)
        report = evaluate_items(fidgety, scores, val_true=y, val_scores=scores, n_boot=1000)
        result[f"zero_shot_{space}"] = {"auc": report.auc, "auc_ci": report.auc_ci}
    supervised = score_recordings(model, "classifier", recs, device)
    result["writhing_teacher_risk_on_fidgety"] = {"auc": auc_score(y, supervised),
                                                  "meaning": "the writhing-trained risk score applied to fidgety age"}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2, default=str))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
