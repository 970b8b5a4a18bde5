"""``InfantAnimatorPipeline``: a reference infant moved by a recorded pose sequence.

The sampler is InfantAnimator's (StableAnimator's) on Stable Video Diffusion
xt: Euler (v-prediction, Karras sigmas), 25 steps, classifier-free guidance
3.0, 16-frame windows that always include frame 0 (the anchor) and overlap by
4 frames, predictions blended with triangular weights, VAE decoding in chunks.

Speed knobs that keep the same algorithm (``__call__`` arguments):
``cache_pose`` (PoseNet once per frame instead of once per window and step),
``batched_cfg`` (both guidance branches in one UNet call), ``windows_per_batch``
(several windows in that call), ``decode_chunks_per_batch`` (several VAE
chunks per call; each chunk is still decoded on its own), the dtype
(``pipe.to(dtype=torch.bfloat16)``), the SDPA kernels (``sdpa_backends``) and
:meth:`InfantAnimatorPipeline.compile`. ``cfg_fraction`` < 1 is an
approximation (guidance only on the first steps) and off by default.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import CLIPVisionModelWithProjection

from .attention import AttentionBackend, IDCrossAttnProcessor, install_infant_animator_processors
from .models import FaceIDEncoder, PoseInjection, PoseNet

ProgressCallback = Callable[[int, int], None]  # (steps done, steps in total)


def sliding_windows(num_frames: int, size: int = 16, overlap: int = 4) -> list[list[int]]:
    """Frame indices of each denoising window: frame 0 (the anchor) then ``size - 1`` consecutive frames.

    Windows start every ``size - overlap`` frames; a last window is added so
    that the final frame is covered. Clips shorter than a window get one window.
    """
    if num_frames < 1:
        raise ValueError("need at least one frame")
    if not 0 <= overlap < size - 1:
        raise ValueError(f"window overlap {overlap} must be between 0 and {size - 2} for windows of {size}")
    if num_frames <= size:
        return [list(range(num_frames))]
    stride = size - overlap
    windows = [[0, *range(start + 1, start + size)] for start in range(0, num_frames - size + 1, stride)]
    if windows[-1][-1] < num_frames - 1:
        windows.append([0, *range(num_frames - size + 1, num_frames)])
    return windows


def window_weights(size: int) -> torch.Tensor:
    """Triangular blending weights over a window's positions: small at both ends, 1 in the middle."""
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5) * 2.0 / size
    return torch.minimum(ramp, 2.0 - ramp)


def _chunks(seq: Sequence, n: int) -> list[Sequence]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    """True on the CPU; on a GPU, when ``nbytes`` is at most a quarter of its free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= free // 4


@contextlib.contextmanager
def _sdpa_kernels(names: Sequence[str] | None):
    """Prefer the named SDPA kernels, in order (e.g. ``("cudnn", "flash")``), inside the block.

    The math kernel stays as the last resort: no fused kernel takes every shape
    (e.g. the temporal attention's batch of height x width x heads sequences).
    """
    if not names:
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    table = {
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown SDPA kernels {unknown}; choose from {sorted(table)}")
    order = [table[n] for n in names] + ([] if "math" in names else [SDPBackend.MATH])
    with sdpa_kernel(order, set_priority=True):
        yield


@dataclass
class InfantAnimatorPipelineOutput(BaseOutput):
    """``frames``: uint8 ``[T, H, W, 3]`` (numpy, or a CPU tensor), or latents ``[1, T, 4, h, w]``."""

    frames: np.ndarray | torch.Tensor


class InfantAnimatorPipeline(DiffusionPipeline):
    """Pose-guided image-to-video on SVD-xt with a face-ID branch (InfantAnimator)."""

    model_cpu_offload_seq = "image_encoder->face_encoder->pose_net->unet->vae"

    def __init__(
        self,
        vae: AutoencoderKLTemporalDecoder,
        image_encoder: CLIPVisionModelWithProjection,
        unet: UNetSpatioTemporalConditionModel,
        scheduler: EulerDiscreteScheduler,
        feature_extractor,
        pose_net: PoseNet,
        face_encoder: FaceIDEncoder,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            unet=unet,
            scheduler=scheduler,
            feature_extractor=feature_extractor,
            pose_net=pose_net,
            face_encoder=face_encoder,
        )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        if pose_net.downsampling != self.vae_scale_factor:
            raise ValueError(
                f"PoseNet downsamples {pose_net.downsampling}x but the VAE {self.vae_scale_factor}x; they must match"
            )
        self.video_processor = VideoProcessor(do_resize=True, vae_scale_factor=self.vae_scale_factor)
        self.num_id_tokens = face_encoder.config.num_tokens
        if not any(isinstance(p, IDCrossAttnProcessor) for p in unet.attn_processors.values()):
            install_infant_animator_processors(unet, self.num_id_tokens)
        self.pose_injection = PoseInjection(unet)

    # ------------------------------------------------------------------ set-up

    def set_attention_backend(self, backend: AttentionBackend) -> None:
        """``"sdpa"`` (PyTorch: flash / cuDNN / memory-efficient kernels) or ``"xformers"``."""
        install_infant_animator_processors(self.unet, self.num_id_tokens, backend)

    def enable_fast_kernels(self) -> list[str]:
        """Exact kernel swaps for CUDA (:mod:`.kernels`): Triton kernels for the temporal self-attention
        (16 frames) and for the face-ID branch (4 keys), the GEGLU feed-forwards as one GEMM with the gate
        in its epilogue, the temporal ``Conv3d`` of UNet and VAE decoder channels-last, and group norms
        that reduce per channel when compiled. Same outputs up to rounding; returns what was switched on
        (nothing without CUDA)."""
        from .attention import use_few_key_attention, use_short_self_attention
        from .kernels import channel_stats_group_norms, channels_last_temporal_convs, fuse_geglu, triton_available

        if self.device.type != "cuda":
            return []
        done = []
        if triton_available():
            done.append(f"short-sequence Triton attention in {use_short_self_attention(self.unet)} temporal layers")
            done.append(f"fused GEGLU GEMM in {fuse_geglu(self.unet)} feed-forwards")
            done.append(f"few-key Triton attention in {use_few_key_attention(self.unet)} face-ID branches")
        convs = channels_last_temporal_convs(self.unet) + channels_last_temporal_convs(self.vae.decoder)
        done.append(f"{len(convs)} temporal Conv3d channels-last")
        norms = channel_stats_group_norms(self.unet) + channel_stats_group_norms(self.vae.decoder)
        done.append(f"{norms} group norms with per-channel statistics when compiled")
        return done

    def compile(self, mode: str | None = None, vae: bool = False) -> None:
        """``torch.compile`` the UNet (and optionally the VAE decoder); the first call compiles (~2-3 min on an H100).

        Shapes are static: each new UNet batch (windows per call, with or without guidance) compiles once more.
        """
        self.unet.compile(mode=mode, fullgraph=False, dynamic=False)
        if vae:
            self.vae.decoder.compile(mode=mode, fullgraph=False, dynamic=False)

    # ------------------------------------------------------------------ the algorithm

    @torch.no_grad()
    def __call__(
        self,
        reference_image: PIL.Image.Image,
        pose_frames: np.ndarray | Sequence[np.ndarray],
        face_embedding: np.ndarray | torch.Tensor | None = None,
        *,
        height: int = 1024,
        width: int = 576,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.0,
        window_size: int = 16,
        window_overlap: int = 4,
        fps: int = 7,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int = 4,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        batched_cfg: bool = True,
        windows_per_batch: int = 1,
        decode_chunks_per_batch: int = 1,
        sdpa_backends: Sequence[str] | None = None,
        cache_pose: bool = True,
        cfg_fraction: float = 1.0,
        callback: ProgressCallback | None = None,
    ) -> InfantAnimatorPipelineOutput:
        """Animate ``reference_image`` with ``pose_frames`` (uint8 RGB ``[T, height, width, 3]``).

        ``face_embedding``: a 512-d face-identity embedding of the reference,
        or None for zeros. Returns uint8 frames ``[T, height, width, 3]``.
        """
        pose = self.check_inputs(reference_image, pose_frames, height, width, windows_per_batch, cfg_fraction)
        num_frames = pose.shape[0]
        device, dtype = self._execution_device, self.unet.dtype
        use_cfg = guidance_scale > 1.0
        guided_steps = round(cfg_fraction * num_inference_steps) if use_cfg else 0

        # 1. Reference appearance: CLIP embedding + face-ID tokens as context, VAE latents as first-frame condition.
        context = self.encode_reference_context(reference_image, face_embedding, device, dtype)
        image_latents = self.encode_reference_latents(
            reference_image, height, width, noise_aug_strength, generator, device, dtype
        )
        added_time_ids = torch.tensor([[fps - 1, motion_bucket_id, noise_aug_strength]], device=device, dtype=dtype)

        # 2. Pose frames stay uint8 on the device; PoseNet features per frame, once or per window and step.
        pose_features = self.pose_encoder(pose.to(device), cache_pose)

        # 3. Timesteps and initial noise (one window of noise, repeated along time).
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(num_frames, window_size, height, width, device, generator, latents)
        windows = sliding_windows(num_frames, window_size, window_overlap)
        weights = window_weights(len(windows[0])).to(device)

        # 4. Windowed denoising: blend each window's prediction, then guide, then one Euler step.
        timesteps = self.scheduler.timesteps
        with self.progress_bar(total=len(timesteps)) as bar, _sdpa_kernels(sdpa_backends):
            for i, t in enumerate(timesteps):
                model_input = self.scheduler.scale_model_input(latents, t)
                guided = i < guided_steps
                pred_uncond, pred_cond = self.predict_noise(
                    model_input, t, windows, weights, context, image_latents, pose_features, added_time_ids,
                    guided, batched_cfg, windows_per_batch,
                )
                noise_pred = pred_uncond + guidance_scale * (pred_cond - pred_uncond) if guided else pred_cond
                latents = self.scheduler.step(noise_pred, t, latents, return_dict=False)[0]
                bar.update()
                if callback is not None:
                    callback(i + 1, len(timesteps))

        # 5. Decode in chunks of ``decode_chunk_size`` frames.
        if output_type == "latent":
            return InfantAnimatorPipelineOutput(frames=latents)
        frames = self.decode_latents(latents[0], decode_chunk_size, decode_chunks_per_batch, sdpa_backends)
        self.maybe_free_model_hooks()
        return InfantAnimatorPipelineOutput(frames=frames.numpy() if output_type == "np" else frames)

    # ------------------------------------------------------------------ steps

    def check_inputs(
        self, reference_image, pose_frames, height: int, width: int, windows_per_batch: int, cfg_fraction: float
    ) -> torch.Tensor:
        if not isinstance(reference_image, PIL.Image.Image):
            raise TypeError(f"reference_image must be a PIL image, not {type(reference_image).__name__}")
        if height % 64 or width % 64:
            raise ValueError(f"height and width must be multiples of 64, got {width}x{height}")
        pose = torch.as_tensor(np.ascontiguousarray(np.asarray(pose_frames)))
        if pose.dtype != torch.uint8 or pose.ndim != 4 or tuple(pose.shape[1:]) != (height, width, 3):
            raise ValueError(
                f"pose_frames must be uint8 RGB [T, {height}, {width}, 3], got {pose.dtype} {tuple(pose.shape)}"
            )
        if windows_per_batch < 1:
            raise ValueError("windows_per_batch must be at least 1")
        if not 0.0 <= cfg_fraction <= 1.0:
            raise ValueError("cfg_fraction must lie between 0 and 1")
        return pose

    def encode_reference_context(
        self, image: PIL.Image.Image, face_embedding, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """``[2, 1 + num_id_tokens, C]``: unconditional (all zeros) and conditional context."""
        pixels = self.video_processor.numpy_to_pt(self.video_processor.pil_to_numpy(image))
        # Resize in [-1, 1] like SVD, then hand CLIP its own normalisation.
        pixels = (_resize_with_antialiasing(pixels * 2.0 - 1.0, (224, 224)) + 1.0) / 2.0
        pixels = self.feature_extractor(
            images=pixels, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False,
            return_tensors="pt",
        ).pixel_values
        encoder_dtype = self.image_encoder.dtype
        image_embeds = self.image_encoder(pixels.to(device, encoder_dtype)).image_embeds[:, None].to(dtype)
        if face_embedding is None:
            face_embedding = torch.zeros(1, self.face_encoder.config.id_embedding_dim)
        face = torch.as_tensor(np.asarray(face_embedding, dtype=np.float32)).reshape(1, -1).to(device, dtype)
        id_tokens = self.face_encoder(face, image_embeds)
        cond = torch.cat([image_embeds, id_tokens], dim=1)
        return torch.cat([torch.zeros_like(cond), cond])

    def encode_reference_latents(
        self, image: PIL.Image.Image, height: int, width: int, noise_aug_strength: float,
        generator: torch.Generator | None, device: torch.device, dtype: torch.dtype,
    ) -> torch.Tensor:
        """``[1, 4, h, w]``: the noise-augmented reference in VAE latent space (unscaled, as SVD)."""
        pixels = self.video_processor.preprocess(image, height=height, width=width).to(device)
        pixels = pixels + noise_aug_strength * randn_tensor(pixels.shape, generator, device, pixels.dtype)
        vae_dtype = self.vae.dtype
        upcast = vae_dtype != torch.float32 and self.vae.config.force_upcast
        if upcast:
            self.vae.to(torch.float32)
        latents = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mode()
        if upcast:
            self.vae.to(vae_dtype)
        return latents.to(dtype)

    def prepare_latents(
        self, num_frames: int, window_size: int, height: int, width: int,
        device: torch.device, generator: torch.Generator | None, latents: torch.Tensor | None,
    ) -> torch.Tensor:
        """``[1, T, 4, h, w]`` float32 initial noise: one window's noise repeated along time, as released."""
        shape_hw = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        channels = self.vae.config.latent_channels
        if latents is None:
            period = min(window_size, num_frames)
            noise = randn_tensor((1, period, channels, *shape_hw), generator, device, torch.float32)
            latents = noise.repeat(1, -(-num_frames // period), 1, 1, 1)[:, :num_frames]
        elif tuple(latents.shape) != (1, num_frames, channels, *shape_hw):
            raise ValueError(f"latents must have shape {(1, num_frames, channels, *shape_hw)}")
        return latents.to(device, torch.float32) * self.scheduler.init_noise_sigma

    def pose_encoder(self, pose: torch.Tensor, cache: bool, chunk: int = 16) -> Callable[[torch.Tensor], torch.Tensor]:
        """frame indices -> PoseNet residuals ``[N, C, h, w]`` of those uint8 pose frames.

        PoseNet sees each frame on its own and does not depend on the step, so
        ``cache`` encodes every frame once up front: the same features as
        running it per window and step (as released), kept on the device
        (C x h x w values per frame: 5.9 MB at 576x1024 in bf16). Where they
        would take more than a quarter of the GPU's free memory, PoseNet runs
        per window and step instead (slower, same result).
        """
        if cache:
            h, w = (size // self.vae_scale_factor for size in pose.shape[1:3])
            bytes_per_frame = self.pose_net.config.latent_channels * h * w * self.pose_net.dtype.itemsize
            cache = _fits_on_device(pose.shape[0] * bytes_per_frame, pose.device)
        if not cache:
            return lambda index: self.pose_net(self._pose_to_model(pose[index]))
        features = torch.cat([self.pose_net(self._pose_to_model(pose[i : i + chunk]))
                              for i in range(0, pose.shape[0], chunk)])
        return lambda index: features[index]

    def predict_noise(
        self, model_input: torch.Tensor, t: torch.Tensor, windows: list[list[int]], weights: torch.Tensor,
        context: torch.Tensor, image_latents: torch.Tensor, pose_features: Callable[[torch.Tensor], torch.Tensor],
        added_time_ids: torch.Tensor,
        guided: bool, batched_cfg: bool, windows_per_batch: int,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Blended (unconditional, conditional) noise predictions ``[1, T, 4, h, w]`` in float32.

        Unconditional: zero context, zero image latents, no pose. A frame seen
        by several windows gets their weighted mean.
        """
        x = model_input[0].to(self.unet.dtype)
        num_frames = x.shape[0]
        sums = {"uncond": torch.zeros_like(model_input[0]), "cond": torch.zeros_like(model_input[0])}
        total_weight = torch.zeros(num_frames, device=x.device)
        for group in _chunks(windows, windows_per_batch):
            index = torch.tensor(group, device=x.device)  # [n, W]
            n = index.shape[0]
            noisy = x[index]  # [n, W, 4, h, w]
            cond_input = torch.cat([noisy, image_latents[:, None].expand_as(noisy)], dim=2)
            pose_residual = pose_features(index.flatten())
            if guided and batched_cfg:
                uncond_input = torch.cat([noisy, torch.zeros_like(noisy)], dim=2)
                both = self._unet(
                    torch.cat([uncond_input, cond_input]),
                    t,
                    context.repeat_interleave(n, dim=0),
                    added_time_ids.expand(2 * n, -1),
                    torch.cat([torch.zeros_like(pose_residual), pose_residual]),
                )
                preds = {"uncond": both[:n], "cond": both[n:]}
            else:
                preds = {"cond": self._unet(cond_input, t, context[1:].expand(n, -1, -1),
                                            added_time_ids.expand(n, -1), pose_residual)}
                if guided:
                    uncond_input = torch.cat([noisy, torch.zeros_like(noisy)], dim=2)
                    preds["uncond"] = self._unet(uncond_input, t, context[:1].expand(n, -1, -1),
                                                 added_time_ids.expand(n, -1), None)
            flat_index = index.flatten()
            w = weights.repeat(n)
            for key, pred in preds.items():
                sums[key].index_add_(0, flat_index, pred.flatten(0, 1).float() * w[:, None, None, None])
            total_weight.index_add_(0, flat_index, w)
        norm = total_weight[:, None, None, None]
        uncond = (sums["uncond"] / norm)[None] if guided else None
        return uncond, (sums["cond"] / norm)[None]

    def _pose_to_model(self, pose_u8: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` -> ``[N, 3, H, W]`` in [-1, 1] of the PoseNet's dtype."""
        return (pose_u8.permute(0, 3, 1, 2).to(self.pose_net.dtype) / 127.5) - 1.0

    def _unet(self, sample, t, context, added_time_ids, pose_residual) -> torch.Tensor:
        with self.pose_injection.active(pose_residual):
            return self.unet(sample, t, encoder_hidden_states=context, added_time_ids=added_time_ids,
                             return_dict=False)[0]

    def decode_latents(
        self, latents: torch.Tensor, chunk_size: int, chunks_per_batch: int = 1,
        sdpa_backends: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """``[T, 4, h, w]`` -> uint8 ``[T, H, W, 3]`` on the CPU.

        The temporal decoder mixes frames within a chunk only, so several
        equal chunks in one call (as a batch) decode exactly as one by one.
        """
        z = (latents / self.vae.config.scaling_factor).to(self.vae.dtype)
        starts = list(range(0, z.shape[0], chunk_size))
        full = [s for s in starts if s + chunk_size <= z.shape[0]]
        groups = [list(g) for g in _chunks(full, chunks_per_batch)] + [[s] for s in starts if s not in full]
        frames: dict[int, torch.Tensor] = {}
        with _sdpa_kernels(sdpa_backends):
            for group in groups:
                size = min(chunk_size, z.shape[0] - group[0])
                batch = torch.cat([z[s : s + size] for s in group])
                decoded = self.vae.decode(batch, num_frames=size).sample
                pixels = ((decoded.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
                for j, s in enumerate(group):
                    frames[s] = pixels[j * size : (j + 1) * size].permute(0, 2, 3, 1).cpu()
        return torch.cat([frames[s] for s in starts])
