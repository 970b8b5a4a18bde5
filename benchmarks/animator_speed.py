"""InfantAnimator speed: the seed repository's configuration against this pipeline's fast path.

Full-size SVD-xt architecture with random weights (the speed of a network does
not depend on its weights), 576x1024, 25 Euler steps, CFG 3.0, 16-frame windows
overlapping by 4, a 40-frame clip, end to end (reference encoding, pose
encoding, denoising, VAE decoding), both configurations in one process on the
same weights and inputs.

    python benchmarks/animator_speed.py --mode probe     # per-UNet-call variants (GPU)
    python benchmarks/animator_speed.py --mode e2e       # the headline table (GPU)
    python benchmarks/animator_speed.py --mode layers    # GPU kernel time of one UNet call by kind
    python benchmarks/animator_speed.py --mode parts     # PoseNet and the VAE decoder on their own
    python benchmarks/animator_speed.py --mode scaling   # several workers on one GPU
    python benchmarks/animator_speed.py --mode warm --compile --tune ...  # fill inductor's cache for a tuned e2e
    python benchmarks/animator_speed.py --mode e2e --arch tiny --size 64x64 --frames 20 --steps 2  # CPU smoke

Seed configuration = fp16, two batch-1 UNet calls and one PoseNet call per window and step, PyTorch's
default attention, VAE decoded 4 frames per call. Writes
benchmarks/results/animator_<mode>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "animator"))

from server_animator.animator.conditioning import pose_frames, reference_image  # noqa: E402
from server_animator.animator.configs import build_components  # noqa: E402
from server_animator.animator.pipeline import InfantAnimatorPipeline, sliding_windows  # noqa: E402

SEED_CONFIG = dict(batched_cfg=False, windows_per_batch=1, decode_chunks_per_batch=1, sdpa_backends=None,
                   cache_pose=False)  # as released: PoseNet per window and step


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.processor() or 'x86_64'}, 1 torch thread)"


def recording(frames: int):
    from animator_testkit import moving_infant

    return moving_infant(frames, fps=30.0 if frames >= 30 else 10.0)


def unet_flops(pipe, frames: int, height: int, width: int) -> float:
    """FLOPs of one batch-1 UNet call on a ``frames``-frame window (counted by PyTorch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    dev, dtype = pipe.unet.device, pipe.unet.dtype
    h, w = height // 8, width // 8
    x = torch.randn(1, frames, 8, h, w, device=dev, dtype=dtype)
    ctx = torch.randn(1, 5, pipe.unet.config.cross_attention_dim, device=dev, dtype=dtype)
    ids = torch.tensor([[6.0, 127.0, 0.02]], device=dev, dtype=dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        pipe.unet(x, torch.tensor(10.0, device=dev), encoder_hidden_states=ctx, added_time_ids=ids, return_dict=False)
    return float(counter.get_total_flops())


def median_seconds(fn, reps: int = 5) -> float:
    """Median wall time of ``fn`` over ``reps`` synchronised calls, after one warm-up call."""
    fn(); sync()
    times = []
    for _ in range(reps):
        sync(); t0 = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t0)
    return statistics.median(times)


def unet_call_fn(pipe, batch: int, dtype, kernels, h: int, w: int):
    """A no-argument function: one UNet call on ``batch`` random 16-frame windows of ``h x w`` latents, with a
    pose residual, under the given SDPA kernels."""
    from server_animator.animator.pipeline import _sdpa_kernels

    unet, dev = pipe.unet, pipe.unet.device
    x = torch.randn(batch, 16, 8, h, w, device=dev, dtype=dtype)
    ctx = torch.randn(batch, 5, unet.config.cross_attention_dim, device=dev, dtype=dtype)
    ids = torch.tensor([[6.0, 127.0, 0.02]] * batch, device=dev, dtype=dtype)
    res = torch.randn(batch * 16, unet.config.block_out_channels[0], h, w, device=dev, dtype=dtype)

    def call():
        with torch.no_grad(), _sdpa_kernels(kernels), pipe.pose_injection.active(res):
            return unet(x, torch.tensor(10.0, device=dev), encoder_hidden_states=ctx, added_time_ids=ids,
                        return_dict=False)[0]
    return call


class StepClock:
    """Progress callback that synchronises and stamps the time after every denoising step."""

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, done: int, total: int) -> None:
        sync()
        self.stamps.append(time.perf_counter())


def run_clip(pipe, ref, poses, args, seed=0, **knobs) -> dict:
    clock = StepClock()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    frames = pipe(ref, poses, height=args.height, width=args.width, num_inference_steps=args.steps,
                  guidance_scale=3.0, window_size=16, window_overlap=4, decode_chunk_size=4,
                  generator=torch.Generator(pipe.unet.device).manual_seed(seed), callback=clock, **knobs).frames
    sync()
    t1 = time.perf_counter()
    steps = np.diff([t0, *clock.stamps])
    return {
        "frames": frames,
        "total_s": t1 - t0,
        "first_step_s": float(steps[0]),  # includes reference encoding
        "step_s_median": float(np.median(steps[1:])) if len(steps) > 1 else float(steps[0]),
        "denoise_s": clock.stamps[-1] - t0,
        "decode_s": t1 - clock.stamps[-1],
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    }


def deviation(a: np.ndarray, b: np.ndarray) -> dict:
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(d**2))
    return {"mean_abs": float(np.mean(np.abs(d))), "max_abs": float(np.max(np.abs(d))),
            "psnr_db": float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")}


def build(args, dtype):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = InfantAnimatorPipeline(**build_components(args.arch, seed=0, device=dev))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dev, dtype)


def summarize(name: str, r: dict, n_frames: int, n_windows: int, args, flops_per_call: float,
              guided_fraction: float = 1.0) -> dict:
    guided = round(guided_fraction * args.steps)
    unet_calls = n_windows * (2 * guided + (args.steps - guided))  # window-branch evaluations (batch-1 equivalents)
    denoise_only = r["denoise_s"] - r["first_step_s"] + r["step_s_median"]  # drop encoding from step 1
    return {
        "config": name,
        "seconds_total": round(r["total_s"], 3),
        "seconds_per_frame": round(r["total_s"] / n_frames, 4),
        "seconds_per_step": round(r["step_s_median"], 4),
        "seconds_per_window_step": round(r["step_s_median"] / n_windows, 4),
        "denoise_seconds": round(r["denoise_s"], 3),
        "decode_seconds": round(r["decode_s"], 3),
        "unet_tflops_per_s": round(flops_per_call * unet_calls / denoise_only / 1e12, 1),
        "peak_memory_gib": None if r["peak_gib"] is None else round(r["peak_gib"], 2),
    }


def fast_knobs(args) -> dict:
    return dict(batched_cfg=True, windows_per_batch=args.windows_per_batch, decode_chunks_per_batch=args.decode_batch,
                sdpa_backends=tuple(args.sdpa.split(",")) if args.sdpa else None)


def prepare_fast_path(pipe, ref, poses, args) -> tuple[list[str], float]:
    """Kernel swaps, then compilation (with inductor's coordinate-descent tuning under ``--tune``) by a 2-step run
    on the clip, or an uncompiled 1-step warm-up. Returns the swaps made and the seconds compiling took."""
    kernels = pipe.enable_fast_kernels() if args.fast_kernels else []
    if not args.compile:
        run_clip(pipe, ref, poses[:16], argparse.Namespace(**{**vars(args), "steps": 1}), **fast_knobs(args))
        return kernels, 0.0
    import torch._inductor.config as inductor_config

    inductor_config.coordinate_descent_tuning = args.tune
    pipe.compile(mode=args.compile_mode, vae=args.compile_vae)
    t0 = time.perf_counter()
    run_clip(pipe, ref, poses, argparse.Namespace(**{**vars(args), "steps": 2}), **fast_knobs(args))
    return kernels, time.perf_counter() - t0


def mode_warm(args) -> dict:
    """Compile the fast path into inductor's cache and time nothing. Coordinate-descent tuning (``--tune``)
    takes longer than one device call allows next to the seed run; a later ``--mode e2e --tune`` with the same
    ``TORCHINDUCTOR_CACHE_DIR`` then finds the tuned kernels. Its compile time is then a cached one."""
    poses = pose_frames(recording(args.frames), (args.width, args.height))
    pipe = build(args, torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    kernels, compile_s = prepare_fast_path(pipe, reference_image(size=(args.width, args.height)), poses, args)
    return {"warm": {"fast_kernels": kernels, "compile_seconds": round(compile_s, 1), "tuned": args.tune,
                     "cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR", "inductor's default")}}


def mode_e2e(args) -> dict:
    n = args.frames
    rec = recording(n)
    poses = pose_frames(rec, (args.width, args.height))
    ref = reference_image(size=(args.width, args.height))
    windows = sliding_windows(n, 16, 4)
    seed_dtype = torch.float16 if torch.cuda.is_available() else torch.float32
    fast_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    pipe = build(args, seed_dtype)
    flops = unet_flops(pipe, 16, args.height, args.width)
    results = {}
    # seed configuration: warm up (kernels, cuDNN plans), then time
    run_clip(pipe, ref, poses[:16], argparse.Namespace(**{**vars(args), "steps": 1}), **SEED_CONFIG)
    seed = run_clip(pipe, ref, poses, args, **SEED_CONFIG)
    results["seed"] = summarize("seed: fp16, 2 x batch-1 UNet calls, PoseNet per window and step, default SDPA, VAE 4 frames/call",
                                seed, n, len(windows), args, flops)
    print(json.dumps(results["seed"]), flush=True)
    # fast path, same weights in bf16
    pipe.to(dtype=fast_dtype)
    kernels, compile_s = prepare_fast_path(pipe, ref, poses, args)
    fast = run_clip(pipe, ref, poses, args, **fast_knobs(args))
    label = (f"fast: bf16, batched CFG, PoseNet once per frame, {args.windows_per_batch} window(s)/call, "
             f"SDPA {args.sdpa or 'default'}, "
             f"VAE {4 * args.decode_batch} frames/call" + (f", torch.compile({args.compile_mode})" if args.compile else "")
             + (", coordinate-descent tuned" if args.compile and args.tune else "")
             + (", VAE compiled" if args.compile and args.compile_vae else "") + "".join(f", {k}" for k in kernels))
    results["fast"] = summarize(label, fast, n, len(windows), args, flops)
    results["fast"]["compile_seconds"] = round(compile_s, 1)
    results["fast"]["speedup_vs_seed"] = round(seed["total_s"] / fast["total_s"], 2)
    results["fast"]["deviation_from_seed_output"] = deviation(fast["frames"], seed["frames"])
    print(json.dumps(results["fast"]), flush=True)
    if args.approx:
        try:
            approx = run_clip(pipe, ref, poses, args, cfg_fraction=0.5, **fast_knobs(args))
            results["approx_cfg_half"] = summarize(
                "approximate: fast path, guidance on the first half of the steps only",
                approx, n, len(windows), args, flops, guided_fraction=0.5)
            results["approx_cfg_half"]["speedup_vs_seed"] = round(seed["total_s"] / approx["total_s"], 2)
            results["approx_cfg_half"]["speedup_vs_fast"] = round(fast["total_s"] / approx["total_s"], 2)
            results["approx_cfg_half"]["deviation_from_fast_output"] = deviation(approx["frames"], fast["frames"])
        except Exception as e:  # keep the headline numbers
            results["approx_error"] = f"{type(e).__name__}: {str(e)[:300]}"
    # a 20-s, 30-fps recording (600 frames) from the measured parts: steps scale with the windows, decoding with frames
    long_windows = len(sliding_windows(600, 16, 4))
    for key in ("seed", "fast"):
        r = seed if key == "seed" else fast
        per_window_step = r["step_s_median"] / len(windows)
        encode = r["first_step_s"] - r["step_s_median"]
        estimate = encode + args.steps * long_windows * per_window_step + r["decode_s"] * 600 / n
        results[key]["recording_20s_30fps_seconds_estimated"] = round(estimate, 1)
    results["unet_tflop_per_batch1_window_call"] = round(flops / 1e12, 2)
    results["windows_in_clip"] = len(windows)
    return results


def mode_probe(args) -> dict:
    """Time single UNet calls (16 frames) and VAE decodes in several configurations."""
    h, w = args.height // 8, args.width // 8
    pipe = build(args, torch.float16)
    unet, dev = pipe.unet, pipe.unet.device
    flops = unet_flops(pipe, 16, args.height, args.width)
    out = {"unet_tflop_per_batch1_window_call": round(flops / 1e12, 2), "variants": []}

    def unet_call(batch, dtype, kernels=None, wpb=1):
        return unet_call_fn(pipe, batch * wpb, dtype, kernels, h, w)

    def record(name, seconds, evals):
        row = {"variant": name, "seconds_per_call": round(seconds, 4),
               "seconds_per_window_step": round(seconds / (evals / 2), 4),
               "tflops_per_s": round(flops * evals / seconds / 1e12, 1)}
        out["variants"].append(row)
        print(json.dumps(row), flush=True)

    s = median_seconds(unet_call(1, torch.float16))
    record("fp16 batch 1 (seed: x2 per window-step)", 2 * s, 2)
    pipe.to(dtype=torch.bfloat16)
    for kernels in (None, ("flash",), ("cudnn",), ("efficient",)):
        try:
            record(f"bf16 batched CFG, SDPA {kernels or 'default'}", median_seconds(unet_call(2, torch.bfloat16, kernels)), 2)
        except RuntimeError as e:
            print(f"SDPA {kernels}: {str(e)[:120]}", flush=True)
    fastest = ("cudnn", "flash", "efficient", "math")  # first that runs
    record("bf16 batched CFG x3 windows, SDPA cudnn", median_seconds(unet_call(2, torch.bfloat16, fastest, 3), reps=3), 6)
    # VAE: 4-frame chunks one per call vs several per call
    z = torch.randn(8, 4, h, w, device=dev)
    for dtype in (torch.float16, torch.bfloat16):
        pipe.vae.to(dtype)
        for per_call in (1, 2):
            sec = median_seconds(lambda: pipe.decode_latents(z, 4, per_call), reps=3)
            row = {"variant": f"VAE decode {dtype}, {4 * per_call} frames/call", "seconds_per_frame": round(sec / 8, 4)}
            out["variants"].append(row); print(json.dumps(row), flush=True)
    if args.compile:
        try:
            t0 = time.perf_counter()
            unet.compile(mode=args.compile_mode, fullgraph=False, dynamic=False)
            f = unet_call(2, torch.bfloat16, fastest)
            f(); sync()
            compile_s = time.perf_counter() - t0
            record(f"bf16 batched CFG, cudnn, torch.compile({args.compile_mode})", median_seconds(f), 2)
            out["variants"][-1]["compile_seconds"] = round(compile_s, 1)
        except Exception as e:  # report, keep the other numbers
            out["compile_error"] = f"{type(e).__name__}: {str(e)[:500]}"
            print(out["compile_error"], flush=True)
    return out


KERNEL_KINDS = {
    "geglu": ("geglu",),  # kernels.py's fused GEGLU GEMM
    "attention": ("sdpa", "fmha", "flash", "attention", "softmax"),  # before "conv": cuDNN SDPA says fprop
    "conv": ("conv", "implicit", "cudnn::", "xmma", "dgrad", "fprop"),
    "gemm": ("gemm", "cutlass", "nvjet", "aten::addmm", "aten::mm", "aten::bmm"),
    "norm": ("norm", "welford", "var_mean"),
    "copy/layout": ("copy", "transpose", "cat", "nchw", "nhwc"),
}


def kernel_kind(name: str) -> str:
    """The kind of GPU kernel (or, on the CPU, operator) a profiler name is."""
    low = name.lower()
    if low.startswith("triton_"):
        # inductor names a fused kernel after every op it fuses; a convolution or matmul there is the producer
        # whose output the kernel reads (e.g. triton_red_fused_convolution_native_group_norm), not its work
        for producer in ("convolution", "addmm", "_mm_", "_bmm_"):
            low = low.replace(producer, "_")
    return next((kind for kind, keys in KERNEL_KINDS.items() if any(key in low for key in keys)), "elementwise/other")


def kernel_table(fn, top: int = 25) -> dict:
    """CUDA kernel time of one call of ``fn`` by kernel and by kind (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()  # on the CPU (smoke runs) operators stand in for kernels
    fn(); sync()
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        fn(); sync()
    kernels = {e.key: (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1e3 for e in prof.key_averages()}
    kernels = {k: ms for k, ms in kernels.items() if ms > 0}
    total = sum(kernels.values())
    by_kind: dict[str, float] = {}
    for name, ms in kernels.items():
        kind = kernel_kind(name)
        by_kind[kind] = by_kind.get(kind, 0.0) + ms
    rows = sorted(kernels.items(), key=lambda kv: -kv[1])[:top]
    return {"total_ms": round(total, 2),
            "by_kind_ms": {k: round(v, 2) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "top_kernels": [{"kernel": n[:120], "ms": round(ms, 2), "share": round(ms / total, 3)} for n, ms in rows]}


def mode_layers(args) -> dict:
    """Where one bf16 batched-CFG UNet call (one window) spends its GPU time: eager, compiled, and compiled
    with cuDNN's convolution autotuning (``torch.backends.cudnn.benchmark``)."""
    pipe = build(args, torch.bfloat16)
    flops = unet_flops(pipe, 16, args.height, args.width)
    out: dict = {"unet_tflop_per_batch1_window_call": round(flops / 1e12, 2),
                 "fast_kernels": pipe.enable_fast_kernels() if args.fast_kernels else []}
    call = unet_call_fn(pipe, 2, torch.bfloat16, ("cudnn", "flash", "efficient", "math"),
                        args.height // 8, args.width // 8)

    def measure(name: str, reps: int = 5, **extra) -> None:
        sec = median_seconds(call, reps)
        out[name] = {"seconds_per_call": round(sec, 4), "tflops_per_s": round(2 * flops / sec / 1e12, 1),
                     **extra, **kernel_table(call)}
        print(name, json.dumps(out[name])[:1500], flush=True)

    if not args.skip_eager:
        measure("eager")
    if args.compile:
        import torch._inductor.config as inductor_config

        inductor_config.coordinate_descent_tuning = args.tune
        t0 = time.perf_counter()
        pipe.unet.compile(mode=args.compile_mode, fullgraph=False, dynamic=False)
        call(); sync()
        label = "compiled" + (" (coordinate-descent tuning)" if args.tune else "")
        measure(label, reps=3, compile_seconds=round(time.perf_counter() - t0, 1))
        torch.backends.cudnn.benchmark = True
        call(); sync()  # cuDNN times its convolution algorithms once per shape
        measure(label + " + cudnn.benchmark", reps=3)
    return out


def mode_parts(args) -> dict:
    """The parts around the UNet, bf16: PoseNet on one step's pose frames (3 windows), and one VAE decoder call
    (4 chunks of 4 frames), eager and compiled, with the decoder's GPU time by kernel kind."""
    pipe = build(args, torch.bfloat16)
    out: dict = {"fast_kernels": pipe.enable_fast_kernels() if args.fast_kernels else []}
    dev = pipe.unet.device
    pose = torch.randint(0, 255, (48, args.height, args.width, 3), dtype=torch.uint8, device=dev)
    with torch.no_grad():
        out["posenet_48_frames_s"] = round(median_seconds(lambda: pipe.pose_net(pipe._pose_to_model(pose))), 4)
        z = torch.randn(16, 4, args.height // 8, args.width // 8, device=dev, dtype=torch.bfloat16)

        def decode():
            return pipe.vae.decode(z, num_frames=4).sample

        from server_animator.animator.pipeline import _sdpa_kernels

        with _sdpa_kernels(("cudnn", "flash", "efficient", "math")):
            for label in ("vae_eager", "vae_compiled"):
                if label == "vae_compiled":
                    t0 = time.perf_counter()
                    pipe.vae.decoder.compile(mode=args.compile_mode, fullgraph=False, dynamic=False)
                    decode(); sync()
                    out["vae_compile_s"] = round(time.perf_counter() - t0, 1)
                sec = median_seconds(decode, 3)
                out[label] = {"seconds_per_16_frames": round(sec, 4), **kernel_table(decode)}
                print(label, json.dumps(out[label])[:1500], flush=True)
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, dict)}), flush=True)
    return out


def _scaling_worker(queue, args_dict, clips, gpu):
    args = argparse.Namespace(**args_dict)
    torch.cuda.set_device(gpu)  # "cuda" below means this worker's GPU
    torch.manual_seed(0)
    pipe = build(args, torch.bfloat16)
    poses = pose_frames(recording(16), (args.width, args.height))
    ref = reference_image(size=(args.width, args.height))
    run_clip(pipe, ref, poses, argparse.Namespace(**{**args_dict, "steps": 1}), batched_cfg=True)  # warm-up
    queue.put(("ready", time.time()))
    start = _wait_for_go()
    done = 0
    for _ in range(clips):
        run_clip(pipe, ref, poses, args, batched_cfg=True, decode_chunks_per_batch=2,
                 sdpa_backends=("cudnn", "flash", "efficient", "math"))
        done += 16
    queue.put(("done", time.time() - start, done))


def _wait_for_go() -> float:  # all workers start timing together once every one is loaded
    while not os.path.exists("/tmp/animator_scaling_go"):
        time.sleep(0.05)
    return time.time()


def mode_scaling(args) -> dict:
    """Throughput (frames/s) of worker processes, 16-frame clips, eager bf16: 1 and 2 workers sharing
    one GPU, then one worker per GPU on every GPU of the machine (when it has several)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    gpus = torch.cuda.device_count()
    out = {"gpus": gpus, "rows": []}
    layouts = [[0], [0, 0]] + ([list(range(gpus))] if gpus > 1 else [])
    for layout in layouts:
        if os.path.exists("/tmp/animator_scaling_go"):
            os.remove("/tmp/animator_scaling_go")
        q = ctx.Queue()
        procs = [ctx.Process(target=_scaling_worker, args=(q, vars(args), args.clips, gpu)) for gpu in layout]
        for p in procs:
            p.start()
        for _ in procs:
            q.get()  # ready
        Path("/tmp/animator_scaling_go").touch()
        results = [q.get() for _ in procs]
        for p in procs:
            p.join()
        wall = max(r[1] for r in results)
        frames = sum(r[2] for r in results)
        row = {"workers": len(layout), "gpus_used": len(set(layout)), "frames": frames, "seconds": round(wall, 2),
               "frames_per_second": round(frames / wall, 3)}
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    base = out["rows"][0]["frames_per_second"]
    for row in out["rows"]:
        row["scaling_vs_one_worker"] = round(row["frames_per_second"] / base, 2)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("e2e", "probe", "layers", "parts", "scaling", "warm"), default="e2e")
    p.add_argument("--arch", choices=("svd-xt", "tiny"), default="svd-xt")
    p.add_argument("--size", default="576x1024")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--windows-per-batch", type=int, default=1)
    p.add_argument("--decode-batch", type=int, default=2, help="4-frame VAE chunks per call on the fast path")
    p.add_argument("--sdpa", default="cudnn,flash,efficient,math",
                   help="SDPA kernels for the fast path, first that fits ('' = PyTorch's default order)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--compile-mode", default=None)
    p.add_argument("--compile-vae", action="store_true")
    p.add_argument("--tune", action="store_true", help="with --compile: inductor coordinate-descent tuning")
    p.add_argument("--skip-eager", action="store_true", help="--mode layers: compiled variants only")
    p.add_argument("--approx", action="store_true", help="also time guidance on half of the steps")
    p.add_argument("--fast-kernels", action="store_true",
                   help="fast path with the exact kernel swaps of server_animator/animator/kernels.py")
    p.add_argument("--clips", type=int, default=2, help="clips per worker in --mode scaling")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    args.width, args.height = (int(v) for v in args.size.split("x"))
    diffusers_logging.set_verbosity_error()  # dtype-cast notices would bury the table
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
        print("no CUDA: CPU run with 1 torch thread (a smoke test of the script, not a GPU figure)")
    result = {"mode": args.mode, "device": device_name(), "torch": torch.__version__, "arch": args.arch,
              "size": args.size, "frames": args.frames, "steps": args.steps, "guidance": 3.0,
              "window": 16, "overlap": 4, "weights": "random (speed does not depend on weights)",
              **{"probe": mode_probe, "e2e": mode_e2e, "layers": mode_layers, "parts": mode_parts,
                 "scaling": mode_scaling, "warm": mode_warm}[args.mode](args)}
    out = args.out or ROOT / "benchmarks" / "results" / f"animator_{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\n{result['device']} — {args.arch} {args.size}, {args.frames} frames, {args.steps} steps")
    rows = result.get("variants") or result.get("rows") or [v for v in result.values() if isinstance(v, dict)]
    for row in rows:
        print("  " + " | ".join(f"{k}={v}" for k, v in row.items() if not isinstance(v, dict)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
