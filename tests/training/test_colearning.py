"""Co-learning through the real transformers code path, with tiny random-weight VLM and CLIP models."""

import json

import numpy as np
import pytest
import torch

from cogma.cli import main as cogma_main
from training.colearning import (
    FIDGETY_PROMPTS, ColearningHeads, FeatureCache, FeatureCacheError, SupervisedTask, alignment_loss,
    clinical_text, describe_movement, target_fn,
)
from training.config import TrainConfig
from training.engine import CropDataset, DistEnv, prepare, train
from training.features import FeatureError, compute_features, recording_frames
from training.models import build_model
from training.tiny_models import build_tiny_clip, build_tiny_vlm
from training.zero_shot import zero_shot_scores

SPEC = {"kind": "synthetic", "n_infants": 4, "seed": 5, "seconds": [14.0, 16.0], "prevalence": 0.5}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return build_tiny_vlm(root / "vlm"), build_tiny_clip(root / "clip")


@pytest.fixture(scope="module")
def items():
    from training.data import load_dataset

    return load_dataset(SPEC)


@pytest.fixture(scope="module")
def cache(models, items):
    vlm, clip = models
    return compute_features(items, vlm_dir=vlm, clip_dir=clip, frames=2, image_size=64, progress=False)


def test_texts_for_descriptions_and_clinical_information(items):
    item = items[0]
    assert describe_movement(item) and "weeks" in clinical_text(item)
    item.clinical = {"gestational_age_weeks": 29, "birth_weight_g": 1200, "severity": 0.9}
    text = clinical_text(item)
    assert "29 weeks of gestation" in text and "1200 g" in text and "severity" not in text


def test_features_cover_every_modality_and_survive_a_round_trip(cache, items, tmp_path):
    assert cache.modalities() == ["video", "text", "clinical"]
    assert cache.dim("video") == 32 and cache.dim("text") == 32 and cache.dim("clinical") == 16
    assert set(cache.features["video"]) == {it.key for it in items}
    assert "rendered from the skeleton" in cache.info["video_source"]
    assert set(cache.prompts) == {f"{s}/{p}" for s in ("text", "clinical") for p in FIDGETY_PROMPTS}
    # different descriptions get different features; equal ones the same
    by_class = {}
    for it in items:
        by_class.setdefault(it.movement_class, []).append(cache.features["text"][it.key])
    for vectors in by_class.values():
        np.testing.assert_allclose(vectors[0], vectors[-1], atol=1e-5)
    path = cache.save(tmp_path / "f.safetensors")
    again = FeatureCache.load(path)
    for m in cache.modalities():
        for k, v in cache.features[m].items():
            np.testing.assert_array_equal(again.features[m][k], v)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(FeatureCacheError, match="damaged"):
        FeatureCache.load(tmp_path / "bad.safetensors")


def test_rendered_frames_are_real_pictures(items):
    frames, rendered = recording_frames(items[0], 3, 64, None)
    assert rendered and len(frames) == 3 and frames[0].shape == (64, 64, 3)
    assert frames[0].max() > 40  # the skeleton was drawn on the grey canvas


def test_missing_modality_is_masked():
    pred = torch.randn(4, 8, requires_grad=True)
    target = torch.randn(4, 8)
    assert alignment_loss(pred, target, torch.zeros(4)).item() == 0.0
    full = alignment_loss(pred, target, torch.ones(4))
    target_changed = target.clone()
    target_changed[3] = 100.0  # recording 3 lacks the modality: its target must not matter
    a = alignment_loss(pred, target, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    b = alignment_loss(pred, target_changed, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert torch.isclose(a, b) and not torch.isclose(a, full)
    a.backward()
    assert pred.grad[3].abs().sum() == 0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 similarities once turned the diagonal into NaN
        assert torch.isclose(alignment_loss(pred, target, torch.ones(4)), full)


def test_teacher_trains_with_colearning_and_scores_zero_shot(cache, items):
    recs = prepare(items)
    keys = [r.key for r in recs]
    del cache.features["clinical"][keys[0]]  # one recording without clinical text
    torch.manual_seed(0)
    model = build_model("teacher_tiny")
    heads = ColearningHeads(model.embed_dim, {m: cache.dim(m) for m in cache.modalities()}, hidden=16)
    task = SupervisedTask(model, heads, {"video": 0.5, "text": 0.5, "clinical": 0.5})
    data = CropDataset(recs, crop_seconds=12.0, seed=0, extra=target_fn(cache, keys))
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=len(recs), collate_fn=__import__(
        "training.engine", fromlist=["collate"]).collate)))
    assert batch["has_clinical"].tolist()[0] == 0.0 and batch["has_video"].min() == 1.0
    loss, logs = task(batch)
    assert {"bce", "video", "text", "clinical"} <= set(logs) and torch.isfinite(loss)
    summary = train(task, data, TrainConfig(epochs=1, batch_size=4, progress=False), seed=0, env=DistEnv())
    assert np.isfinite(summary["final_loss"])
    scores = zero_shot_scores(model, heads, cache, recs)
    assert scores.shape == (len(recs),) and np.isfinite(scores).all()
    assert np.all(np.abs(scores) <= 2.0)


def test_features_command_writes_a_cache(models, tmp_path, capsys):
    vlm, clip = models
    out = tmp_path / "cache.safetensors"
    rc = cogma_main(["features", "--vlm", str(vlm), "--clip", str(clip), "--synthetic", "2", "--seed", "3",
                     "--frames", "1", "--image-size", "56", "--out", str(out)])
    assert rc == 0 and out.is_file()
    report = json.loads(capsys.readouterr().out)
    assert report["dims"] == {"video": 32, "text": 32, "clinical": 16}


def test_unusable_model_folders_are_refused(models, tmp_path, capsys):
    vlm, clip = models
    with pytest.raises(FeatureError, match="no such VLM"):
        compute_features([], vlm_dir=tmp_path / "nothing")
    with pytest.raises(FeatureError, match="not supported"):
        compute_features([], vlm_dir=clip)  # a CLIP folder is not a VLM
    rc = cogma_main(["features", "--synthetic", "2", "--out", str(tmp_path / "x.safetensors")])
    assert rc == 2 and "give at least one of" in capsys.readouterr().err
