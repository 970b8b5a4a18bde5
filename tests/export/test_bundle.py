"""load_bundle refuses tampered, truncated, missing-file and incompatible bundles; contract checks."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from export.bundle import (
    MANIFEST,
    MODEL_INT8_PTE,
    MODEL_PTE,
    BundleError,
    load_bundle,
    seal_manifest,
    zip_bundle,
)


def _manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text())


def _write_manifest(root: Path, manifest: dict, reseal: bool = True) -> None:
    if reseal:
        manifest = seal_manifest(manifest)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2))


def test_loads_and_exposes_contract(bundle_dir):
    b = load_bundle(bundle_dir)
    assert b.version == "standin-0.1"
    assert b.threshold == pytest.approx(0.42)
    assert b.not_for_clinical_use and "not for clinical use" in b.notice
    c = b.input_contract
    assert (c.schema, c.fps_min, c.fps_max, c.min_frames, c.max_frames) == ("mediapipe33", 15.0, 30.0, 300, 5400)
    assert b.path(MODEL_PTE).is_file() and b.path("model.mlpackage").is_dir()
    with pytest.raises(BundleError, match="no 'model.onnx'"):
        b.path("model.onnx")


def test_manifest_hashes_every_file_including_mlpackage_members(bundle_dir):
    files = _manifest(bundle_dir)["files"]
    on_disk = sorted(p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file())
    assert sorted(files) == sorted(set(on_disk) - {MANIFEST})
    assert any(k.startswith("model.mlpackage/") and k.endswith("weight.bin") for k in files)
    assert all(len(v["sha256"]) == 64 and v["bytes"] > 0 for v in files.values())


def test_flipped_byte_is_refused(bundle_copy):
    p = bundle_copy / MODEL_PTE
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.pte was altered or corrupted"):
        load_bundle(bundle_copy)


def test_mlpackage_member_tampering_is_refused(bundle_copy):
    weights = next(bundle_copy.glob("model.mlpackage/**/weight.bin"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weight.bin was altered"):
        load_bundle(bundle_copy)


def test_truncated_file_is_refused(bundle_copy):
    p = bundle_copy / MODEL_INT8_PTE
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(BundleError, match="model_int8.pte is truncated"):
        load_bundle(bundle_copy)


def test_missing_file_is_refused(bundle_copy):
    (bundle_copy / "MODEL_CARD.md").unlink()
    with pytest.raises(BundleError, match="missing MODEL_CARD.md"):
        load_bundle(bundle_copy)


def test_missing_mlpackage_is_refused(bundle_copy):
    shutil.rmtree(bundle_copy / "model.mlpackage")
    with pytest.raises(BundleError, match="incomplete: missing model.mlpackage/"):
        load_bundle(bundle_copy)


def test_unlisted_extra_file_is_refused(bundle_copy):
    (bundle_copy / "model.mlpackage" / "evil.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match="does not list.*evil.bin"):
        load_bundle(bundle_copy)


def test_edited_manifest_is_refused(bundle_copy):
    m = _manifest(bundle_copy)
    m["threshold"] = 0.99  # someone lowers the number of referrals by hand
    _write_manifest(bundle_copy, m, reseal=False)
    with pytest.raises(BundleError, match="manifest.json was altered"):
        load_bundle(bundle_copy)


def test_truncated_manifest_is_refused(bundle_copy):
    text = (bundle_copy / MANIFEST).read_text()
    (bundle_copy / MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_copy)


def test_missing_manifest_is_refused(bundle_copy):
    (bundle_copy / MANIFEST).unlink()
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=99), "format version 99 is newer"),
        (lambda m: m["input_contract"].update(schema="coco17"), "reads 'coco17' landmarks"),
        (lambda m: m["input_contract"].update(min_frames=6000), "frame range 6000..5400 is empty"),
        (lambda m: m["output_contract"].update(names=["p"]), "outputs are \\['p'\\]"),
        (lambda m: m["files"].pop("model.pte"), "does not list model.pte"),
        (lambda m: m.update(threshold=1.5), "not a probability"),
        (lambda m: m.update(notice=""), "must say so"),
        (lambda m: m.update(format="something.else"), "not a CoGMA model bundle"),
    ],
)
def test_incompatible_manifest_is_refused(bundle_copy, edit, message):
    m = _manifest(bundle_copy)
    m.pop("manifest_sha256")
    edit(m)
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_zip_round_trip_and_refusals(bundle_dir, tmp_path):
    z = zip_bundle(bundle_dir, tmp_path / "bundle.zip")
    b = load_bundle(z)
    assert b.version == "standin-0.1" and (b.root / MODEL_PTE).is_file()
    # a zip of the folder itself (one top-level directory) loads too
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(z) as src, zipfile.ZipFile(nested, "w") as dst:
        for info in src.infolist():
            dst.writestr("standin_bundle/" + info.filename, src.read(info))
    assert load_bundle(nested).version == "standin-0.1"

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(truncated)

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../outside.txt", "x")
        zf.writestr(MANIFEST, "{}")
    with pytest.raises(BundleError, match="outside the bundle"):
        load_bundle(evil)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no such model bundle"):
        load_bundle(tmp_path / "nothing")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(BundleError, match="neither a folder nor a zip"):
        load_bundle(junk)


def test_check_recording_refuses_what_is_outside_the_contract(bundle_dir, cohorts, make_recording):
    b = load_bundle(bundle_dir)
    sample = cohorts[1][0]
    b.check_recording(make_recording(sample))  # fine as it is

    with pytest.raises(BundleError, match=r"too short for this model: 150 frames .*at least 300"):
        b.check_recording(make_recording(sample.cropped(150)))
    with pytest.raises(BundleError, match=r"too long for this model: 6000 frames .*at most 5400"):
        b.check_recording(make_recording(sample.cropped(6000)))
    with pytest.raises(BundleError, match=r"frame rate 60 fps is outside .*15-30 fps"):
        b.check_recording(make_recording(sample, fps=60.0))
    coco = make_recording(sample).to_schema("coco17")
    with pytest.raises(BundleError, match="joint schema 'coco17'.*reads 'mediapipe33'"):
        b.check_recording(coco)


def test_check_landmarks_refuses_bad_arrays(bundle_dir):
    b = load_bundle(bundle_dir)
    good = np.full((400, 33, 3), 0.5, np.float32)
    b.check_landmarks(good, 30.0)
    with pytest.raises(BundleError, match=r"\[frames, 33, 3\]"):
        b.check_landmarks(np.zeros((400, 17, 3), np.float32), 30.0)
    with pytest.raises(BundleError, match="NaN"):
        bad = good.copy()
        bad[3, 4, 0] = np.nan
        b.check_landmarks(bad, 30.0)
    with pytest.raises(BundleError, match="finite number"):
        b.check_landmarks(good, float("nan"))
    with pytest.raises(BundleError, match="numpy array"):
        b.check_landmarks(good.tolist(), 30.0)
    with pytest.raises(BundleError, match="floating point"):
        b.check_landmarks(good.astype(np.int32), 30.0)
