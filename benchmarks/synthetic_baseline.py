"""How hard is the synthetic cohort? The hand-crafted baseline's AUC, grouped by infant.

For each cohort (default, hidden, writhing-only, fidgety-only): generate it, compute
``skeleton.kinematics.kinematic_features`` for every recording, and evaluate a logistic regression
with GroupKFold cross-validation by infant (per-recording AUC: mean over folds, and pooled out-of-fold
with a bootstrap-over-infants 95 % CI). The same is done with the descriptive structure features added
(``structure_features``: L-R synchrony, direction entropy, curvature, ...) as a rough indication of
how much signal lies in movement structure beyond speed statistics. Also a per-class feature table.

Usage: python benchmarks/synthetic_baseline.py [--quick] [--workers 2]
Writes benchmarks/results/synthetic_baseline.json. CPU only; no torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skeleton.kinematics import kinematic_features, structure_features
from skeleton.synthetic import GENERATOR_VERSION, MOVEMENT_CLASSES, CohortConfig, plan_cohort, synthesize

RESULTS = Path(__file__).parent / "results" / "synthetic_baseline.json"
TABLE_FEATURES = ("wrist_speed_mean", "wrist_speed_cv", "wrist_excursion", "lr_speed_corr_arms",
                  "lr_speed_corr_legs", "direction_entropy", "velocity_anisotropy", "curvature", "accel_kurtosis", "fidgety_coherent", "fidgety_multidirectional",
                  "spectral_peakedness")
TRUNK_PER_BL = 0.325  # trunk length as a share of body length (the generator's mean), for BL/s conversions


def _featurize(spec: dict) -> dict:
    args = {k: v for k, v in spec.items() if k != "file"}
    rec = synthesize(**args)
    return {"kin": kinematic_features(rec), "struct": structure_features(rec)}


def cohort_features(cfg: CohortConfig, workers: int) -> dict:
    plan = plan_cohort(cfg)
    t0 = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            feats = list(pool.map(_featurize, plan, chunksize=4))
    else:
        feats = [_featurize(s) for s in plan]
    kin_names = list(feats[0]["kin"])
    struct_names = list(feats[0]["struct"])
    return {
        "kin": np.array([[f["kin"][k] for k in kin_names] for f in feats]),
        "struct": np.array([[f["struct"][k] for k in struct_names] for f in feats]),
        "kin_names": kin_names, "struct_names": struct_names,
        "y": np.array([int(s["kind"] in ("poor_repertoire", "cramped_synchronized", "chaotic", "absent_fidgety"))
                       for s in plan]),
        "groups": np.array([s["infant_id"] for s in plan]),
        "classes": np.array([s["kind"] for s in plan]),
        "severity": np.array([s["severity"] for s in plan]),
        "bands": np.array([int(s["kind"] in ("normal_fidgety", "absent_fidgety")) for s in plan]),
        "seconds": float(sum(s["seconds"] for s in plan)),
        "elapsed_s": time.perf_counter() - t0,
    }


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _model():
    return make_pipeline(FunctionTransformer(_signed_log), StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))


def grouped_auc(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, bands: np.ndarray | None = None, folds: int = 5,
    n_boot: int = 1000, seed: int = 0,
) -> dict:
    """Per-fold AUCs and the pooled out-of-fold AUC with a bootstrap-over-infants 95 % CI.

    With ``bands`` (the age band of each recording, known from its corrected age), one model is fitted
    per band: writhing-age and fidgety-age movements differ, and a linear model can't switch by itself.
    """
    bands = np.zeros(len(y), dtype=int) if bands is None else bands
    oof = np.zeros(len(y))
    fold_aucs = []
    for tr, te in GroupKFold(n_splits=folds).split(X, y, groups):
        for b in np.unique(bands):
            tr_b, te_b = tr[bands[tr] == b], te[bands[te] == b]
            if te_b.size == 0:
                continue
            if len(set(y[tr_b])) < 2:
                oof[te_b] = y[tr_b].mean() if tr_b.size else 0.5
                continue
            oof[te_b] = _model().fit(X[tr_b], y[tr_b]).predict_proba(X[te_b])[:, 1]
        if len(set(y[te])) == 2:
            fold_aucs.append(roc_auc_score(y[te], oof[te]))
    pooled = roc_auc_score(y, oof)
    rng = np.random.default_rng(seed)
    infants = np.unique(groups)
    index = {g: np.flatnonzero(groups == g) for g in infants}
    boots = []
    for _ in range(n_boot):
        pick = np.concatenate([index[g] for g in rng.choice(infants, size=infants.size)])
        if len(set(y[pick])) == 2:
            boots.append(roc_auc_score(y[pick], oof[pick]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"fold_mean": float(np.mean(fold_aucs)), "fold_sd": float(np.std(fold_aucs)), "pooled": float(pooled),
            "ci95": [float(lo), float(hi)], "folds": [float(a) for a in fold_aucs]}


def single_feature_effects(X: np.ndarray, names: list[str], y: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Effect size (Cohen's d on infant means) and AUC of each single feature."""
    out = []
    infants = np.unique(groups)
    for j, name in enumerate(names):
        m = np.array([X[groups == g, j].mean() for g in infants])
        lab = np.array([y[groups == g][0] for g in infants])
        a, b = m[lab == 1], m[lab == 0]
        sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if a.size > 1 and b.size > 1 else np.nan
        d = (a.mean() - b.mean()) / sd if sd and np.isfinite(sd) and sd > 0 else 0.0
        auc = roc_auc_score(y, X[:, j]) if len(set(y)) == 2 else 0.5
        out.append({"feature": name, "d": float(d), "auc": float(max(auc, 1 - auc))})
    return sorted(out, key=lambda r: -abs(r["d"]))


def class_table(data: dict) -> dict:
    names = data["kin_names"] + data["struct_names"]
    X = np.concatenate([data["kin"], data["struct"]], axis=1)
    table = {}
    for cls in MOVEMENT_CLASSES:
        sel = data["classes"] == cls
        if not sel.any():
            continue
        table[cls] = {"n": int(sel.sum())}
        for f in TABLE_FEATURES:
            v = X[sel, names.index(f)]
            table[cls][f] = [float(v.mean()), float(v.std())]
    return table


def evaluate(name: str, cfg: CohortConfig, workers: int) -> dict:
    data = cohort_features(cfg, workers)
    y, g = data["y"], data["groups"]
    both = np.concatenate([data["kin"], data["struct"]], axis=1)
    res = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "recordings": int(len(y)), "infants": int(len(np.unique(g))), "atypical_recordings": int(y.sum()),
        "hours": data["seconds"] / 3600, "generate_and_featurize_s": data["elapsed_s"],
        "baseline": grouped_auc(data["kin"], y, g, data["bands"]),
        "baseline_plus_structure": grouped_auc(both, y, g, data["bands"]),
        "single_feature_effects": single_feature_effects(both, data["kin_names"] + data["struct_names"], y, g)[:8],
        "class_table": class_table(data),
    }
    return res


def _fmt_auc(r: dict) -> str:
    return f"{r['fold_mean']:.3f} ± {r['fold_sd']:.3f} | {r['pooled']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller cohorts (60 infants) for a fast look")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--only", nargs="*", help="names of cohorts to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="cohorts per setting (seed, seed+100, ...); AUCs vary by cohort")
    ap.add_argument("--infants", type=int, help="cohort size (default: the CohortConfig default)")
    ap.add_argument("--prevalence", type=float, help="share of atypical infants (default: CohortConfig's)")
    args = ap.parse_args(argv)
    base = CohortConfig(seed=args.seed)
    if args.quick:
        base = replace(base, n_infants=60)
    if args.infants:
        base = replace(base, n_infants=args.infants)
    if args.prevalence is not None:
        base = replace(base, prevalence=args.prevalence)
    cohorts = {
        "default": base,
        "hidden": replace(base, difficulty="hidden", seed=args.seed + 1),
        "writhing": replace(base, age_band="writhing", seed=args.seed + 2),
        "fidgety": replace(base, age_band="fidgety", seed=args.seed + 3),
    }
    if args.only:
        cohorts = {k: v for k, v in cohorts.items() if k in args.only}
    print(f"synthetic baseline — generator {GENERATOR_VERSION}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.workers} worker processes, no torch (OMP_NUM_THREADS=1)")
    results = {}
    for name, cfg in cohorts.items():
        runs = [evaluate(name, replace(cfg, seed=cfg.seed + 100 * k), args.workers) for k in range(args.seeds)]
        r = runs[0]
        results[name] = r if args.seeds == 1 else {**r, "other_seeds": runs[1:], "mean_over_seeds": {
            key: float(np.mean([x[key]["pooled"] for x in runs])) for key in ("baseline", "baseline_plus_structure")}}
        print(f"\n== {name}: {r['infants']} infants, {r['recordings']} recordings ({r['atypical_recordings']} atypical), "
              f"{r['hours']:.1f} h, generated+featurized in {r['generate_and_featurize_s']:.0f} s")
        print(f"   baseline (speed stats) AUC  fold mean ± sd | pooled [95% CI]: {_fmt_auc(r['baseline'])}")
        print(f"   + structure features   AUC  fold mean ± sd | pooled [95% CI]: {_fmt_auc(r['baseline_plus_structure'])}")
        for k, x in enumerate(runs[1:], 1):
            print(f"   cohort seed +{100 * k}: baseline {_fmt_auc(x['baseline'])}; + structure "
                  f"{_fmt_auc(x['baseline_plus_structure'])}")
        if args.seeds > 1:
            m = results[name]["mean_over_seeds"]
            print(f"   mean pooled AUC over {args.seeds} cohorts: baseline {m['baseline']:.3f}, "
                  f"+ structure {m['baseline_plus_structure']:.3f}")
        print("   strongest single features (Cohen's d on infant means, AUC):",
              ", ".join(f"{e['feature']} {e['d']:+.2f}/{e['auc']:.2f}" for e in r["single_feature_effects"][:5]))
        hdr = f"   {'class':22s}{'n':>5s}" + "".join(f"{f[:16]:>18s}" for f in TABLE_FEATURES)
        print(hdr)
        for cls, row in r["class_table"].items():
            print(f"   {cls:22s}{row['n']:5d}" + "".join(f"{row[f][0]:10.2f}±{row[f][1]:<7.2f}" for f in TABLE_FEATURES))
    payload = {"generator_version": GENERATOR_VERSION, "machine": platform.platform(), "cpus": os.cpu_count(),
               "workers": args.workers, "quick": args.quick, "units": "trunk lengths (TL) and seconds; "
               f"TL ≈ {TRUNK_PER_BL} body lengths", "cohorts": results}
    if not (args.quick or args.only or args.infants or args.prevalence is not None):
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {RESULTS}")
    else:
        out = RESULTS.with_name("synthetic_baseline_partial.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
