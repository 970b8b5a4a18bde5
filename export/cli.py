"""``cogma export CHECKPOINT --out DIR`` and ``cogma verify DIR [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="student checkpoint -> model bundle (.pte fp32/int8, .mlpackage, manifest, model card)",
        description="Export a student checkpoint to a verified model bundle: ExecuTorch fp32 and int8 programs, "
                    "a Core ML package, an ExecuTorch BundledProgram for on-phone parity checks, manifest.json and "
                    "MODEL_CARD.md. Calibration and held-out recordings are regenerated from the checkpoint's "
                    "training-data spec (synthetic cohorts) or given with --calibration-data/--heldout-data.")
    p.add_argument("checkpoint", type=Path, help="student checkpoint (.pt) from `cogma train`")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    p.add_argument("--zip", action="store_true", help="also write OUT.zip")
    p.add_argument("--calibration-data", type=Path, default=None,
                   help="dataset spec (YAML/JSON) of training recordings for int8 calibration")
    p.add_argument("--heldout-data", type=Path, default=None,
                   help="dataset spec (YAML/JSON) of held-out recordings for the parity checks")
    p.add_argument("--heldout-infants", type=int, default=None, help="infants in the generated held-out cohort (default 40)")
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "verify", help="check a model bundle against its PyTorch student on held-out recordings",
        description="Load a bundle (checksums, contract), then compare its .pte programs with the eager student on "
                    "held-out recordings (fp32 max abs diff <= 1e-4; int8 AUC drop <= 0.01 and correlation >= 0.99), "
                    "run the BundledProgram's test cases in the ExecuTorch runtime, and check the Core ML spec "
                    "against the manifest (Core ML prediction only on macOS). Exit status 1 if a check fails.")
    p.add_argument("bundle", type=Path, help="bundle folder or .zip")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="the student checkpoint the bundle was exported from (default: the path in its manifest)")
    p.add_argument("--heldout-data", type=Path, default=None, help="dataset spec of held-out recordings (default: as at export)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_verify)


def _read_spec(path: Path | None) -> dict | None:
    from .data import ExportDataError

    if path is None:
        return None
    if not path.is_file():
        raise ExportDataError(f"{path}: no such dataset spec")
    text = path.read_text(encoding="utf-8")
    try:
        import yaml

        spec = yaml.safe_load(text)
    except Exception as e:
        raise ExportDataError(f"{path}: not a YAML/JSON dataset spec ({e})") from None
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ExportDataError(f"{path}: a dataset spec is a mapping with a 'kind'")
    return spec


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _export(args: argparse.Namespace) -> int:
    from training.models.student import load_student

    from .bundle import sha256_file, zip_bundle
    from .data import HELDOUT_INFANTS, calibration_spec, heldout_spec, load_samples
    from .exporter import ExportError, check_meta, check_output_folder, export_bundle

    if args.heldout_infants is not None and args.heldout_infants < 2:
        raise ExportError("--heldout-infants must be at least 2 (the parity checks need typical and atypical infants)")
    check_output_folder(args.out, args.force)  # before minutes of work
    module, meta_obj = load_student(args.checkpoint)
    meta = meta_obj.to_dict()
    contract = check_meta(meta)
    cal_spec = _read_spec(args.calibration_data) or calibration_spec(meta)
    held_spec = _read_spec(args.heldout_data) or heldout_spec(meta, HELDOUT_INFANTS if args.heldout_infants is None else args.heldout_infants)
    _log(f"regenerating calibration recordings ({cal_spec.get('kind')}) and held-out recordings ({held_spec.get('kind')})")
    calibration = load_samples(cal_spec, contract)
    heldout = load_samples(held_spec, contract)
    source = {"checkpoint": {"path": _display_path(args.checkpoint), "sha256": sha256_file(args.checkpoint)},
              "calibration_data": cal_spec}
    report = export_bundle(module, meta, args.out, calibration=calibration, heldout=heldout, heldout_spec=held_spec,
                           source=source, force=args.force, log=_log)
    ver = report.verification
    print(f"wrote {report.out}: " + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in _top_level_sizes(report.files).items()))
    for c in ver["checks"]:
        print(f"  {c['name']:<20} {c['status']:<8} {'' if c['value'] is None else format(c['value'], '.4g')}"
              f"  ({c['limit']}{'; ' + c['detail'] if c['detail'] else ''})")
    if meta["not_for_clinical_use"]:
        print("synthetic data — not for clinical use")
    if args.zip:
        print(f"wrote {zip_bundle(report.out, report.out.with_suffix('.zip'))}")
    return 0 if ver["ok"] else 1


def _verify(args: argparse.Namespace) -> int:
    from training.models.student import load_student

    from .bundle import BundleError, load_bundle, sha256_file
    from .data import load_samples
    from .verify import run_checks

    bundle = load_bundle(args.bundle)
    src = bundle.manifest.get("source", {}).get("checkpoint", {})
    checkpoint = args.checkpoint or _find_checkpoint(src.get("path"))
    if checkpoint is None or not checkpoint.is_file():
        raise BundleError(
            f"verify compares the bundle with the student it was exported from; "
            f"{'its checkpoint ' + str(checkpoint) + ' is not here' if checkpoint else 'the manifest names no checkpoint'}"
            f" — pass --checkpoint PATH (sha256 {src.get('sha256', '?')[:12]}…)"
        )
    if src.get("sha256") and sha256_file(checkpoint) != src["sha256"]:
        raise BundleError(f"{checkpoint} is not the checkpoint this bundle was exported from (sha256 differs)")
    module, _ = load_student(checkpoint)
    spec = _read_spec(args.heldout_data) or (bundle.manifest.get("verification") or {}).get("heldout_data")
    if not spec:
        raise BundleError("the manifest records no held-out data spec; pass --heldout-data SPEC")
    samples = load_samples(spec, bundle.input_contract)
    report = run_checks(bundle.root, bundle.manifest, module, samples)
    report.heldout_data = spec
    if args.json:
        print(json.dumps({"bundle": str(args.bundle), "version": bundle.version, **report.to_dict()}, indent=2))
    else:
        print(f"bundle {args.bundle} (model {bundle.version}): checksums and contract OK")
        print(f"held-out: {report.n_recordings} recordings of {report.n_infants} infants; {report.platform}")
        print(report.table())
        print("all checks passed" if report.ok else "SOME CHECKS FAILED")
        if bundle.not_for_clinical_use:
            print(bundle.notice)
    return 0 if report.ok else 1


def _find_checkpoint(recorded: str | None) -> Path | None:
    """The manifest's checkpoint path, relative to the working directory or else to the repository."""
    if not recorded:
        return None
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / recorded).is_file():
            return base / recorded
    return Path(recorded)


def _display_path(p: Path) -> str:
    """Relative to the working directory when inside it (the shipped bundle must not name a home folder)."""
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(p)


def _top_level_sizes(files: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rel, size in files.items():
        top = rel.split("/", 1)[0]
        out[top] = out.get(top, 0) + size
    return out
