"""The pose contract every part of CoGMA imports: joint schemas, mappings,
``PoseRecording``, quality checks, synthetic infants and drawing.

Must not import torch, nor any app or server code.
"""

from .errors import CogmaError, RecordingError, SchemaError
from .mapping import JointMapping, convert, get_mapping
from .quality import DEFAULT_THRESHOLDS, QualityReport, QualityThresholds, assess
from .recording import FORMAT_VERSION, PoseRecording, load_recording
from .schemas import COCO_17, INFANT_20, MEDIAPIPE_33, OPENPOSE_18, SCHEMAS, JointSchema, get_schema

__all__ = [
    "CogmaError", "RecordingError", "SchemaError", "JointMapping", "convert", "get_mapping",
    "DEFAULT_THRESHOLDS", "QualityReport", "QualityThresholds", "assess", "FORMAT_VERSION",
    "PoseRecording", "load_recording", "COCO_17", "INFANT_20", "MEDIAPIPE_33", "OPENPOSE_18",
    "SCHEMAS", "JointSchema", "get_schema",
]
