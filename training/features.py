"""``cogma features``: compute and cache co-learning features with local models (nothing downloaded).

* ``--vlm DIR``: a multimodal LLM in a local directory, loaded with
  ``transformers`` (``AutoModelForImageTextToText`` + the PIL image processor,
  so torchvision is not needed). Supported families: **Qwen2-VL and
  Qwen2.5-VL** (``model_type`` ``qwen2_vl`` / ``qwen2_5_vl``): their vision tower
  is reached through ``model.get_image_features`` and their language model
  through ``model.model(input_ids=...)``. Video features: ``frames`` frames
  evenly spread over the recording, each through the vision tower (merged
  patch tokens), mean-pooled over tokens and frames. Text features: the
  language model's last hidden state of the description, mean-pooled over tokens.
* ``--clip DIR``: a CLIP text encoder (``CLIPTextModelWithProjection``), for
  clinical information written as text.
* Video: the app never uploads video and synthetic recordings have none, so a
  recording without ``<video-dir>/<key>.mp4`` gets frames **rendered from its
  skeleton** (``skeleton.drawing.draw_skeleton``, white joints on grey); the
  cache records which recordings were rendered.

The cache (safetensors, see :class:`training.colearning.FeatureCache`) also
holds the zero-shot prompt embeddings (``text/present``, ``text/absent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from skeleton.errors import CogmaError

from .colearning import FIDGETY_PROMPTS, FeatureCache, clinical_text, describe_movement

SUPPORTED_VLM_TYPES = ("qwen2_vl", "qwen2_5_vl")


class FeatureError(CogmaError):
    """A model directory or input that cannot produce features."""


def _check_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FeatureError(f"{path}: no such {what} directory (give a local model folder; nothing is downloaded)")
    if not (path / "config.json").is_file():
        raise FeatureError(f"{path}: not a transformers model folder (no config.json)")
    return path


@dataclass
class VLMEncoder:
    """Video-frame and text features from a local Qwen2-VL-family model."""

    model: Any
    processor: Any
    tokenizer: Any
    name: str

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "VLMEncoder":
        import torch
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        path = _check_dir(path, "VLM")
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if config.model_type not in SUPPORTED_VLM_TYPES:
            raise FeatureError(f"{path}: VLM type {config.model_type!r} is not supported "
                               f"(supported: {', '.join(SUPPORTED_VLM_TYPES)})")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=dtype)
        processor = AutoImageProcessor.from_pretrained(path, local_files_only=True, backend="pil")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model.eval().to(device), processor, tokenizer, path.name)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def video_features(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self.processor(images=list(frames), return_tensors="pt")
        with torch.no_grad():
            out = self.model.model.get_image_features(
                pixel_values=inputs["pixel_values"].to(self.device), image_grid_thw=inputs["image_grid_thw"].to(self.device)
            )
        per_frame = torch.stack([t.float().mean(dim=0) for t in out.pooler_output])
        return per_frame.mean(dim=0).cpu().numpy()

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=256)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.no_grad():
            hidden = self.model.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        mask = enc["attention_mask"][..., None].to(hidden.dtype)
        return ((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)).float().cpu().numpy()


@dataclass
class ClipTextEncoder:
    model: Any
    tokenizer: Any
    name: str

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "ClipTextEncoder":
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        path = _check_dir(path, "CLIP")
        try:
            model = CLIPTextModelWithProjection.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise FeatureError(f"{path}: cannot load a CLIP text encoder ({e})") from None
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model.eval().to(device), tokenizer, path.name)

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        max_len = getattr(self.model.config, "max_position_embeddings", 77)
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_len)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            out = self.model(**{k: v.to(device) for k, v in enc.items()})
        return out.text_embeds.float().cpu().numpy()


def recording_frames(item: Any, n_frames: int, size: int, video_dir: Path | None) -> tuple[list[np.ndarray], bool]:
    """``n_frames`` RGB frames spread over the recording: from ``<video_dir>/<key>.mp4`` if it exists, else
    rendered from the skeleton. Returns (frames, rendered?)."""
    rec = item.recording
    idx = np.linspace(0, rec.num_frames - 1, n_frames).round().astype(int)
    video = video_dir / f"{item.key}.mp4" if video_dir is not None else None
    if video is not None and video.is_file():
        import cv2

        cap = cv2.VideoCapture(str(video))
        frames = []
        for i in idx:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, bgr = cap.read()
            if ok:
                frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size)))
        cap.release()
        if frames:
            return frames, False
    from skeleton.drawing import draw_skeleton

    frames = [
        draw_skeleton(np.full((size, size, 3), 40, np.uint8), rec.keypoints[i], rec.schema, frame_size=rec.frame_size)
        for i in idx
    ]
    return frames, True


def compute_features(items: Sequence[Any], *, vlm_dir: str | Path | None = None, clip_dir: str | Path | None = None,
                     frames: int = 8, image_size: int = 224, video_dir: str | Path | None = None,
                     device: str = "cpu", batch_size: int = 16, progress: bool = True) -> FeatureCache:
    """Features of every item for each modality the given models allow (see the module docstring)."""
    from tqdm import tqdm

    if vlm_dir is None and clip_dir is None:
        raise FeatureError("give at least one of --vlm DIR and --clip DIR")
    cache = FeatureCache(info={"n_recordings": len(items), "frames": frames, "image_size": image_size})
    video_dir = Path(video_dir) if video_dir is not None else None
    if vlm_dir is not None:
        vlm = VLMEncoder.load(vlm_dir, device)
        cache.info["vlm"] = {"name": vlm.name, "model_type": vlm.model.config.model_type}
        video, rendered = {}, []
        for item in tqdm(items, desc="video features", disable=not progress, unit="rec"):
            imgs, was_rendered = recording_frames(item, frames, image_size, video_dir)
            video[item.key] = vlm.video_features(imgs)
            if was_rendered:
                rendered.append(item.key)
        cache.features["video"] = video
        cache.info["video_source"] = (
            f"{len(rendered)} of {len(items)} recordings had no RGB video: frames rendered from the skeleton"
        )
        described = [(it.key, describe_movement(it)) for it in items]
        described = [(k, t) for k, t in described if t]
        cache.features["text"] = _encode_texts(vlm.text_features, described, batch_size)
        cache.info["text_source"] = "description given with the data, else a GMA description of the movement class"
        for name, prompt in FIDGETY_PROMPTS.items():
            cache.prompts[f"text/{name}"] = vlm.text_features([prompt])[0]
    if clip_dir is not None:
        clip = ClipTextEncoder.load(clip_dir, device)
        cache.info["clip"] = {"name": clip.name}
        texts = [(it.key, clinical_text(it)) for it in items]
        cache.features["clinical"] = _encode_texts(clip.text_features, [(k, t) for k, t in texts if t], batch_size)
        for name, prompt in FIDGETY_PROMPTS.items():
            cache.prompts[f"clinical/{name}"] = clip.text_features([prompt])[0]
    return cache


def _encode_texts(encode, keyed_texts: list[tuple[str, str]], batch_size: int) -> dict[str, np.ndarray]:
    """Encode unique texts once (many recordings share a description)."""
    unique = sorted({t for _, t in keyed_texts})
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(unique), batch_size):
        chunk = unique[start:start + batch_size]
        for text, vec in zip(chunk, encode(chunk)):
            vectors[text] = vec
    return {k: vectors[t] for k, t in keyed_texts}
