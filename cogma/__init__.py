"""CoGMA: phone-based early screening for cerebral palsy by General Movements Assessment."""

__version__ = "0.1.0"

NOT_FOR_CLINICAL_USE = "synthetic data — not for clinical use"
