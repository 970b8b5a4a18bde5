"""The training engine: data to tensors, a training loop, checkpoints, several GPUs.

* Recordings are converted once to Infant-20 keypoints (``skeleton.mapping``,
  the same weights the student embeds) and cropped at random each epoch;
  crops of one batch are zero-padded and carry their true lengths.
* Deterministic by seed: every crop and augmentation draws from
  ``numpy.random.default_rng([seed, epoch, index])`` and the sampler is seeded
  by epoch, so a run does not depend on how it was split across processes or
  interrupted; torch's RNG state is saved with each checkpoint.
* ``last.pt`` is written after every epoch (rank 0) and a run resumes from it.
* Several GPUs: start with ``torchrun --nproc_per_node N -m cogma.cli train ...``;
  the engine joins the process group torchrun describes (NCCL on GPUs, gloo on
  CPUs), wraps the task in ``DistributedDataParallel`` and shards the data with
  ``DistributedSampler``. Nothing home-made.
* bf16 autocast on GPUs; tqdm progress bars on rank 0.
"""

from __future__ import annotations

import math
import os
import random
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from skeleton.errors import CogmaError
from skeleton.mapping import convert

from .config import TrainConfig

class TrainingDiverged(CogmaError):
    """Training produced a non-finite loss."""


MIN_CROP_SECONDS = 12.0  # shorter crops hold no complete scoring window


@dataclass
class PreparedRecording:
    """One recording as the models see it: Infant-20 keypoints and what is known about it."""

    key: str
    infant_id: str
    label: int
    age_weeks: float | None
    fps: float
    aspect: float  # frame width / height (augmentation needs it)
    keypoints: np.ndarray  # float32 [T, 20, 3]
    index: int  # position in the dataset it came from


def prepare(items: Sequence[Any]) -> list[PreparedRecording]:
    """``LabeledRecording`` items -> Infant-20 arrays (native MediaPipe/COCO/OpenPose mapped by skeleton.mapping)."""
    out = []
    for i, it in enumerate(items):
        rec = it.recording
        kp = rec.keypoints if rec.schema == "infant20" else convert(rec.keypoints, rec.schema, "infant20")
        w, h = rec.frame_size
        out.append(PreparedRecording(it.key, it.infant_id, int(it.label), it.age_weeks, float(rec.fps), w / h,
                                     np.ascontiguousarray(kp, dtype=np.float32), i))
    return out


class CropDataset(Dataset):
    """Random crops (training) or whole recordings (evaluation) as tensors."""

    def __init__(self, recordings: Sequence[PreparedRecording], *, crop_seconds: float | None, seed: int,
                 augment: bool = False, extra: Callable[[int], dict[str, Tensor]] | None = None):
        self.recordings = list(recordings)
        self.crop_seconds = crop_seconds
        self.seed = seed
        self.augment = augment
        self.extra = extra  # per-index extra tensors (e.g. co-learning targets)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.recordings[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        kp, fps = rec.keypoints, rec.fps
        if self.crop_seconds is not None:
            n = max(2, int(round(max(self.crop_seconds, MIN_CROP_SECONDS) * fps)))
            if kp.shape[0] > n:
                start = int(rng.integers(0, kp.shape[0] - n + 1))
                kp = kp[start:start + n]
        if self.augment:
            from .augment import augment

            kp, fps = augment(kp, "infant20", fps, rng, aspect=rec.aspect)
            kp = np.clip(kp, -1.0, 2.0)
        item = {"keypoints": torch.from_numpy(np.ascontiguousarray(kp, dtype=np.float32)),
                "fps": torch.tensor(fps, dtype=torch.float32),
                "label": torch.tensor(float(rec.label)), "index": torch.tensor(i)}
        if self.extra is not None:
            item.update(self.extra(i))
        return item


def collate(batch: list[dict[str, Tensor]], grid_fps: float = 15.0) -> dict[str, Any]:
    """Zero-pad crops to the longest; ``grid_len`` covers the longest crop on the 15 Hz grid."""
    lengths = torch.tensor([b["keypoints"].shape[0] for b in batch])
    t = int(lengths.max())
    kp = torch.zeros(len(batch), t, *batch[0]["keypoints"].shape[1:])
    for i, b in enumerate(batch):
        kp[i, : b["keypoints"].shape[0]] = b["keypoints"]
    fps = torch.stack([b["fps"] for b in batch])
    grid_len = int(math.ceil(float(((lengths - 1) * grid_fps / fps).max()))) + 1
    out: dict[str, Any] = {"keypoints": kp, "fps": fps, "lengths": lengths, "grid_len": grid_len}
    for key in batch[0]:
        if key not in ("keypoints", "fps"):
            out[key] = torch.stack([b[key] for b in batch])
    return out


# ---------------------------------------------------------------------------------------------- distribution


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Launched by torchrun (a process group exists, even with one process)."""
        import torch.distributed as dist

        return dist.is_available() and dist.is_initialized()


def setup_distributed(device: str = "auto") -> DistEnv:
    """Join torchrun's process group if launched by torchrun (RANK and WORLD_SIZE set); else one plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistEnv(device=torch.device("cuda" if want_cuda else "cpu"))
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return DistEnv(rank, world, local, torch.device(f"cuda:{local}" if want_cuda else "cpu"))


def barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


# ---------------------------------------------------------------------------------------------- training loop


class Task(nn.Module):
    """What a training run optimises: ``forward(batch) -> (loss, logs)``; holds every trainable module."""

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:  # pragma: no cover - interface
        raise NotImplementedError


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    warm = max(1, cfg.warmup_epochs * steps_per_epoch)
    total = max(warm + 1, cfg.epochs * steps_per_epoch)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / (total - warm)))

    return f


def train(task: Task, dataset: CropDataset, cfg: TrainConfig, *, seed: int, env: DistEnv,
          checkpoint_dir: str | Path | None = None, resume: bool = True, desc: str = "train",
          grid_fps: float = 15.0) -> dict[str, Any]:
    """Train ``task`` on ``dataset``; returns a summary (epochs run, final loss, resumed from)."""
    seed_everything(seed)
    task.to(env.device)
    sampler = DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=seed,
                                 drop_last=False)
    per_rank_batch = max(1, cfg.batch_size // env.world_size)
    loader = DataLoader(dataset, batch_size=per_rank_batch, sampler=sampler, num_workers=cfg.num_workers,
                        collate_fn=lambda b: collate(b, grid_fps), drop_last=len(dataset) > per_rank_batch * env.world_size,
                        persistent_workers=False)
    params = [p for p in task.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, max(1, len(loader))))
    start_epoch, resumed_from = 0, None
    ckpt_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if resume and ckpt_path is not None and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        task.load_state_dict(state["task"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, resumed_from = int(state["epoch"]), str(ckpt_path)
    model: nn.Module = task
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.device.index] if env.device.type == "cuda" else None
        model = DistributedDataParallel(task, device_ids=ids, find_unused_parameters=True)
    from tqdm import tqdm

    last_loss = math.nan
    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"{desc} {epoch + 1}/{cfg.epochs}", disable=not (cfg.progress and env.is_main),
                   leave=False, unit="batch")
        for batch in bar:
            batch = _to_device(batch, env.device)
            with autocast(env.device, cfg.amp):
                loss, logs = model(batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"{desc}: the loss became {float(loss)} in epoch {epoch + 1} "
                                       f"(parts: {logs}); lower the learning rate or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        last_loss = total / max(1, count)
        if env.is_main and ckpt_path is not None:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"task": task.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                        "epoch": epoch + 1, "loss": last_loss}, tmp)
            tmp.replace(ckpt_path)
        barrier(env)
    return {"epochs": cfg.epochs, "start_epoch": start_epoch, "final_loss": last_loss, "resumed_from": resumed_from}


# ---------------------------------------------------------------------------------------------- inference


@torch.no_grad()
def predict_logits(model: nn.Module, recordings: Sequence[PreparedRecording], device: torch.device | str = "cpu",
                   amp: bool = True, call: Callable[[nn.Module, dict[str, Any]], Tensor] | None = None,
                   progress: bool = False, desc: str = "score") -> np.ndarray:
    """One logit per whole recording (batch 1, so no padding)."""
    from tqdm import tqdm

    device = torch.device(device)
    model.eval().to(device)
    out = []
    for rec in tqdm(recordings, desc=desc, disable=not progress, leave=False, unit="rec"):
        kp = torch.from_numpy(rec.keypoints)[None].to(device)
        fps = torch.tensor([rec.fps], dtype=torch.float32, device=device)
        grid_fps = model.preprocess.grid_fps if hasattr(model, "preprocess") else 15.0
        grid_len = int(math.ceil((kp.shape[1] - 1) * grid_fps / rec.fps)) + 1
        with autocast(device, amp):
            batch = {"keypoints": kp, "fps": fps, "grid_len": grid_len}
            logit = call(model, batch) if call is not None else model(kp, fps, grid_len=grid_len).logit
        out.append(float(logit.float().reshape(-1)[0]))
    return np.asarray(out, dtype=np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
