"""The sampler on tiny random models (64x64, 2 steps, 20 frames = 2 windows of 16 overlapping by 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server_animator.animator.pipeline import sliding_windows, window_weights

RUN = dict(height=64, width=64, num_inference_steps=2)


def _run(pipe, ref, pose, seed=0, **kw):
    return pipe(ref, pose, generator=torch.Generator().manual_seed(seed), **{**RUN, **kw}).frames


def test_windows_anchor_frame_zero_and_cover_every_frame():
    assert sliding_windows(20, 16, 4) == [list(range(16)), [0, *range(5, 20)]]
    w40 = sliding_windows(40, 16, 4)  # the benchmark clip: stride 12
    assert w40 == [[0, *range(1, 16)], [0, *range(13, 28)], [0, *range(25, 40)]]
    for n in (1, 7, 16, 17, 29, 600):
        windows = sliding_windows(n, 16, 4)
        assert all(w[0] == 0 and len(w) == min(n, 16) for w in windows)
        assert sorted({i for w in windows for i in w}) == list(range(n))
    with pytest.raises(ValueError):
        sliding_windows(20, 16, 15)


def test_window_weights_are_triangular_and_symmetric():
    w = window_weights(16)
    assert torch.allclose(w, w.flip(0))
    assert w[0] == pytest.approx(1 / 16) and w[7] == pytest.approx(15 / 16)
    assert (w > 0).all() and (w <= 1).all()


def test_output_shape_dtype_and_determinism(tiny_pipe, reference_64, pose_64):
    a = _run(tiny_pipe, reference_64, pose_64, seed=3)
    b = _run(tiny_pipe, reference_64, pose_64, seed=3)
    c = _run(tiny_pipe, reference_64, pose_64, seed=4)
    assert a.shape == (20, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batched_cfg_equals_two_separate_calls(tiny_pipe, reference_64, pose_64):
    batched = _run(tiny_pipe, reference_64, pose_64, output_type="latent", batched_cfg=True)
    separate = _run(tiny_pipe, reference_64, pose_64, output_type="latent", batched_cfg=False)
    several = _run(tiny_pipe, reference_64, pose_64, output_type="latent", batched_cfg=True, windows_per_batch=2)
    # Same math, different GEMM batch sizes: float32 rounding at sigma_max = 700 leaves ~1e-4 (latents ~2).
    assert torch.allclose(batched, separate, atol=1e-3, rtol=0)
    assert torch.allclose(batched, several, atol=1e-3, rtol=0)


def test_pose_encoded_once_per_frame_equals_per_window_and_step(tiny_pipe, reference_64, pose_64):
    calls = []
    hook = tiny_pipe.pose_net.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    try:
        per_step = _run(tiny_pipe, reference_64, pose_64, output_type="latent", cache_pose=False)
        per_step_calls, calls[:] = list(calls), []
        cached = _run(tiny_pipe, reference_64, pose_64, output_type="latent", cache_pose=True)
    finally:
        hook.remove()
    windows = sliding_windows(len(pose_64), 16, 4)
    assert len(per_step_calls) == RUN["num_inference_steps"] * len(windows)  # as released: every window, every step
    assert sum(calls) == len(pose_64)  # each frame once
    assert (cached - per_step).abs().max() < 1e-5


def test_pose_features_not_cached_when_they_would_not_fit(tiny_pipe, monkeypatch):
    import server_animator.animator.pipeline as pipeline

    asked = []
    monkeypatch.setattr(pipeline, "_fits_on_device", lambda nbytes, device: asked.append(nbytes) or False)
    calls = []
    hook = tiny_pipe.pose_net.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    try:
        features = tiny_pipe.pose_encoder(torch.zeros(20, 64, 64, 3, dtype=torch.uint8), cache=True)
        assert calls == []  # nothing encoded up front
        assert features(torch.tensor([0, 3])).shape == (2, 32, 8, 8) and calls == [2]
    finally:
        hook.remove()
    assert asked == [20 * 32 * 8 * 8 * 4]  # 32 channels at 1/8 resolution, float32 on the CPU


def test_pose_and_guidance_change_the_result(tiny_pipe, reference_64, pose_64):
    base = _run(tiny_pipe, reference_64, pose_64, output_type="latent")
    other_pose = _run(tiny_pipe, reference_64, np.ascontiguousarray(pose_64[:, ::-1]), output_type="latent")
    no_cfg = _run(tiny_pipe, reference_64, pose_64, output_type="latent", guidance_scale=1.0)
    assert (base - other_pose).abs().max() > 0.1
    assert (base - no_cfg).abs().max() > 0.1


def test_window_blending_weighted_mean_of_overlapping_windows(tiny_pipe, reference_64, pose_64, monkeypatch):
    """Each window predicts a constant (its number); overlap frames must get the weighted mean."""
    windows = sliding_windows(20, 16, 4)
    calls = []

    def fake_unet(sample, t, context, added_time_ids, pose_residual):
        k = len(calls)
        calls.append(sample.shape)
        return torch.full((sample.shape[0], sample.shape[1], 4, *sample.shape[3:]), float(k + 1))

    monkeypatch.setattr(tiny_pipe, "_unet", fake_unet)
    x = torch.zeros(1, 20, 4, 8, 8)
    context = torch.zeros(2, 5, 64)
    uncond, cond = tiny_pipe.predict_noise(
        x, torch.tensor(1.0), windows, window_weights(16), context, torch.zeros(1, 4, 8, 8),
        tiny_pipe.pose_encoder(torch.zeros(20, 64, 64, 3, dtype=torch.uint8), cache=False), torch.zeros(1, 3),
        False, True, 1,
    )
    assert uncond is None and len(calls) == 2  # unguided: one call per window
    w = window_weights(16)
    values = cond[0, :, 0, 0, 0]
    assert values[1:5].allclose(torch.ones(4)) and values[16:].allclose(torch.full((4,), 2.0))
    # frame 5 is position 5 of window 1 and position 1 of window 2
    assert values[5].item() == pytest.approx(((w[5] * 1 + w[1] * 2) / (w[5] + w[1])).item(), rel=1e-6)
    # frame 0 is the anchor of both windows
    assert values[0].item() == pytest.approx(1.5, rel=1e-6)


def test_decoding_chunks_in_one_call_equals_one_by_one(tiny_pipe):
    latents = torch.randn(10, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    one_by_one = tiny_pipe.decode_latents(latents, chunk_size=4, chunks_per_batch=1)
    together = tiny_pipe.decode_latents(latents, chunk_size=4, chunks_per_batch=4)
    assert one_by_one.shape == (10, 64, 64, 3) and one_by_one.dtype == torch.uint8
    assert (one_by_one.int() - together.int()).abs().max() <= 1


def test_bad_inputs_are_refused_clearly(tiny_pipe, reference_64, pose_64):
    with pytest.raises(ValueError, match="pose_frames must be uint8"):
        tiny_pipe(reference_64, pose_64.astype(np.float32), **RUN)
    with pytest.raises(ValueError, match=r"\[T, 64, 64, 3\]"):
        tiny_pipe(reference_64, pose_64[:, :32], **RUN)
    with pytest.raises(ValueError, match="multiples of 64"):
        tiny_pipe(reference_64, pose_64, height=60, width=64, num_inference_steps=2)
    with pytest.raises(TypeError, match="PIL image"):
        tiny_pipe(np.zeros((64, 64, 3)), pose_64, **RUN)
