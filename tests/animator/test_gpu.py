"""GPU checks (``make test-gpu``): the full-size SVD-xt architecture with random weights on CUDA."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def svd_unet():
    from server_animator.animator.configs import build_components

    parts = build_components("svd-xt", seed=0, device="cuda")
    return parts["unet"], parts["pose_net"]


def _inputs(frames=16, h=72, w=128, seed=0):
    g = torch.Generator("cuda").manual_seed(seed)
    x = torch.randn(2, frames, 8, h, w, device="cuda", generator=g)
    x[0, :, 4:] = 0  # unconditional: no image latents
    ctx = torch.randn(2, 5, 1024, device="cuda", generator=g)
    ctx[0] = 0
    ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device="cuda")
    pose = torch.randn(frames, 320, h, w, device="cuda", generator=g)
    return x, ctx, ids, pose


def _call(unet, injection, x, ctx, ids, residual, dtype):
    with injection.active(None if residual is None else residual.to(dtype)):
        return unet(x.to(dtype), torch.tensor(10.0, device="cuda"), encoder_hidden_states=ctx.to(dtype),
                    added_time_ids=ids.to(dtype), return_dict=False)[0].float()


def _relative_error(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    """Mean |a - b| over the mean magnitude of ``scale`` (``b`` when not given, the fp32 reference)."""
    return ((a - b).abs().mean() / (b if scale is None else scale).abs().mean()).item()


@torch.no_grad()
def test_batched_cfg_matches_separate_calls_and_fp32(svd_unet):
    from server_animator.animator.models import PoseInjection

    unet, _ = svd_unet
    injection = PoseInjection(unet)
    x, ctx, ids, pose = _inputs()
    reference = torch.cat([_call(unet.float(), injection, x[:1], ctx[:1], ids[:1], None, torch.float32),
                           _call(unet, injection, x[1:], ctx[1:], ids[1:], pose, torch.float32)])
    unet.to(torch.bfloat16)
    residual = torch.cat([torch.zeros_like(pose), pose])
    batched = _call(unet, injection, x, ctx, ids, residual, torch.bfloat16)
    separate = torch.cat([_call(unet, injection, x[:1], ctx[:1], ids[:1], None, torch.bfloat16),
                          _call(unet, injection, x[1:], ctx[1:], ids[1:], pose, torch.bfloat16)])
    injection.remove()
    batched_err, separate_err = _relative_error(batched, reference), _relative_error(separate, reference)
    print(f"relative mean error vs fp32: batched bf16 {batched_err:.2e}, separate bf16 {separate_err:.2e}; "
          f"batched vs separate {_relative_error(batched, separate, reference):.2e}")
    # batching both guidance branches is exact up to bf16 rounding: no less accurate than two separate calls
    # (seen on an H100: 1.5e-2 vs fp32 for separate calls, 1.25e-2 between batched and separate)
    assert batched_err < 1.25 * separate_err + 1e-3
    assert separate_err < 0.05


@torch.no_grad()
def test_tiny_pipeline_on_cuda_is_deterministic():
    import numpy as np

    from server_animator.animator.conditioning import pose_frames, reference_image
    from server_animator.animator.configs import build_components
    from server_animator.animator.pipeline import InfantAnimatorPipeline

    from animator_testkit import moving_infant

    pipe = InfantAnimatorPipeline(**build_components("tiny", device="cuda")).to("cuda", torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    ref, pose = reference_image(size=(64, 64)), pose_frames(moving_infant(20, fps=10.0), (64, 64))

    def run(seed):
        return pipe(ref, pose, height=64, width=64, num_inference_steps=2,
                    generator=torch.Generator("cuda").manual_seed(seed), sdpa_backends=("cudnn", "flash", "efficient")).frames

    a, b = run(1), run(1)
    assert a.shape == (20, 64, 64, 3) and np.array_equal(a, b)


def _assert_close_as_bf16_sdpa(kernel, q, k, v, heads: int, label: str) -> None:
    """``kernel(q, k, v, heads)`` on ``[N, L, heads x head_dim]`` bf16 tensors is as close to fp32 SDPA as PyTorch's
    own bf16 SDPA, eager and inside ``torch.compile``."""
    import torch.nn.functional as F

    heads_first = [t.unflatten(-1, (heads, -1)).transpose(1, 2).float() for t in (q, k, v)]
    exact = F.scaled_dot_product_attention(*heads_first).transpose(1, 2).flatten(2)
    got = kernel(q, k, v, heads).float()
    compiled = torch.compile(kernel, fullgraph=True, dynamic=False)(q, k, v, heads).float()
    sdpa_bf16 = F.scaled_dot_product_attention(*(t.to(torch.bfloat16) for t in heads_first)).transpose(1, 2).flatten(2)
    err, sdpa_err = (got - exact).abs().max().item(), (sdpa_bf16.float() - exact).abs().max().item()
    print(f"{label}: kernel max err {err:.2e}, bf16 SDPA {sdpa_err:.2e}")
    assert err <= 2 * sdpa_err + 1e-3  # as close to fp32 as PyTorch's own bf16 kernels
    assert (compiled - exact).abs().max().item() <= 2 * sdpa_err + 1e-3  # the same inside torch.compile


@pytest.mark.parametrize("length,heads,head_dim", [(16, 5, 64), (12, 10, 64), (40, 20, 64), (16, 2, 128)])
def test_short_attention_kernel_matches_sdpa(length, heads, head_dim):
    from server_animator.animator.kernels import short_attention, short_attention_fits

    g = torch.Generator("cuda").manual_seed(length)
    q, k, v = (torch.randn(300, length, heads * head_dim, device="cuda", generator=g, dtype=torch.bfloat16)
               for _ in range(3))
    assert short_attention_fits(q, heads)
    _assert_close_as_bf16_sdpa(short_attention, q, k, v, heads, f"L={length} heads={heads}")


def _stock_geglu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """diffusers' GEGLU: projection, then ``value * gelu(gate)``."""
    import torch.nn.functional as F

    value, gate = F.linear(x, w, b).chunk(2, dim=-1)
    return value * F.gelu(gate)


def _use_geglu_path(path: str, monkeypatch) -> None:
    """Run :func:`geglu` on the TMA-fed kernel (Hopper and newer) or force the pointer-fed one (older GPUs)."""
    from server_animator.animator import kernels

    if path == "pointer":
        monkeypatch.setattr(kernels, "geglu_uses_tma", lambda hidden_states, weight: False)
    elif torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("the TMA-fed kernel needs a Hopper or newer GPU")
    torch._dynamo.reset()  # each path compiles anew, not from the other's cache


@pytest.mark.parametrize("path", ["tma", "pointer"])
@pytest.mark.parametrize("tokens,channels,inner", [(4096, 320, 1280), (1000, 640, 2560), (77, 1280, 5120),
                                                  (300, 48, 40)])
def test_fused_geglu_matches_the_stock_feed_forward(tokens, channels, inner, path, monkeypatch):
    from server_animator.animator.kernels import geglu, geglu_fits

    _use_geglu_path(path, monkeypatch)
    g = torch.Generator("cuda").manual_seed(tokens)
    x = torch.randn(2, tokens, channels, device="cuda", generator=g)
    w = torch.randn(2 * inner, channels, device="cuda", generator=g) / channels**0.5
    b = torch.randn(2 * inner, device="cuda", generator=g) * 0.1
    exact = _stock_geglu(x, w, b)
    xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
    assert geglu_fits(xb, wb)
    got = geglu(xb, wb, bb).float()
    compiled = torch.compile(geglu, fullgraph=True, dynamic=False)(xb, wb, bb).float()
    # the stock path on the same bf16 inputs: bf16 GEMM output, then the gate
    stock_err = (_stock_geglu(xb, wb, bb).float() - exact).abs().max().item()
    # the part of the error that comes from rounding the inputs to bf16, not from the kernel
    input_err = (_stock_geglu(xb.float(), wb.float(), bb.float()) - exact).abs().max().item()
    err = (got - exact).abs().max().item()
    print(f"{tokens}x{channels}->{inner}: fused max err {err:.2e}, stock bf16 {stock_err:.2e}, inputs {input_err:.2e}")
    assert got.shape == (2, tokens, inner)
    assert err <= stock_err + 1e-3  # one rounding instead of two: at least as close to fp32 as the stock path
    assert (compiled - exact).abs().max().item() <= stock_err + 1e-3  # the same inside torch.compile


@pytest.mark.parametrize("path", ["tma", "pointer"])
def test_fused_geglu_takes_padded_rows_and_offset_weights(path, monkeypatch):
    """Views the kernels cannot read as they are (rows padded, a weight slice starting mid-buffer) are copied,
    not read with the wrong stride or from a misaligned address."""
    from server_animator.animator.kernels import geglu

    _use_geglu_path(path, monkeypatch)
    g = torch.Generator("cuda").manual_seed(1)
    x = torch.randn(500, 320 + 8, device="cuda", generator=g, dtype=torch.bfloat16)[:, :320]  # row stride 328
    w = (torch.randn(2560, 320 + 3, device="cuda", generator=g) / 320**0.5).bfloat16()[:, 3:]  # offset by 3
    b = torch.randn(2560, device="cuda", generator=g, dtype=torch.bfloat16) * 0.1
    exact = _stock_geglu(x.float(), w.float(), b.float())
    stock_err = (_stock_geglu(x, w, b).float() - exact).abs().max().item()
    err = (geglu(x, w, b).float() - exact).abs().max().item()
    assert err <= stock_err + 1e-3, (err, stock_err)  # a wrong stride or offset gives errors of order 1


@pytest.mark.parametrize("queries,keys,heads,head_dim", [(9216, 4, 5, 64), (2304, 4, 10, 64), (100, 16, 2, 128),
                                                          (77, 3, 4, 32)])
def test_few_key_attention_kernel_matches_sdpa(queries, keys, heads, head_dim):
    from server_animator.animator.kernels import few_key_attention, few_key_attention_fits

    g = torch.Generator("cuda").manual_seed(queries)
    q = torch.randn(6, queries, heads * head_dim, device="cuda", generator=g, dtype=torch.bfloat16)
    k, v = (torch.randn(6, keys, heads * head_dim, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(2))
    assert few_key_attention_fits(q, k, heads)
    _assert_close_as_bf16_sdpa(few_key_attention, q, k, v, heads, f"{queries} queries x {keys} keys, {heads} heads")


def _unfuse_geglu(model):
    from diffusers.models.activations import GEGLU

    from server_animator.animator.kernels import FusedGEGLU, _children_of_type

    for parent, name, child in _children_of_type(model, FusedGEGLU):
        stock = GEGLU(1, 1)
        stock.proj = child.proj
        setattr(parent, name, stock)


@torch.no_grad()
def test_fast_kernels_keep_the_unet_output(svd_unet):
    from server_animator.animator.attention import ShortSelfAttnProcessor, install_infant_animator_processors
    from server_animator.animator.attention import use_few_key_attention, use_short_self_attention
    from server_animator.animator.kernels import channels_last_temporal_convs, fuse_geglu
    from server_animator.animator.models import PoseInjection

    unet, _ = svd_unet
    injection = PoseInjection(unet)
    x, ctx, ids, pose = _inputs(h=36, w=64)
    residual = torch.cat([torch.zeros_like(pose), pose])
    reference = _call(unet.float(), injection, x, ctx, ids, residual, torch.float32)
    stock = _call(unet.to(torch.bfloat16), injection, x, ctx, ids, residual, torch.bfloat16)
    assert use_short_self_attention(unet) > 0
    hooks = channels_last_temporal_convs(unet)
    assert fuse_geglu(unet) == 48  # 16 transformers x (spatial ff, temporal ff_in and ff)
    assert use_few_key_attention(unet) == 16
    fast = _call(unet, injection, x, ctx, ids, residual, torch.bfloat16)
    use_few_key_attention(unet, False)
    for h in hooks:
        h.remove()
    _unfuse_geglu(unet)
    assert any(isinstance(p, ShortSelfAttnProcessor) for p in unet.attn_processors.values())
    install_infant_animator_processors(unet)  # back to the stock processors for the other tests
    injection.remove()
    fast_err, stock_err = _relative_error(fast, reference), _relative_error(stock, reference)
    print(f"relative mean error vs fp32: fast kernels bf16 {fast_err:.2e}, stock bf16 {stock_err:.2e}; "
          f"fast vs stock {_relative_error(fast, stock, reference):.2e}")
    assert fast_err < 1.1 * stock_err + 1e-3  # exact: only bf16 rounding, no less accurate than the stock kernels


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs (a worker set to cuda:1)")
def test_triton_kernels_run_on_the_device_of_their_inputs():
    from server_animator.animator.kernels import few_key_attention, geglu, short_attention

    g = torch.Generator("cpu").manual_seed(0)
    q, k, v = (torch.randn(*shape, generator=g).bfloat16() for shape in [(4, 300, 128), (4, 16, 128), (4, 16, 128)])
    x, w, b = torch.randn(300, 320, generator=g).bfloat16(), torch.randn(2560, 320, generator=g).bfloat16(), \
        torch.randn(2560, generator=g).bfloat16()
    calls = {"short attention": lambda d: short_attention(k.to(d), k.to(d), v.to(d), 2),
             "few-key attention": lambda d: few_key_attention(q.to(d), k.to(d), v.to(d), 2),
             "geglu": lambda d: geglu(x.to(d), w.to(d), b.to(d))}
    torch.cuda.set_device(0)
    for name, call in calls.items():
        on_second = call("cuda:1")
        assert on_second.device == torch.device("cuda:1"), name
        torch.testing.assert_close(on_second.cpu(), call("cuda:0").cpu(), msg=name)  # the same as on the current GPU
