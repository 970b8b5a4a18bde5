"""Weights from local directories only: released checkpoints, conversion, saved pipelines.

Two layouts are understood:

* **released**: an SVD-xt base in diffusers layout (``model_index.json``,
  ``unet/``, ``vae/``, ``image_encoder/``, ``scheduler/``,
  ``feature_extractor/``) plus InfantAnimator's checkpoint files
  ``pose_net-<step>.pth``, ``face_encoder-<step>.pth`` and ``unet-<step>.pth``
  (plain state dicts with the original key names; the UNet's includes the ID
  projections ``...attn2.processor.id_to_k.weight``).
* **converted**: what :func:`convert_released` writes — a diffusers saved
  pipeline (``save_pretrained``) with ``pose_net/`` and ``face_encoder/``.

``find_weights(dir)`` tells which one a directory holds. Nothing is ever
downloaded: every ``from_pretrained`` runs with ``local_files_only=True``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from skeleton.errors import CogmaError

from .configs import Architecture, build_components, clip_image_processor_class

BASE_SUBFOLDERS = ("unet", "vae", "image_encoder", "scheduler", "feature_extractor")
RELEASED_FILES = ("pose_net", "face_encoder", "unet")


class WeightsError(CogmaError):
    """Animator weights missing, incomplete or not matching the architecture."""


@dataclass(frozen=True)
class ReleasedCheckpoint:
    base_dir: Path  # SVD-xt in diffusers layout
    pose_net: Path
    face_encoder: Path
    unet: Path

    @property
    def step(self) -> str:
        return _step_of(self.unet) or "unknown"


@dataclass(frozen=True)
class WeightsLocation:
    kind: str  # "converted" or "released"
    path: Path
    released: ReleasedCheckpoint | None = None


def _step_of(path: Path) -> str | None:
    m = re.search(r"-(\d+)\.pth$", path.name)
    return m.group(1) if m else None


def _latest(files: list[Path]) -> Path:
    return max(files, key=lambda p: int(_step_of(p) or -1))


def _is_svd_base(d: Path) -> bool:
    return (d / "model_index.json").is_file() and all((d / s).is_dir() for s in BASE_SUBFOLDERS)


def _is_converted(d: Path) -> bool:
    return _is_svd_base(d) and (d / "pose_net").is_dir() and (d / "face_encoder").is_dir()


def find_weights(weights_dir: str | Path) -> WeightsLocation:
    """Locate either a converted pipeline or an SVD-xt base plus released checkpoint files under ``weights_dir``."""
    root = Path(weights_dir).expanduser()
    if root.is_file():
        raise WeightsError(f"weights {root} is a file; give the directory that holds the SVD-xt base and the "
                           "InfantAnimator checkpoints")
    if not root.is_dir():
        raise WeightsError(f"weights directory {root} does not exist")
    if _is_converted(root):
        return WeightsLocation("converted", root)
    bases = [d for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir())] if _is_svd_base(d)]
    bases = [d for d in bases if not _is_converted(d)]
    ckpts = {name: sorted(root.rglob(f"{name}-*.pth")) for name in RELEASED_FILES}
    missing = [f"{name}-<step>.pth" for name, files in ckpts.items() if not files]
    if not bases or missing:
        what = (["an SVD-xt base in diffusers layout (model_index.json, " + ", ".join(BASE_SUBFOLDERS) + ")"]
                if not bases else []) + missing
        raise WeightsError(
            f"no animator weights in {root}: missing {'; '.join(what)}. "
            "Give a directory with a converted pipeline, or the SVD-xt base plus InfantAnimator's checkpoint files."
        )
    chosen = {name: _latest(files) for name, files in ckpts.items()}
    released = ReleasedCheckpoint(bases[0], chosen["pose_net"], chosen["face_encoder"], chosen["unet"])
    return WeightsLocation("released", root, released)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    except Exception as e:  # a corrupt or hostile file
        raise WeightsError(f"cannot read checkpoint {path}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}  # tolerate DDP-saved keys


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state dict exactly, or say which keys differ (a wrong checkpoint is never half-loaded silently)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        def show(keys: list[str]) -> str:
            return f"{len(keys)} (e.g. {', '.join(keys[:3])})" if keys else "0"
        raise WeightsError(
            f"{source.name} does not match {type(module).__name__}: missing keys {show(missing)}, "
            f"unexpected keys {show(unexpected)}, wrong shapes {show(wrong_shape)}"
        )
    module.load_state_dict(state, strict=True)


def _pose_net_config(state: dict[str, torch.Tensor], source: Path) -> dict:
    """PoseNet widths from a checkpoint: stage ``i`` is ``conv_layers.{4i}`` (3x3) then ``.{4i+2}`` (4x4/2 or 3x3)."""
    try:
        changes = [state[f"conv_layers.{4 * i + 2}.weight"] for i in range(len(state)) if f"conv_layers.{4 * i + 2}.weight" in state]
        return {
            "latent_channels": state["final_proj.weight"].shape[0],
            "stage_channels": (state["conv_layers.0.weight"].shape[1], *(w.shape[0] for w in changes)),
            "downsample": tuple(w.shape[-1] == 4 for w in changes),
        }
    except KeyError as e:
        raise WeightsError(f"{source.name} is not a PoseNet checkpoint (no {e.args[0]})") from None


def _face_encoder_config(state: dict[str, torch.Tensor], source: Path) -> dict:
    """FaceIDEncoder sizes from a checkpoint (heads of 64 channels, as released)."""
    try:
        width = state["norm.weight"].shape[0]
        return {
            "id_embedding_dim": state["proj.0.weight"].shape[1],
            "image_embedding_dim": state["fusion_model.proj_in.weight"].shape[1],
            "cross_attention_dim": width,
            "num_tokens": state["proj.2.weight"].shape[0] // width,
            "depth": len({k.split(".")[2] for k in state if k.startswith("fusion_model.layers.")}),
        }
    except KeyError as e:
        raise WeightsError(f"{source.name} is not a face-encoder checkpoint (no {e.args[0]})") from None


def load_released(ckpt: ReleasedCheckpoint, torch_dtype: torch.dtype = torch.float32):
    """Build the pipeline from an SVD-xt base and InfantAnimator's ``.pth`` files (strict key match)."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionModelWithProjection

    from .attention import install_infant_animator_processors
    from .models import FaceIDEncoder, PoseNet
    from .pipeline import InfantAnimatorPipeline

    base = ckpt.base_dir
    local = {"local_files_only": True, "low_cpu_mem_usage": False}
    unet = UNetSpatioTemporalConditionModel.from_pretrained(base, subfolder="unet", **local)
    install_infant_animator_processors(unet)
    load_strict(unet, _load_state_dict(ckpt.unet), ckpt.unet)
    pose_state = _load_state_dict(ckpt.pose_net)
    pose_net = PoseNet(**_pose_net_config(pose_state, ckpt.pose_net))
    load_strict(pose_net, pose_state, ckpt.pose_net)
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(base, subfolder="image_encoder", **local)
    face_state = _load_state_dict(ckpt.face_encoder)
    face_encoder = FaceIDEncoder(**_face_encoder_config(face_state, ckpt.face_encoder))
    load_strict(face_encoder, face_state, ckpt.face_encoder)
    pipe = InfantAnimatorPipeline(
        vae=AutoencoderKLTemporalDecoder.from_pretrained(base, subfolder="vae", **local),
        image_encoder=image_encoder,
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_pretrained(base, subfolder="scheduler", **local),
        feature_extractor=clip_image_processor_class().from_pretrained(base, subfolder="feature_extractor", **local),
        pose_net=pose_net,
        face_encoder=face_encoder,
    )
    for module in (pipe.unet, pipe.vae, pipe.image_encoder, pipe.pose_net, pipe.face_encoder):
        module.eval().requires_grad_(False)
    return pipe.to(dtype=torch_dtype)


def load_converted(path: Path, torch_dtype: torch.dtype = torch.float32):
    """Load a pipeline saved by :func:`convert_released` / ``save_pretrained`` (ID projections included)."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionModelWithProjection

    from .attention import install_infant_animator_processors
    from .models import FaceIDEncoder, PoseNet
    from .pipeline import InfantAnimatorPipeline

    local = {"local_files_only": True, "low_cpu_mem_usage": False}
    unet = UNetSpatioTemporalConditionModel.from_config(UNetSpatioTemporalConditionModel.load_config(path / "unet"))
    install_infant_animator_processors(unet)
    load_strict(unet, _read_safetensors_dir(path / "unet"), path / "unet")
    pipe = InfantAnimatorPipeline(
        vae=AutoencoderKLTemporalDecoder.from_pretrained(path, subfolder="vae", **local),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(path, subfolder="image_encoder", **local),
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_pretrained(path, subfolder="scheduler", **local),
        feature_extractor=clip_image_processor_class().from_pretrained(path, subfolder="feature_extractor", **local),
        pose_net=PoseNet.from_pretrained(path, subfolder="pose_net", **local),
        face_encoder=FaceIDEncoder.from_pretrained(path, subfolder="face_encoder", **local),
    )
    for module in (pipe.unet, pipe.vae, pipe.image_encoder, pipe.pose_net, pipe.face_encoder):
        module.eval().requires_grad_(False)
    return pipe.to(dtype=torch_dtype)


def _read_safetensors_dir(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"no .safetensors weights in {folder}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(f))
    return state


def load_pipeline(weights_dir: str | Path, torch_dtype: torch.dtype = torch.float32):
    """The pipeline from whatever :func:`find_weights` finds in ``weights_dir``."""
    location = find_weights(weights_dir)
    if location.kind == "converted":
        return load_converted(location.path, torch_dtype)
    return load_released(location.released, torch_dtype)


def convert_released(weights_dir: str | Path, out_dir: str | Path, torch_dtype: torch.dtype = torch.float16) -> Path:
    """Write a diffusers-style saved pipeline from an SVD-xt base + released checkpoints."""
    location = find_weights(weights_dir)
    if location.kind != "released":
        raise WeightsError(f"{weights_dir} already holds a converted pipeline")
    pipe = load_released(location.released, torch_dtype)
    out = Path(out_dir)
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "infant_animator.json").write_text(
        json.dumps({"converted_from_step": location.released.step, "dtype": str(torch_dtype)}, indent=2)
    )
    return out


def write_random_released(
    out_dir: str | Path, architecture: Architecture = "tiny", seed: int = 0, step: int = 26500
) -> Path:
    """Random weights in the released layout: an SVD base folder + ``*-<step>.pth`` files (for loader tests)."""
    from diffusers import StableVideoDiffusionPipeline

    out = Path(out_dir)
    parts = build_components(architecture, seed)
    unet_state = parts["unet"].state_dict()
    stock_unet = type(parts["unet"]).from_config(parts["unet"].config)  # the base has no ID projections
    stock_unet.load_state_dict({k: v for k, v in unet_state.items() if ".processor." not in k})
    base = StableVideoDiffusionPipeline(
        unet=stock_unet, vae=parts["vae"], image_encoder=parts["image_encoder"],
        scheduler=parts["scheduler"], feature_extractor=parts["feature_extractor"],
    )
    base.save_pretrained(out / "svd", safe_serialization=True)
    ckpt = out / "animation" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.save(parts["pose_net"].state_dict(), ckpt / f"pose_net-{step}.pth")
    torch.save(parts["face_encoder"].state_dict(), ckpt / f"face_encoder-{step}.pth")
    torch.save(unet_state, ckpt / f"unet-{step}.pth")
    return out
