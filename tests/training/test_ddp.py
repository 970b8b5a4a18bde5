"""Several processes with torchrun: DistributedDataParallel + DistributedSampler (gloo on CPU, NCCL on a GPU)."""

import json
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

DRIVER = textwrap.dedent('''
    import json, sys
    import torch, torch.distributed as dist
    torch.set_num_threads(1)
    from training.colearning import SupervisedTask
    from training.config import TrainConfig
    from training.data import load_dataset
    from training.engine import CropDataset, prepare, setup_distributed, train
    from training.models import build_model

    device, out = sys.argv[1], sys.argv[2]
    env = setup_distributed(device)
    recs = prepare(load_dataset({"kind": "synthetic", "n_infants": 4, "seed": 2, "seconds": [13.0, 15.0],
                                 "prevalence": 0.5}))
    torch.manual_seed(0)
    task = SupervisedTask(build_model("teacher_tiny"))
    seen = []
    class Spy(CropDataset):
        def __getitem__(self, i):
            seen.append([self.epoch, i])
            return super().__getitem__(i)
    spy = Spy(recs, crop_seconds=12.0, seed=0)
    summary = train(task, spy, TrainConfig(epochs=2, batch_size=4, progress=False, device=device), seed=0, env=env,
                    checkpoint_dir=out + "/ck")
    flat = torch.cat([p.detach().flatten().float().cpu() for p in task.parameters()])
    gathered = [None] * env.world_size
    dist.all_gather_object(gathered, {"rank": env.rank, "checksum": float(flat.double().sum()),
                                      "first": flat[:5].tolist(), "seen": seen,
                                      "device": str(env.device), "loss": summary["final_loss"]})
    if env.is_main:
        json.dump({"ranks": gathered, "n": len(recs), "world": env.world_size}, open(out + "/ddp.json", "w"))
    dist.destroy_process_group()
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path, nproc: int, device: str) -> dict:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(script), device, str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "ddp.json").read_text())


def test_two_cpu_processes_train_one_model(tmp_path):
    result = _torchrun(tmp_path, 2, "cpu")
    assert result["world"] == 2
    a, b = result["ranks"]
    assert a["first"] == b["first"] and a["checksum"] == b["checksum"]  # gradients were averaged: same weights
    n = result["n"]
    for epoch in (0, 1):  # each rank saw its own shard of every epoch; together (nearly) all recordings
        sa = {i for e, i in a["seen"] if e == epoch}
        sb = {i for e, i in b["seen"] if e == epoch}
        assert len(sa & sb) <= n % 2  # DistributedSampler pads an odd count with one repeat
        assert len(sa | sb) >= n - 2  # batch 4 = 2 per rank: each rank may drop one incomplete batch
    assert (tmp_path / "ck" / "last.pt").is_file()  # written once, by rank 0


@pytest.mark.gpu
def test_torchrun_on_gpu_with_nccl(tmp_path):
    n = torch.cuda.device_count()
    result = _torchrun(tmp_path, n, "cuda")
    assert all(r["device"].startswith("cuda") for r in result["ranks"])
    assert len({r["checksum"] for r in result["ranks"]}) == 1


@pytest.mark.gpu
def test_bf16_autocast_training_step_on_gpu():
    from training.colearning import SupervisedTask
    from training.engine import autocast
    from training.models import build_model

    task = SupervisedTask(build_model("teacher_small")).cuda()
    kp = torch.rand(4, 450, 20, 3, device="cuda")
    kp[..., 2] = 1.0
    batch = {"keypoints": kp, "fps": torch.full((4,), 30.0, device="cuda"), "lengths": torch.full((4,), 450, device="cuda"),
             "grid_len": 225, "label": torch.tensor([0.0, 1.0, 0.0, 1.0], device="cuda")}
    with autocast(torch.device("cuda"), True):
        out = task.model(kp, batch["fps"], batch["lengths"], 225)
        loss, _ = task(batch)
    assert out.window_logits.dtype == torch.bfloat16  # the network ran in bf16
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in task.parameters() if p.grad is not None)


@pytest.mark.gpu
def test_student_bf16_training_step_and_folded_eval_on_gpu():
    from training.engine import autocast
    from training.models import build_model

    student = build_model("student_demo").cuda()
    kp = torch.rand(4, 900, 20, 3, device="cuda")
    kp[..., 2] = 1.0
    fps, lengths = torch.full((4,), 30.0, device="cuda"), torch.tensor([900, 900, 800, 900], device="cuda")
    with autocast(torch.device("cuda"), True):
        out = student.score_infant20(kp, fps, lengths)
        loss = out.logit.float().square().mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)
    # eval mode folds the stem: a batch gives each recording its own score (as alone), in bf16 as in fp32
    student.eval()
    with torch.no_grad():
        alone = student.score_infant20(kp[2:3], fps[2:3], lengths[2:3], student.grid_length(900)).logit
        batched = student.score_infant20(kp, fps, lengths).logit
        with autocast(torch.device("cuda"), True):
            half = student.score_infant20(kp, fps, lengths).logit.float()
    torch.testing.assert_close(batched[2:3], alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(half, batched, atol=0.05, rtol=0.05)
