"""Architectures: the released one (SVD-xt + InfantAnimator) and a tiny one for tests.

``build_components("svd-xt")`` gives the full-size architecture with random
weights (benchmarks); ``build_components("tiny")`` one small enough for CPU
tests (64x64, a fraction of a second per UNet call). Real weights are loaded
by :mod:`.loading` from local directories only.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

Architecture = Literal["tiny", "svd-xt"]

# SVD-xt's scheduler (diffusers layout, scheduler/scheduler_config.json).
SVD_XT_SCHEDULER: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_min": 0.002,
    "sigma_max": 700.0,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "use_karras_sigmas": True,
}

_ARCH: dict[str, dict[str, dict[str, Any]]] = {
    "svd-xt": {
        "unet": {},  # diffusers' defaults are SVD(-xt)'s UNet
        "vae": {
            "block_out_channels": (128, 256, 512, 512),
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "layers_per_block": 2,
            "latent_channels": 4,
            "sample_size": 768,
        },
        "clip": {
            "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 16,
            "patch_size": 14, "image_size": 224, "projection_dim": 1024, "hidden_act": "gelu",
        },
        "pose_net": {"latent_channels": 320},
        "face_encoder": {},  # 512-d face embedding, 1024-d CLIP embedding -> 4 x 1024 tokens
    },
    "tiny": {
        "unet": {
            "block_out_channels": (32, 64),
            "down_block_types": ("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            "up_block_types": ("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            "cross_attention_dim": 64,
            "num_attention_heads": (2, 4),
            "layers_per_block": 1,
            "addition_time_embed_dim": 4,
            "projection_class_embeddings_input_dim": 12,  # 3 added time ids x 4
            "sample_size": 8,
        },
        "vae": {
            "block_out_channels": (32, 32, 32, 32),  # 4 levels: 8x downsampling like the real VAE
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "layers_per_block": 1,
            "latent_channels": 4,
            "sample_size": 64,
        },
        "clip": {
            "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
            "patch_size": 32, "image_size": 224, "projection_dim": 64,  # SVD resizes to 224 for CLIP
        },
        "pose_net": {"latent_channels": 32, "stage_channels": (3, 8, 8, 16, 16)},
        "face_encoder": {"image_embedding_dim": 64, "cross_attention_dim": 64, "depth": 1},
    },
}


def architecture(name: Architecture) -> dict[str, dict[str, Any]]:
    if name not in _ARCH:
        raise ValueError(f"unknown architecture {name!r}; use one of {sorted(_ARCH)}")
    return _ARCH[name]


def build_components(name: Architecture = "tiny", seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """Every pipeline component of architecture ``name`` with random weights (built on ``device``)."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from .attention import install_infant_animator_processors
    from .models import FaceIDEncoder, PoseNet

    arch = architecture(name)
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNetSpatioTemporalConditionModel(**arch["unet"])
        install_infant_animator_processors(unet)
        components = {
            "unet": unet,
            "vae": AutoencoderKLTemporalDecoder(**arch["vae"]),
            "image_encoder": CLIPVisionModelWithProjection(CLIPVisionConfig(**arch["clip"])),
            "pose_net": PoseNet(**arch["pose_net"]),
            "face_encoder": FaceIDEncoder(**arch["face_encoder"]),
        }
    _randomize_id_projections(unet, seed)
    for module in components.values():
        # a few diffusers parameters ignore the default device (torch.Tensor([...])): move them too
        module.to(device).eval().requires_grad_(False)
    components["scheduler"] = EulerDiscreteScheduler(**SVD_XT_SCHEDULER)
    components["feature_extractor"] = clip_image_processor_class()()
    return components


def clip_image_processor_class():
    """CLIP's image processor: the PIL one (transformers 5 without torchvision), else the classic one."""
    try:
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def _randomize_id_projections(unet: torch.nn.Module, seed: int) -> None:
    """Give the ID projections their own random weights, so tests see the ID branch at work."""
    generator = torch.Generator().manual_seed(seed + 1)
    for name, param in unet.named_parameters():
        if ".processor.id_to_" in name:
            fan_in = param.shape[1]
            values = torch.randn(param.shape, generator=generator) / fan_in**0.5
            param.data.copy_(values.to(param.device, param.dtype))
