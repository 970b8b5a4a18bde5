"""Tiny random-weight stand-ins for a multimodal LLM and a CLIP text encoder.

Nothing may be downloaded here, so tests and benchmarks build these from
configs, ``save_pretrained`` them to a folder and load them back through the
same code path as real weights (:mod:`training.features`). Tokenizers are
byte-level BPE with no merges (one token per byte), built from a vocabulary
in memory. Their features carry no meaning: only the plumbing is real.
"""

from __future__ import annotations

from pathlib import Path


def _byte_vocab(extra: list[str], word_end: bool = False) -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    if word_end:  # CLIP's BPE marks the last symbol of a word with </w>
        for c in chars:
            vocab[c + "</w>"] = len(vocab)
    for token in extra:
        vocab[token] = len(vocab)
    return vocab


def build_tiny_vlm(path: str | Path, hidden: int = 32, seed: int = 0) -> Path:
    """A 2-layer Qwen2-VL (vision tower + language model) with a PIL image processor."""
    import torch
    from transformers import Qwen2Tokenizer, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    vocab = _byte_vocab(specials)
    Qwen2Tokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    eos = vocab["<|endoftext|>"]
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]}),
        vision_config=dict(depth=2, embed_dim=hidden, hidden_size=hidden, num_heads=4, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"],
        bos_token_id=eos, eos_token_id=eos,
    )
    torch.manual_seed(seed)
    Qwen2VLForConditionalGeneration(config).save_pretrained(path)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(path)
    return path


def build_tiny_clip(path: str | Path, hidden: int = 32, projection: int = 16, seed: int = 0) -> Path:
    """A 2-layer CLIP text encoder with projection and a byte-level CLIP tokenizer."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = _byte_vocab(["<|startoftext|>", "<|endoftext|>"], word_end=True)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                            num_hidden_layers=2, num_attention_heads=4, projection_dim=projection,
                            max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                            eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(seed)
    CLIPTextModelWithProjection(config).save_pretrained(path)
    return path
