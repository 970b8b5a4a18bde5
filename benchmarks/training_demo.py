"""Train the shipped demo student from its config on this CPU and time it (target: <= 10 minutes on 2 cores).

    python benchmarks/training_demo.py [--threads 1] [--ship]

First a short probe times a few training steps with 1 and 2 torch threads (the faster is reported; on a busy
2-core machine one thread is usually faster and far steadier). Then the whole demo run: synthetic cohort
generation, teacher training, distillation, calibration, threshold on validation, locked-test evaluation.
``--ship`` copies the resulting student.pt to training/demo/student.pt. Writes benchmarks/results/training_demo.json.
Synthetic data — not for clinical use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def probe_threads(steps: int = 3) -> dict[int, float]:
    import torch

    from training.distill import StudentOnlyTask
    from training.models import build_model

    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        task = StudentOnlyTask(build_model("student_demo")).train()
        opt = torch.optim.AdamW(task.parameters())
        kp = torch.rand(16, 900, 20, 3)
        kp[..., 2] = 1.0
        batch = {"keypoints": kp, "fps": torch.full((16,), 30.0), "lengths": torch.full((16,), 900), "grid_len": 450,
                 "label": (torch.arange(16) % 2).float()}
        t0 = time.perf_counter()
        for _ in range(steps):
            loss, _ = task(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[threads] = (time.perf_counter() - t0) / steps
    return out


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "training/configs/demo_student.yaml"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the faster of the probe)")
    parser.add_argument("--ship", action="store_true", help="copy the student to training/demo/student.pt")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_demo.json"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    from cogma import NOT_FOR_CLINICAL_USE
    from training.config import load_config
    from training.experiment import run_experiment

    probe = probe_threads()
    threads = args.threads or min(probe, key=probe.get)
    print(f"{NOT_FOR_CLINICAL_USE}. CPU: {os.cpu_count()} cores; probe s/step: "
          + ", ".join(f"{k} thread(s) {v:.2f}" for k, v in probe.items()) + f"; using {threads} thread(s)")
    torch.set_num_threads(threads)
    overrides = [f"teacher.train.num_threads={threads}", f"student.train.num_threads={threads}", "resume=false",
                 *args.overrides]
    cfg = load_config(args.config, overrides)
    if Path(cfg.output).exists():
        shutil.rmtree(cfg.output)  # time a clean run, not a resumed one
    t0 = time.perf_counter()
    result = run_experiment(cfg)
    wall = time.perf_counter() - t0
    row = {"wall_seconds": round(wall, 1), "threads": threads, "probe_seconds_per_step": probe,
           "cpu_count": os.cpu_count(), "teacher_seconds": result.get("teacher_seconds"),
           "student_seconds": result.get("student_seconds"), "teacher": result.get("teacher"),
           "student": result.get("student"), "config": str(args.config), "overrides": overrides,
           "load_average": os.getloadavg(), "notice": NOT_FOR_CLINICAL_USE}
    print(f"demo student trained in {wall / 60:.1f} min ({threads} torch thread(s); load average "
          f"{os.getloadavg()[0]:.1f}); teacher test AUC {result['teacher']['test']['auc']:.3f}, "
          f"student test AUC {result['student']['test']['auc']:.3f}")
    if args.ship:
        dest = ROOT / "training/demo/student.pt"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(result["student_checkpoint"], dest)
        row["shipped"] = str(dest.relative_to(ROOT))
        print(f"shipped {dest}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(row, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
