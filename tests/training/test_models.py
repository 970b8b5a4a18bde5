"""Skeleton models: graph, preprocessing invariances, shapes, parameter budget."""

import numpy as np
import pytest
import torch

from skeleton.mapping import convert, get_mapping
from skeleton.schemas import INFANT_20
from training.models import FACTORIES, build_model, count_parameters, spatial_graph
from training.models.preprocess import FusedSkeletonPreprocess, SkeletonPreprocess
from training.models.student import MAX_PARAMETERS, MediaPipeToInfant20, student_demo, student_tiny


def _moving_infant20(t: int = 600, fps: float = 30.0, seed: int = 0) -> np.ndarray:
    """An Infant-20 body with limbs oscillating at 1 Hz, all joints visible."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, size=(20, 2))
    base[INFANT_20["neck"]] = (0.5, 0.35)
    base[INFANT_20["mid_hip"]] = (0.5, 0.65)
    time = np.arange(t)[:, None] / fps
    phase = rng.uniform(0, 2 * np.pi, size=20)
    xy = base[None] + 0.03 * np.stack([np.sin(2 * np.pi * time + phase), np.cos(2 * np.pi * time + phase)], -1)
    return np.concatenate([xy, np.ones((t, 20, 1))], -1).astype(np.float32)


def test_graph_partitions_cover_every_edge_once():
    g = spatial_graph()
    assert g.partitions.shape == (3, 20, 20)
    np.testing.assert_allclose(g.partitions.sum(axis=(0, 1)), 1.0, atol=1e-6)  # each joint averages what it gets
    links = (g.partitions[1] > 0) | (g.partitions[2] > 0)
    for a, b in INFANT_20.edges:
        assert links[a, b] and links[b, a]
    assert g.parents[INFANT_20.root] == INFANT_20.root


def test_every_factory_builds_and_the_student_fits_the_budget():
    for name in FACTORIES:
        model = build_model(name)
        assert count_parameters(model) > 0
    assert count_parameters(student_demo()) <= MAX_PARAMETERS
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet50")


def test_mapping_buffer_equals_skeleton_mapping():
    rng = np.random.default_rng(1)
    mp = rng.uniform(0, 1, size=(7, 33, 3)).astype(np.float32)
    ours = MediaPipeToInfant20()(torch.from_numpy(mp)[None])[0].numpy()
    np.testing.assert_allclose(ours, convert(mp, "mediapipe33", "infant20"), atol=1e-6)
    assert np.array_equal(MediaPipeToInfant20().weights.numpy(), get_mapping("mediapipe33", "infant20").weights)


def test_preprocess_is_invariant_to_translation_scale_and_rotation():
    kp = _moving_infant20()
    pre = SkeletonPreprocess()
    fps = torch.tensor([30.0])
    ref, mask = pre(torch.from_numpy(kp)[None], fps, grid_len=300)
    moved = kp.copy()
    centre = np.array([0.5, 0.5])
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved[..., :2] = ((kp[..., :2] - centre) @ rot.T) * 0.6 + centre + 0.1
    out, _ = pre(torch.from_numpy(moved.astype(np.float32))[None], fps, grid_len=300)
    assert mask.min() == 1.0
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-4)


def test_preprocess_puts_30_and_60_fps_on_the_same_grid():
    pre = SkeletonPreprocess()
    kp30 = _moving_infant20(t=600, fps=30.0)
    kp60 = _moving_infant20(t=1200, fps=60.0)
    f30, m30 = pre(torch.from_numpy(kp30)[None], torch.tensor([30.0]))
    f60, m60 = pre(torch.from_numpy(kp60)[None], torch.tensor([60.0]))
    n = int(m30.sum())
    assert n == int(m60.sum()) == 300  # 20 s at 15 Hz
    # positions and velocities (body scales per second) agree; central differences differ slightly
    np.testing.assert_allclose(f60[..., :n, :].numpy(), f30[..., :n, :].numpy(), atol=0.05)
    assert m30[0, n:].sum() == 0 and m60[0, n:].sum() == 0  # the rest of the grid is marked as outside


def test_invisible_joints_and_padding_do_not_leak():
    pre = SkeletonPreprocess()
    kp = _moving_infant20(t=450)
    padded = np.concatenate([kp, np.zeros((150, 20, 3), np.float32)])
    a, ma = pre(torch.from_numpy(kp)[None], torch.tensor([30.0]), grid_len=225)
    b, mb = pre(torch.from_numpy(padded)[None], torch.tensor([30.0]), lengths=torch.tensor([450]), grid_len=225)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    hidden = kp.copy()
    hidden[:, INFANT_20["left_wrist"], 2] = 0.0
    c, _ = pre(torch.from_numpy(hidden)[None], torch.tensor([30.0]))
    assert torch.all(c[0, :, :, INFANT_20["left_wrist"]] == 0)


def _fused_as_reference(feats: torch.Tensor) -> torch.Tensor:
    """Fused ``[B, G, 7 * 20]`` -> the reference layout ``[B, 7, G, 20]``."""
    b, g, _ = feats.shape
    return feats.reshape(b, g, 7, 20).permute(0, 2, 1, 3)


@pytest.mark.parametrize("fps", [30.0, 25.0, 24.0])
def test_fused_preprocess_equals_the_reference(fps):
    """The phone's fused preprocessing computes the teacher's features, hidden joints included."""
    kp = _moving_infant20(t=700, fps=fps, seed=3)
    rng = np.random.default_rng(4)
    kp[rng.uniform(size=kp.shape[:2]) < 0.1, 2] = 0.2  # scattered low-visibility joints
    kp[100:130, INFANT_20["neck"], 2] = 0.0  # a gap in the trunk: masked frames
    x, f = torch.from_numpy(kp)[None], torch.tensor([fps])
    ref, ref_mask = SkeletonPreprocess()(x, f, grid_len=400)
    ours, mask = FusedSkeletonPreprocess()(x, f, grid_len=400)
    assert 0 < ref_mask.sum() < 400 and ref_mask.min() == 0.0
    np.testing.assert_array_equal(mask.numpy(), ref_mask.numpy())
    np.testing.assert_allclose(_fused_as_reference(ours).numpy(), ref.numpy(), atol=1e-4)


def test_fused_preprocess_folds_the_mediapipe_mapping():
    rng = np.random.default_rng(5)
    mp = np.concatenate([rng.uniform(0.3, 0.7, (600, 33, 2)), rng.uniform(0.3, 1.0, (600, 33, 1))], -1)
    x, f = torch.from_numpy(mp.astype(np.float32))[None], torch.tensor([30.0])
    pre = FusedSkeletonPreprocess()
    ours, mask = pre(x, f, grid_len=300, schema="mediapipe33")
    ref, ref_mask = pre(MediaPipeToInfant20()(x), f, grid_len=300, schema="infant20")
    np.testing.assert_array_equal(mask.numpy(), ref_mask.numpy())
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)


def test_student_eval_folding_equals_the_training_path():
    """Eval mode folds batch norms, rotation and the stem into constants: same numbers as unfolded."""
    torch.manual_seed(0)
    model = student_tiny()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    kp = torch.from_numpy(_moving_infant20(t=600, seed=6))[None]
    with torch.no_grad():
        folded = model.score_infant20(kp, torch.tensor([30.0]))
        model.training = True  # the model's own branch only: batch norms and dropout stay in eval mode
        unfolded = model.score_infant20(kp, torch.tensor([30.0]))
    np.testing.assert_allclose(folded.window_logits.numpy(), unfolded.window_logits.numpy(), atol=1e-4)


def test_student_forward_on_mediapipe_equals_scoring_the_mapped_skeleton():
    """The phone's entry point (padded grid, folded mapping) scores like the training entry point."""
    torch.manual_seed(0)
    model = student_demo().eval()
    rng = np.random.default_rng(7)
    mp = np.concatenate([rng.uniform(0.4, 0.6, (900, 33, 2)), np.ones((900, 33, 1))], -1).astype(np.float32)
    x, f = torch.from_numpy(mp)[None], torch.tensor([30.0])
    with torch.no_grad():
        phone = model(x, f)
        out = model.score_infant20(MediaPipeToInfant20()(x), f, grid_len=450)
    np.testing.assert_allclose(phone.numpy(), model.calibrated(out.logit, out.logit_sd).numpy(), atol=1e-5)


def test_student_output_is_a_probability_with_an_interval():
    torch.manual_seed(0)
    model = student_demo().eval()
    mp = torch.rand(1, 900, 33, 3)
    mp[..., 2] = 1.0
    y = model(mp, torch.tensor([30.0]))
    assert y.shape == (1, 3)
    risk, low, high = y[0].tolist()
    assert 0.0 <= low <= risk <= high <= 1.0


def test_student_scores_a_padded_batch_like_single_recordings():
    torch.manual_seed(0)
    model = student_demo().eval()
    a = torch.from_numpy(_moving_infant20(t=600, seed=1))[None]
    b = torch.from_numpy(_moving_infant20(t=750, seed=2))[None]
    batch = torch.zeros(2, 750, 20, 3)
    batch[0, :600], batch[1] = a[0], b[0]
    with torch.no_grad():
        one = model.score_infant20(a, torch.tensor([30.0])).logit
        both = model.score_infant20(batch, torch.tensor([30.0, 30.0]), lengths=torch.tensor([600, 750])).logit
        two = model.score_infant20(b, torch.tensor([30.0])).logit
    np.testing.assert_allclose(both.numpy(), torch.cat([one, two]).numpy(), atol=1e-4)


@pytest.mark.parametrize("name", ["teacher_tiny", "stgcn_tiny"])
def test_windowed_models_give_one_score_per_recording(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    kp = torch.from_numpy(np.stack([_moving_infant20(t=600, seed=s) for s in range(2)]))
    out = model(kp, torch.tensor([30.0, 25.0]))
    assert out.logit.shape == (2,)
    assert out.embedding.shape == (2, model.embed_dim)
    np.testing.assert_allclose(out.window_weights.sum(dim=1).detach().numpy(), 1.0, atol=1e-5)


def test_student_batch_preprocessing_equals_one_recording_at_a_time():
    """Training scores a padded batch in one pass; the phone's program does one recording: same numbers,
    in training mode too."""
    torch.manual_seed(0)
    model = student_demo()
    recs = [_moving_infant20(t=t, fps=fps, seed=s) for t, fps, s in ((600, 30.0, 1), (750, 25.0, 2), (700, 24.0, 3))]
    batch = torch.zeros(3, 750, 20, 3)
    for i, r in enumerate(recs):
        batch[i, : len(r)] = torch.from_numpy(r)
    fps, lengths = torch.tensor([30.0, 25.0, 24.0]), torch.tensor([600, 750, 700])
    pre = model.preprocess
    together = pre.parts_batch(batch, fps, lengths, 400, "infant20")
    for i, r in enumerate(recs):
        alone = pre.parts(torch.from_numpy(r), fps[i: i + 1], 400, "infant20")
        for name, a, b in zip(alone._fields, alone, together):
            np.testing.assert_allclose(b[i].numpy(), a.reshape(b[i].shape).numpy(), atol=1e-5, err_msg=name)
    model.train()
    torch.manual_seed(1)
    one = model.score_parts(pre.parts(torch.from_numpy(recs[0]), fps[:1], 400, "infant20"))
    torch.manual_seed(1)
    first = model.score_parts(pre.parts_batch(batch[:1, :600], fps[:1], lengths[:1], 400, "infant20"))
    np.testing.assert_allclose(one.window_logits.detach().numpy(), first.window_logits.detach().numpy(), atol=1e-5)
