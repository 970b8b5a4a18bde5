"""MODEL_CARD.md of a bundle, written from its manifest (so the card and the files never disagree)."""

from __future__ import annotations

import json
from typing import Any

from .bundle import MODEL_BUNDLED, MODEL_INT8_PTE, MODEL_MLPACKAGE, MODEL_PTE

_METRIC_NAMES = {
    "auc": "AUC", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV",
    "brier": "Brier score", "ece": "Expected calibration error", "threshold": "Threshold",
    "n_recordings": "Recordings", "n_infants": "Infants", "prevalence": "Prevalence",
}


def render(manifest: dict, meta: dict | None = None) -> str:
    synthetic = manifest["not_for_clinical_use"]
    model = manifest["model"]
    contract = manifest["input_contract"]
    lines: list[str] = [f"# Model card: CoGMA student {model['version']}", ""]
    if synthetic:
        lines += ["> **Synthetic data — not for clinical use.** This model was trained on synthetic infant movements. "
                  "Its scores say nothing about a real child.", ""]
    lines += ["> The score is a screening aid, never a diagnosis. Any concern goes to a clinician trained in the "
              "General Movements Assessment (GMA).", ""]
    lines += [
        "## Model details", "",
        f"- Version: `{model['version']}`; {model['parameters']:,} parameters; architecture: "
        f"`{json.dumps(model.get('architecture', {}), sort_keys=True)}`",
        "- Input: raw MediaPipe Pose landmarks `[1, T, 33, 3]` (x, y normalized to the frame, visibility) and the "
        f"frame rate `[1]`; {contract['fps_min']:g}-{contract['fps_max']:g} fps, {contract['min_frames']} to "
        f"{contract['max_frames']} frames. Joint mapping, centring, scale normalisation, resampling and velocities "
        "happen inside the model.",
        "- Output: `[1, 3]` = risk (estimated probability of atypical general movements), risk_low, risk_high "
        "(its uncertainty interval)." + (f" {meta['interval']}." if meta and meta.get("interval") else ""),
        f"- Files: `{MODEL_PTE}` (ExecuTorch, XNNPACK, float32), `{MODEL_INT8_PTE}` (ExecuTorch, XNNPACK, int8: "
        f"{manifest['artifacts'][MODEL_INT8_PTE]['quantization']['recipe']}), `{MODEL_MLPACKAGE}` (Core ML "
        f"mlprogram, fp16 compute, float32 inputs/outputs, iOS 16+), `{MODEL_BUNDLED}` (ExecuTorch BundledProgram "
        "with test inputs and expected outputs for on-phone parity checks).",
        f"- Toolchain: {', '.join(f'{k} {v}' for k, v in manifest.get('toolchain', {}).items())}.",
        "",
        "## Intended use", "",
        f"{manifest['intended_use']} Used by parents or nurses with a phone recording of an infant lying on its back, "
        "together with a clinician who interprets the result. A risk at or above the decision threshold means: "
        "*ask a GMA-trained clinician to look at the movements*; a risk below it does not rule anything out.",
        "",
        "## Out-of-scope uses", "",
        "- Diagnosing cerebral palsy or any other condition, or deciding on treatment.",
        "- Replacing a GMA by a trained clinician, or reassuring parents whose infant worries them.",
        f"- Recordings outside the input contract: other pose estimators or joint schemas, or fewer than "
        f"{contract['min_frames']} frames — the app refuses them. The runtime reads {contract['fps_min']:g}-"
        f"{contract['fps_max']:g} fps and at most {contract['max_frames']} frames: the app thins faster "
        "recordings, interpolates slower ones (down to the quality check's minimum) and scores the first part "
        "of longer ones, and says so with the result.",
        "- Infants not lying on their back, crying or fussing, held, dressed so that limbs are hidden, or outside "
        "the writhing (term to ~8 weeks corrected) and fidgety (9-20 weeks corrected) age ranges.",
    ]
    if synthetic:
        lines.append("- Any use on real infants: this model has only seen synthetic movements.")
    lines += ["", "## Decision threshold", "",
              f"Threshold on risk: **{manifest['threshold']:.4f}**, chosen at this operating point: "
              f"{_inline(manifest['operating_point'])}.", ""]
    lines += ["## Training data", "", *_training_data(manifest["training_data"]), ""]
    lines += ["## Evaluation", "", *_metrics(manifest["metrics"]), ""]
    lines += ["## Export parity (this bundle vs the PyTorch model)", "", *_verification(manifest.get("verification")), ""]
    lines += [
        "## Limitations", "",
        "- Pose comes from MediaPipe Pose on a phone video; tracking errors, occlusion, poor light or a moving "
        "camera change the landmarks and so the score. The app's quality check refuses unscorable recordings, but "
        "cannot catch every error.",
        "- The uncertainty interval describes how consistently the recording scores, not a calibrated confidence "
        "interval of the true risk.",
        "- The int8 and Core ML (fp16) variants differ slightly from the float32 model (see export parity).",
        "- Metrics hold for the population and recording conditions of the evaluation data only; prevalence in "
        "the screened population changes PPV and NPV.",
    ]
    if synthetic:
        lines.append("- Synthetic movements follow published kinematic descriptions of GMA classes; real infants vary "
                     "in ways no generator captures. Figures on synthetic data are not evidence of clinical accuracy.")
    lines += [
        "", "## Ethical considerations", "",
        "- False reassurance is the main harm: a low score must never delay a referral that a parent or "
        "clinician thinks is needed. False alarms cause worry: results are shown with their uncertainty and a "
        "recommendation to see a clinician, never as a diagnosis.",
        "- Privacy: scoring runs on the phone; raw video never leaves it. Keypoints are shared only with the "
        "parents' opt-in consent, which can be withdrawn at any time.",
        "- Fairness: performance may differ by skin tone, lighting, clothing, gestational age and body size; "
        "these were not evaluated on real data for this model.",
        "- Every bundle states its training data; do not deploy a model whose training population does not match "
        "the infants it will screen.",
        "",
    ]
    return "\n".join(lines)


def _inline(d: Any) -> str:
    if isinstance(d, dict):
        return ", ".join(f"{k} = {_fmt(v)}" for k, v in d.items())
    return _fmt(d)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"[{_fmt(float(v[0]))}, {_fmt(float(v[1]))}]"
    if isinstance(v, dict):
        return "{" + _inline(v) + "}"
    return str(v)


def _training_data(td: Any) -> list[str]:
    if not isinstance(td, dict):
        return [str(td)]
    out = []
    text = td.get("text") or td.get("description")
    if text:
        out += [str(text), ""]
    rest = {k: v for k, v in td.items() if k not in ("text", "description")}
    if rest:
        out += ["```json", json.dumps(rest, indent=2, sort_keys=True, default=str), "```"]
    return out


def _metrics(metrics: Any) -> list[str]:
    """A table for every block of metrics (a dict holding an AUC), its provenance text kept beside it."""
    if not isinstance(metrics, dict) or not metrics:
        return ["No evaluation metrics were recorded for this model."]
    blocks = _metric_blocks(metrics, "")
    out: list[str] = []
    for where, block in blocks:
        title = where or "evaluation"
        out += [f"**{title}**", "", "| metric | value | 95% CI |", "|---|---|---|"]
        for key, label in _METRIC_NAMES.items():
            if key in block and not isinstance(block[key], (dict, list)):
                ci = block.get(f"{key}_ci")
                out.append(f"| {label} | {_fmt(block[key])} | {_fmt(ci) if ci is not None else ''} |")
        for key in ("provenance", "data", "source", "split", "note"):
            if isinstance(block.get(key), (str, dict)):
                out += ["", f"Data provenance: {_fmt(block[key]) if isinstance(block[key], dict) else block[key]}"]
        out.append("")
    provenance = metrics.get("provenance") or metrics.get("data_provenance")
    if provenance and not any(w == "" for w, _ in blocks):
        out.append(f"Data provenance: {_fmt(provenance) if isinstance(provenance, dict) else provenance}")
    if isinstance(metrics.get("evaluated_on"), str):
        out += ["", f"Evaluated on: {metrics['evaluated_on']}."]
    if not blocks:
        out += ["```json", json.dumps(metrics, indent=2, sort_keys=True, default=str), "```"]
    return out


def _metric_blocks(d: dict, where: str) -> list[tuple[str, dict]]:
    found = [(where, d)] if "auc" in d else []
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("per_age_band",):
            found += _metric_blocks(v, f"{where} / {k}" if where else k)
    return found


def _verification(ver: Any) -> list[str]:
    if not isinstance(ver, dict):
        return ["Not verified."]
    out = [f"On {ver['n_recordings']} held-out recordings of {ver['n_infants']} infants ({ver['platform']}):", "",
           "| check | result | value | limit |", "|---|---|---|---|"]
    for c in ver["checks"]:
        value = "" if c["value"] is None else _fmt(float(c["value"]))  # 4 digits: r = 0.99991 must not read "1"
        out.append(f"| {c['name']} | {c['status']} | {value} | {c['limit']}" + (f" ({c['detail']})" if c["detail"] else "") + " |")
    return out
