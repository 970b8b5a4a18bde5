"""Weights: random checkpoints in the released key layout load strictly; conversion round-trips."""

from __future__ import annotations

import pytest
import torch

from server_animator.animator import loading
from server_animator.animator.configs import build_components


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return loading.write_random_released(tmp_path_factory.mktemp("weights") / "released", "tiny", seed=7, step=26500)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_released_layout_is_found_and_loads_every_weight(released):
    location = loading.find_weights(released)
    assert location.kind == "released" and location.released.step == "26500"
    assert location.released.unet.name == "unet-26500.pth"
    state = torch.load(location.released.unet, weights_only=True)
    assert any(k.endswith("attn2.processor.id_to_k.weight") for k in state)  # released key names
    pipe = loading.load_pipeline(released)
    expected = build_components("tiny", seed=7)
    for name in ("unet", "vae", "image_encoder", "pose_net", "face_encoder"):
        assert _same_state(getattr(pipe, name), expected[name]), name


def test_conversion_round_trip_gives_identical_outputs(released, tmp_path, reference_64, pose_64):
    converted = loading.convert_released(released, tmp_path / "converted", torch_dtype=torch.float32)
    assert loading.find_weights(converted).kind == "converted"
    assert (converted / "pose_net" / "config.json").is_file() and (converted / "face_encoder").is_dir()
    a, b = loading.load_pipeline(released), loading.load_pipeline(converted)
    for name in ("unet", "vae", "image_encoder", "pose_net", "face_encoder"):
        assert _same_state(getattr(a, name), getattr(b, name)), name
    run = dict(height=64, width=64, num_inference_steps=2, output_type="latent")
    out_a = a(reference_64, pose_64[:8], generator=torch.Generator().manual_seed(0), **run).frames
    out_b = b(reference_64, pose_64[:8], generator=torch.Generator().manual_seed(0), **run).frames
    assert torch.equal(out_a, out_b)


def test_mismatched_checkpoint_is_refused_with_the_differing_keys(released, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(released, broken)
    ckpt = next(broken.rglob("unet-*.pth"))
    state = torch.load(ckpt, weights_only=True)
    state = {k: v for k, v in state.items() if ".processor." not in k}  # a stock SVD UNet: no ID projections
    torch.save(state, ckpt)
    with pytest.raises(loading.WeightsError, match=r"unet-26500.pth does not match .*missing keys \d+ \(e.g. .*id_to_"):
        loading.load_pipeline(broken)


def test_missing_or_corrupt_weights_are_clear_errors(released, tmp_path):
    with pytest.raises(loading.WeightsError, match="does not exist"):
        loading.find_weights(tmp_path / "nowhere")
    with pytest.raises(loading.WeightsError, match=r"missing .*pose_net-<step>.pth"):
        loading.find_weights(released / "svd")
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(released, corrupt)
    next(corrupt.rglob("pose_net-*.pth")).write_bytes(b"not a checkpoint")
    with pytest.raises(loading.WeightsError, match="cannot read checkpoint"):
        loading.load_pipeline(corrupt)
