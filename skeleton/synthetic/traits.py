"""Per-infant traits: what stays the same across all recordings of one infant.

Inter-infant variation is deliberately large (GMA_KINEMATICS.md §7): speed and
amplitude scales, baseline activity and limb preference differ between
infants by more than the movement classes differ on any single speed
statistic, so a classifier has to look at movement *structure*.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# 50th-percentile recumbent length (cm) by age in weeks (GMA_KINEMATICS.md §5: birth 50.5, 1 mo 54.6, 3 mo 61.1, 6 mo 67.8).
_LENGTH_AGE_WEEKS = np.array([0.0, 4.3, 13.0, 26.0])
_LENGTH_CM = np.array([50.5, 54.6, 61.1, 67.8])
_LENGTH_SD_CM = 2.2  # roughly 1 SD of length-for-age in the first months


def body_length_cm(age_weeks: float, length_z: float = 0.0) -> float:
    """Crown-heel length (cm) at a corrected age; before term extrapolates ~1 cm/week."""
    base = float(np.interp(age_weeks, _LENGTH_AGE_WEEKS, _LENGTH_CM))
    if age_weeks < 0:
        base = 50.5 + age_weeks * 1.0
    return base + length_z * _LENGTH_SD_CM


@dataclass(frozen=True)
class InfantTraits:
    """Body proportions and movement habits of one synthetic infant.

    Segment lengths are fractions of crown-heel length (BL), as proposed in
    GMA_KINEMATICS.md §5, each randomised by about ±6 %.
    """

    infant_id: str
    length_z: float = 0.0  # length-for-age z-score
    trunk: float = 0.325  # mid-hip -> mid-shoulder
    shoulder_width: float = 0.20
    hip_width: float = 0.135
    neck_to_head: float = 0.12  # mid-shoulder -> head centre
    head_breadth: float = 0.155  # ear to ear
    upper_arm: float = 0.14
    forearm: float = 0.12
    hand: float = 0.05
    thigh: float = 0.15
    shank: float = 0.14
    foot: float = 0.07
    speed_scale: float = 1.0  # multiplies movement frequencies (how quick this infant is)
    amplitude_scale: float = 1.0  # multiplies movement excursions
    activity: float = 0.75  # share of awake time spent moving (baseline activity)
    side_preference: float = 0.0  # -1..1; > 0: left limbs move more
    arm_leg_balance: float = 0.0  # -1..1; > 0: arms move more than legs
    flexion: float = 0.5  # 0..1: how flexed the resting posture is
    head_turn_bias: float = 0.0  # preferred head turn (radians, + = towards the infant's left)
    fidgety_scale: float = 1.0  # size of this infant's fidgety movements when present
    head_mobility: float = 1.0  # how much this infant turns and moves its head
    variability: float = 1.0  # how strongly this infant's movement waxes and wanes (scales envelope depth)
    bandwidth: float = 0.55  # spread of this infant's movement tempo (log-frequency width of its spectrum)
    swivel: float = 0.75  # how flat (1) or lifted (lower) this infant usually holds elbows and knees
    coupling: float = 0.0  # personal tendency of limbs to move together (adds to the class's synchrony)

    def to_dict(self) -> dict:
        return asdict(self)


def sample_infant(rng: np.random.Generator, infant_id: str) -> InfantTraits:
    """Draw one infant's traits."""

    def seg(mean: float) -> float:
        return float(mean * np.clip(1.0 + 0.06 * rng.standard_normal(), 0.85, 1.15))

    return InfantTraits(
        infant_id=str(infant_id),
        length_z=float(np.clip(rng.standard_normal(), -2.5, 2.5)),
        trunk=seg(0.325),
        shoulder_width=seg(0.20),
        hip_width=seg(0.135),
        neck_to_head=seg(0.12),
        head_breadth=seg(0.155),
        upper_arm=seg(0.14),
        forearm=seg(0.12),
        hand=seg(0.05),
        thigh=seg(0.15),
        shank=seg(0.14),
        foot=seg(0.07),
        # speed ×0.6-1.6 overall (GMA_KINEMATICS §7) = frequency × amplitude scale.
        speed_scale=float(np.exp(np.clip(0.3 * rng.standard_normal(), -0.6, 0.6))),
        amplitude_scale=float(np.exp(np.clip(0.35 * rng.standard_normal(), -0.7, 0.7))),
        activity=float(rng.uniform(0.4, 0.95)),
        side_preference=float(np.clip(0.25 * rng.standard_normal(), -0.6, 0.6)),
        arm_leg_balance=float(np.clip(0.25 * rng.standard_normal(), -0.6, 0.6)),
        flexion=float(rng.uniform(0.0, 1.0)),
        head_turn_bias=float(0.3 * rng.standard_normal()),
        fidgety_scale=float(np.exp(np.clip(0.25 * rng.standard_normal(), -0.6, 0.6))),
        head_mobility=float(np.exp(np.clip(0.4 * rng.standard_normal(), -0.9, 0.9))),
        variability=float(np.exp(np.clip(0.3 * rng.standard_normal(), -0.7, 0.7))),
        bandwidth=float(rng.uniform(0.4, 0.7)),
        swivel=float(rng.uniform(0.6, 0.85)),
        coupling=float(rng.uniform(0.0, 0.2)),
    )
