"""Synthetic infants: supine infant movement seen from above, as a phone's MediaPipe reports it.

Six GMA movement classes (normal writhing, poor repertoire, cramped-synchronized, chaotic,
normal fidgety, absent fidgety), per-infant traits, a severity knob, phone capture conditions and a
cohort generator with a labels file. Numpy/scipy only. Synthetic data — not for clinical use.
See docs/synthetic.md.
"""

from .capture import CaptureConditions, CaptureError
from .cohort import CohortConfig, CohortEntry, generate_cohort, plan_cohort
from .generate import (
    ATYPICAL_CLASSES,
    FIDGETY_AGE_RANGE,
    FIDGETY_CLASSES,
    GENERATOR_VERSION,
    MOVEMENT_CLASSES,
    NOT_FOR_CLINICAL_USE,
    WRITHING_AGE_RANGE,
    WRITHING_CLASSES,
    SyntheticError,
    age_band_of,
    label_of,
    synthesize,
)
from .traits import InfantTraits, sample_infant

__all__ = [
    "MOVEMENT_CLASSES", "ATYPICAL_CLASSES", "WRITHING_CLASSES", "FIDGETY_CLASSES", "WRITHING_AGE_RANGE",
    "FIDGETY_AGE_RANGE", "GENERATOR_VERSION", "NOT_FOR_CLINICAL_USE", "InfantTraits", "sample_infant",
    "CaptureConditions", "CaptureError", "SyntheticError", "synthesize", "label_of", "age_band_of",
    "CohortConfig", "CohortEntry", "generate_cohort", "plan_cohort",
]
