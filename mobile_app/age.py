"""Corrected (post-term) age from what a parent knows: the birth date and the gestational age.

GMA reads movements by post-term age: chronological age minus the weeks the baby was born
before term (40 weeks). Writhing movements run until about 8 weeks post-term, fidgety
movements from about 9 to 20 weeks. The birth date is used for this sum only, in memory:
the app stores and logs the corrected age in weeks, never the date.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .errors import AppError

TERM_WEEKS = 40.0
GESTATION_RANGE_WEEKS = (22, 44)
MAX_CHRONOLOGICAL_WEEKS = 104  # two years: far beyond any GMA window
WRITHING_END_WEEKS = 8.0
FIDGETY_RANGE_WEEKS = (9.0, 20.0)

_DATE_FORMATS = (
    (re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$"), ("y", "m", "d")),
    (re.compile(r"^\s*(\d{1,2})[./](\d{1,2})[./](\d{4})\s*$"), ("d", "m", "y")),
)


class AgeError(AppError):
    """A birth date or gestational age that cannot be right."""


@dataclass(frozen=True)
class AgeWindow:
    period: str  # "preterm", "writhing", "between", "fidgety", "too_old"
    in_window: bool
    message: str


def parse_date(text: str) -> dt.date:
    """A date typed as 2026-09-14, 14.09.2026 or 14/09/2026."""
    for pattern, order in _DATE_FORMATS:
        m = pattern.match(text or "")
        if m:
            parts = dict(zip(order, (int(g) for g in m.groups())))
            try:
                return dt.date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                break
    raise AgeError("Please enter the date of birth like 2026-09-14 (year-month-day).")


def corrected_age_weeks(birth: dt.date, gestation_weeks: float, today: dt.date | None = None) -> float:
    """Post-term age in weeks, rounded to one decimal (negative before the due date)."""
    today = today or dt.date.today()
    lo, hi = GESTATION_RANGE_WEEKS
    if not lo <= gestation_weeks <= hi:
        raise AgeError(f"Gestational age at birth must be between {lo} and {hi} weeks.")
    chronological = (today - birth).days / 7.0
    if chronological < 0:
        raise AgeError("The date of birth is in the future. Please check it.")
    if chronological > MAX_CHRONOLOGICAL_WEEKS:
        raise AgeError("This screening is for babies in their first months; please check the date of birth.")
    return round(chronological - (TERM_WEEKS - gestation_weeks), 1)


def age_window(weeks: float) -> AgeWindow:
    """Which GMA period a corrected age falls in, with a plain message for the parent."""
    if weeks < 0:
        return AgeWindow("preterm", True, "Your baby is not yet at the due date. Movements can be looked at now (writhing movements).")
    if weeks <= WRITHING_END_WEEKS:
        return AgeWindow("writhing", True, "A good age for this check (writhing movements, up to about 8 weeks).")
    lo, hi = FIDGETY_RANGE_WEEKS
    if weeks < lo:
        return AgeWindow(
            "between", False,
            f"At {weeks:g} weeks the movements are changing. The check works best before 8 or from {lo:g} weeks; "
            "you can still record, but the result is less reliable.",
        )
    if weeks <= hi:
        return AgeWindow("fidgety", True, f"A good age for this check (fidgety movements, {lo:g} to {hi:g} weeks).")
    return AgeWindow(
        "too_old", False,
        f"This check is made for babies up to {hi:g} weeks corrected age. At {weeks:g} weeks its result "
        "does not apply; please talk to your doctor or nurse about your baby's movements.",
    )
