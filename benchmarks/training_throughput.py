"""Throughput of the training models in recordings per second: inference and training steps.

    python benchmarks/training_throughput.py [--device cuda] [--seconds 180]

Recordings are 3-minute 30 fps Infant-20 skeletons (random motion: speed does not depend on content).
Inference scores whole recordings (teacher: all 10 s windows); training steps use 30 s crops, batch 32.
GPU: bf16 autocast. CPU: one torch thread (said in the output). Writes benchmarks/results/training_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def per_second(fn, device, batch: int, steps: int) -> float:
    """Items per second of ``fn`` (one batch per call) over ``steps`` calls after one warm-up call."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def measure(name: str, device, seconds: float, batch: int, steps: int) -> dict:
    import torch

    from training.colearning import SupervisedTask
    from training.distill import StudentOnlyTask
    from training.engine import autocast
    from training.models import build_model, count_parameters

    torch.manual_seed(0)
    model = build_model(name).to(device)
    is_student = name.startswith("student")
    t_full = int(seconds * 30)
    kp = torch.rand(batch, t_full, 20, 3, device=device)
    kp[..., 2] = 1.0
    fps = torch.full((batch,), 30.0, device=device)
    grid = int(seconds * 15)

    def infer():
        with torch.no_grad(), autocast(device, True):
            if is_student:
                return model.score_infant20(kp, fps, grid_len=grid).logit
            return model(kp, fps, grid_len=grid).logit

    model.eval()
    infer_rps = per_second(infer, device, batch, steps)
    task = (StudentOnlyTask(model) if is_student else SupervisedTask(model)).train()
    opt = torch.optim.AdamW(task.parameters(), lr=1e-3)
    crop = kp[:, : 30 * 30]
    b = {"keypoints": crop, "fps": fps, "lengths": torch.full((batch,), crop.shape[1], device=device),
         "grid_len": 450, "label": (torch.arange(batch, device=device) % 2).float()}

    def step():
        with autocast(device, True):
            loss, _ = task(b)
        opt.zero_grad()
        loss.backward()
        opt.step()

    train_rps = per_second(step, device, batch, steps)
    return {"model": name, "parameters": count_parameters(model), "inference_recordings_per_s": round(infer_rps, 1),
            "inference_recording": f"{seconds:g} s at 30 fps", "train_crops_per_s": round(train_rps, 1),
            "train_crop": "30 s at 30 fps", "batch": batch}


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--models", default="teacher_base,teacher_small,stgcn_small,student_demo")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_throughput.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    where = torch.cuda.get_device_name(0) + " (bf16 autocast)" if device.type == "cuda" else "CPU, 1 torch thread"
    print(f"device: {where}; torch {torch.__version__}")
    rows = [measure(m, device, args.seconds, args.batch, args.steps) for m in args.models.split(",")]
    print(f"{'model':<16}{'params':>10}{'infer rec/s':>14}{'train crops/s':>16}")
    for r in rows:
        print(f"{r['model']:<16}{r['parameters']:>10}{r['inference_recordings_per_s']:>14}{r['train_crops_per_s']:>16}")
    out = {"device": where, "torch": torch.__version__, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
