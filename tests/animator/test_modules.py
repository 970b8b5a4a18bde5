"""PoseNet, the face-ID encoder, the attention processors and the pose injection on a stock UNet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from server_animator.animator.attention import (
    FaceFreeTemporalAttnProcessor,
    IDCrossAttnProcessor,
    multi_head_attention,
)
from server_animator.animator.configs import build_components
from server_animator.animator.models import FaceIDEncoder, PoseInjection, PoseNet


def test_posenet_downsamples_8x_to_unet_width():
    net = PoseNet(latent_channels=320)
    out = net(torch.rand(2, 3, 64, 96) * 2 - 1)
    assert out.shape == (2, 320, 8, 12)
    assert net.downsampling == 8
    # released key layout: 8 convs in conv_layers (SiLU between), final_proj, scale
    keys = set(net.state_dict())
    assert {f"conv_layers.{i}.weight" for i in range(0, 16, 2)} <= keys
    assert {"final_proj.weight", "final_proj.bias", "scale"} <= keys
    assert net.state_dict()["conv_layers.2.weight"].shape == (16, 3, 4, 4)
    assert net.state_dict()["conv_layers.14.weight"].shape == (128, 64, 3, 3)


def test_face_encoder_gives_four_tokens_in_released_layout():
    enc = FaceIDEncoder()
    tokens = enc(torch.randn(1, 512), torch.randn(1, 1, 1024))
    assert tokens.shape == (1, 4, 1024)
    keys = set(enc.state_dict())
    assert {"proj.0.weight", "proj.2.weight", "norm.weight", "fusion_model.proj_in.weight",
            "fusion_model.layers.3.0.to_kv.weight", "fusion_model.layers.3.1.3.weight"} <= keys
    assert enc.state_dict()["fusion_model.layers.0.0.to_q.weight"].shape == (1024, 1024)


def _naive_attention(q, k, v, heads):
    """Reference multi-head attention written out (softmax(q k^T / sqrt(d)) v)."""
    b, n, c = q.shape
    d = c // heads
    q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2) for t in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
    return (w @ v).transpose(1, 2).reshape(b, n, c)


def test_multi_head_attention_matches_naive_and_one_key_shortcut_is_exact():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 10, 32), torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    assert torch.allclose(multi_head_attention(q, k, v, 4), _naive_attention(q, k, v, 4), atol=1e-5)
    k1, v1 = k[:, :1], v[:, :1]
    sdpa = F.scaled_dot_product_attention(*(t.reshape(2, -1, 4, 8).transpose(1, 2) for t in (q, k1, v1)))
    assert torch.equal(multi_head_attention(q, k1, v1, 4), sdpa.transpose(1, 2).reshape(2, 10, 32))


def test_token_channel_statistics_equal_std_mean_also_for_a_broadcast_value():
    from server_animator.animator.attention import token_channel_std_mean

    torch.manual_seed(0)
    x = torch.randn(3, 50, 16) * 2 + 7
    row = torch.randn(3, 1, 16) + 1
    for t in (x, row.expand(-1, 50, -1), x[:, :1]):
        std, mean = token_channel_std_mean(t)
        expected_std, expected_mean = torch.std_mean(t.contiguous(), dim=(1, 2), keepdim=True)
        torch.testing.assert_close(std, expected_std, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mean, expected_mean, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_unet():
    return build_components("tiny")["unet"]


def _layer(unet, temporal: bool):
    part = "temporal_transformer_blocks" if temporal else "transformer_blocks"
    return unet.get_submodule(f"down_blocks.0.attentions.0.{part}.0.attn2")


def test_processors_installed_on_every_layer(tiny_unet):
    procs = tiny_unet.attn_processors
    spatial = [n for n in procs if ".transformer_blocks." in n and n.endswith("attn2.processor")]
    temporal = [n for n in procs if ".temporal_transformer_blocks." in n and n.endswith("attn2.processor")]
    assert spatial and all(isinstance(procs[n], IDCrossAttnProcessor) for n in spatial)
    assert temporal and all(isinstance(procs[n], FaceFreeTemporalAttnProcessor) for n in temporal)
    # the ID projections live in the UNet's state dict under the released key names
    assert any(k.endswith("attn2.processor.id_to_k.weight") for k in tiny_unet.state_dict())


def test_id_cross_attention_adds_normalised_id_branch(tiny_unet):
    attn = _layer(tiny_unet, temporal=False)
    proc = attn.processor
    torch.manual_seed(1)
    h = torch.randn(3, 16, attn.to_q.in_features)
    ctx = torch.randn(3, 5, attn.to_k.in_features)  # 1 image token + 4 ID tokens
    out = attn(h, encoder_hidden_states=ctx)
    q = attn.to_q(h)
    image = _naive_attention(q, attn.to_k(ctx[:, :1]), attn.to_v(ctx[:, :1]), attn.heads)
    ident = _naive_attention(q, proc.id_to_k(ctx[:, 1:]), proc.id_to_v(ctx[:, 1:]), attn.heads)
    ident = (ident - ident.mean(dim=(1, 2), keepdim=True)) / (ident.std(dim=(1, 2), keepdim=True) + 1e-5)
    ident = ident * image.std(dim=(1, 2), keepdim=True) + image.mean(dim=(1, 2), keepdim=True)
    expected = attn.to_out[0](image + ident)
    assert torch.allclose(out, expected, atol=1e-5)
    # the face tokens matter here
    assert not torch.allclose(out, attn(h, encoder_hidden_states=torch.cat([ctx[:, :1], ctx[:, 1:] * 3], 1)))


def test_temporal_attention_ignores_face_tokens(tiny_unet):
    attn = _layer(tiny_unet, temporal=True)
    torch.manual_seed(2)
    h = torch.randn(4, 6, attn.to_q.in_features)
    ctx = torch.randn(4, 5, attn.to_k.in_features)
    out = attn(h, encoder_hidden_states=ctx)
    other_faces = torch.cat([ctx[:, :1], torch.randn(4, 4, ctx.shape[-1])], dim=1)
    assert torch.equal(out, attn(h, encoder_hidden_states=other_faces))
    image_only = attn.to_out[0](_naive_attention(attn.to_q(h), attn.to_k(ctx[:, :1]), attn.to_v(ctx[:, :1]), attn.heads))
    assert torch.allclose(out, image_only, atol=1e-5)


def test_processors_refuse_context_without_face_tokens(tiny_unet):
    attn = _layer(tiny_unet, temporal=False)
    with pytest.raises(ValueError, match="face-ID tokens"):
        attn(torch.randn(1, 4, attn.to_q.in_features), encoder_hidden_states=torch.randn(1, 4, attn.to_k.in_features))


def test_pose_injection_adds_residual_after_conv_in_only_while_active(tiny_unet):
    injection = PoseInjection(tiny_unet)
    x = torch.randn(2, 8, 8, 8)
    plain = tiny_unet.conv_in(x)
    residual = torch.randn_like(plain)
    with injection.active(residual):
        assert torch.equal(tiny_unet.conv_in(x), plain + residual)
    assert torch.equal(tiny_unet.conv_in(x), plain)
    injection.remove()


def _tiny_unet_output(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, 8, 16, 16, generator=g)
    ctx = torch.randn(1, 5, unet.config.cross_attention_dim, generator=g)
    ids = torch.tensor([[6.0, 127.0, 0.02]])
    with torch.no_grad():
        return unet(x, torch.tensor(10.0), encoder_hidden_states=ctx, added_time_ids=ids, return_dict=False)[0]


def test_fast_kernel_swaps_keep_the_output_and_fall_back_on_cpu():
    from server_animator.animator.attention import ShortSelfAttnProcessor, install_infant_animator_processors
    from server_animator.animator.attention import use_short_self_attention
    from server_animator.animator.kernels import FusedGEGLU, channels_last_temporal_convs, fuse_geglu

    unet = build_components("tiny", seed=3)["unet"]
    stock = _tiny_unet_output(unet)
    keys = set(unet.state_dict())
    geglus = [m for m in unet.modules() if type(m).__name__ == "GEGLU"]
    assert fuse_geglu(unet) == len(geglus) > 0 and fuse_geglu(unet) == 0  # every feed-forward, once
    assert set(unet.state_dict()) == keys  # same parameters under the same names
    assert sum(isinstance(m, FusedGEGLU) for m in unet.modules()) == len(geglus)
    assert use_short_self_attention(unet) > 0  # the temporal self-attention layers only
    procs = unet.attn_processors
    assert all(isinstance(p, ShortSelfAttnProcessor) == (".temporal_transformer_blocks." in n and "attn1" in n)
               for n, p in procs.items())
    hooks = channels_last_temporal_convs(unet)
    convs = [m for m in unet.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(hooks) == len(convs) > 0 and channels_last_temporal_convs(unet) == []  # once per layer
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last_3d) for m in convs)
    # on the CPU the short-attention processor and the fused GEGLU take the stock path: same output up to rounding
    torch.testing.assert_close(_tiny_unet_output(unet), stock, rtol=1e-5, atol=1e-5)
    for h in hooks:
        h.remove()
    assert len(channels_last_temporal_convs(unet)) == len(convs)  # removed hooks can be put back
    install_infant_animator_processors(unet)
    assert not any(isinstance(p, ShortSelfAttnProcessor) for p in unet.attn_processors.values())


def test_channel_stats_group_norm_equals_group_norm_compiled_and_eager():
    from server_animator.animator.kernels import ChannelStatsGroupNorm, channel_stats_group_norms

    torch.manual_seed(0)
    for shape, layout in (((2, 16, 6, 5), torch.channels_last), ((2, 16, 3, 4, 5), torch.channels_last_3d)):
        model = torch.nn.Sequential(torch.nn.GroupNorm(4, 16, eps=1e-6), torch.nn.SiLU())
        torch.nn.init.normal_(model[0].weight)
        torch.nn.init.normal_(model[0].bias)
        x = (torch.randn(shape) * 3 + 5).contiguous(memory_format=layout)  # an offset mean: a stable variance
        expected = model(x)
        keys = set(model.state_dict())
        assert channel_stats_group_norms(model) == 1 and isinstance(model[0], ChannelStatsGroupNorm)
        assert set(model.state_dict()) == keys and channel_stats_group_norms(model) == 0
        assert torch.equal(model(x), expected)  # eager: PyTorch's own kernel
        torch.testing.assert_close(torch.compile(model)(x), expected, rtol=1e-5, atol=1e-5)
