"""The student's export contract: torch.export with a dynamic T, parity with eager, checkpoint round trip."""

import numpy as np
import pytest
import torch
from torch.export import Dim, export

from training.models import StudentError, load_student, save_student, student_demo
from training.models.student import (
    FPS_MAX, FPS_MIN, MAX_FRAMES, MIN_FRAMES, StudentMeta, input_contract, output_contract,
)

DEMO = __import__("pathlib").Path(__file__).resolve().parents[2] / "training" / "demo" / "student.pt"


def _landmarks(t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 0.4 + 0.2 * torch.rand(1, t, 33, 3, generator=g)
    x[..., 2] = 0.6 + 0.4 * torch.rand(1, t, 33, generator=g)
    return x


@pytest.fixture(scope="module")
def exported():
    torch.manual_seed(0)
    model = student_demo().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so parity means something
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    program = export(model, (_landmarks(900, 0), torch.tensor([30.0])),
                     dynamic_shapes={"landmarks": {1: Dim("T", min=MIN_FRAMES, max=MAX_FRAMES)}, "fps": None})
    return model, program


# 30 s at the lowest rate, 5 min at 25 fps, 10 min at 15 fps; MAX_FRAMES (10 min at 60 fps) is the exported bound
@pytest.mark.parametrize("frames,fps", [(MIN_FRAMES, FPS_MIN), (7500, 25.0), (9000, FPS_MIN), (2 * MIN_FRAMES, FPS_MAX)])
def test_exported_student_matches_eager_from_30_s_to_10_min(exported, frames, fps):
    model, program = exported
    x, f = _landmarks(frames, frames), torch.tensor([fps])
    with torch.no_grad():
        eager = model(x, f)
        ours = program.module()(x, f)
    assert ours.shape == (1, 3)
    np.testing.assert_allclose(ours.numpy(), eager.numpy(), atol=1e-5)
    risk, low, high = ours[0].tolist()
    assert 0.0 <= low <= risk <= high <= 1.0


def test_exported_graph_has_no_data_dependent_ops(exported):
    _, program = exported
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    banned = {"aten.nonzero.default", "aten.unfold.default", "aten.item.default", "aten._local_scalar_dense.default"}
    assert not ops & banned
    assert program.range_constraints  # T stayed symbolic
    (bounds,) = program.range_constraints.values()
    assert (bounds.lower, bounds.upper) == (MIN_FRAMES, MAX_FRAMES)


def _meta() -> StudentMeta:
    return StudentMeta(version="test", architecture={}, input_contract=input_contract(),
                       output_contract=output_contract(), threshold=0.3,
                       operating_point={"target_sensitivity": 0.9, "sensitivity": 0.9, "specificity": 0.5,
                                        "chosen_on": "test"},
                       metrics={}, training_data={"text": "none"}, not_for_clinical_use=True)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = student_demo().eval()
    path = save_student(model, _meta(), tmp_path / "s.pt")
    loaded, meta = load_student(path)
    assert not loaded.training and meta.threshold == 0.3 and meta.to_dict()["not_for_clinical_use"] is True
    x = _landmarks(600, 3)
    np.testing.assert_allclose(loaded(x, torch.tensor([30.0])).detach().numpy(),
                               model(x, torch.tensor([30.0])).detach().numpy(), atol=1e-6)
    with pytest.raises(StudentError, match="no such"):
        load_student(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(StudentError, match="not a readable"):
        load_student(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(StudentError, match="not a CoGMA student"):
        load_student(tmp_path / "other.pt")


def test_shipped_demo_student_keeps_the_contract():
    model, meta = load_student(DEMO)
    assert sum(p.numel() for p in model.parameters()) <= 100_000
    assert meta.not_for_clinical_use and "not for clinical use" in meta.notice
    assert meta.input_contract["schema"] == "mediapipe33"
    assert meta.output_contract["names"] == ["risk", "risk_low", "risk_high"]
    assert 0.0 < meta.threshold < 1.0 and meta.operating_point["target_sensitivity"] == 0.9
    assert meta.training_data["spec"]["seed"] is not None
    y = model(_landmarks(900, 1), torch.tensor([30.0]))
    assert y.shape == (1, 3)


def test_exported_student_converts_to_core_ml(exported):
    """Conversion only: Core ML cannot run predictions on Linux."""
    import coremltools as ct

    _, program = exported
    mlmodel = ct.convert(
        program.run_decompositions({}),
        inputs=[ct.TensorType(name="landmarks", shape=(1, ct.RangeDim(MIN_FRAMES, MAX_FRAMES, 900), 33, 3),
                              dtype=np.float32),
                ct.TensorType(name="fps", shape=(1,), dtype=np.float32)],
        convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
    )
    spec = mlmodel.get_spec()
    assert [i.name for i in spec.description.input] == ["landmarks", "fps"]
