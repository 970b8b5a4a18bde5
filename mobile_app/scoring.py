"""On-device scoring behind one interface, always through a verified model bundle (``load_bundle``).

* desktop: the ExecuTorch Python runtime (``export.runtime.PteRunner``) on ``model.pte``;
* Android: ``org.pytorch.executorch.Module`` through pyjnius — UNTESTED ON DEVICES;
* iOS: Core ML (``model.mlpackage``) through pyobjus — UNTESTED ON DEVICES.

The model returns (risk, risk_low, risk_high); the app turns them into a band a parent can read,
against the bundle's decision threshold. It is a screening aid, never a diagnosis.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skeleton.recording import PoseRecording

from .errors import ScorerError


@dataclass(frozen=True)
class Score:
    risk: float
    low: float
    high: float

    @classmethod
    def from_output(cls, out: np.ndarray) -> "Score":
        values = np.asarray(out, dtype=np.float64).reshape(-1)
        if values.shape != (3,) or not np.isfinite(values).all():
            raise ScorerError(f"the model gave an unusable answer ({values!r}); the bundle may be broken")
        if values.min() < -1e-4 or values.max() > 1 + 1e-4:
            raise ScorerError(f"the model gave scores outside 0..1 ({values.round(3).tolist()}); the bundle may be broken")
        risk, low, high = (float(min(1.0, max(0.0, v))) for v in values)
        return cls(risk=risk, low=min(low, risk), high=max(high, risk))


@dataclass(frozen=True)
class Band:
    name: str  # "low", "unclear", "raised"
    headline: str
    advice: str


BANDS = {
    "low": Band(
        "low",
        "No signs of concern in this recording",
        "The movements in this video look like those of most babies of this age. Keep going to your "
        "usual check-ups, and talk to your doctor or nurse if you are worried about anything.",
    ),
    "unclear": Band(
        "unclear",
        "The result is not clear",
        "The app could not tell clearly from this video. You can record again on another day, and "
        "please mention it to your doctor or nurse at the next visit.",
    ),
    "raised": Band(
        "raised",
        "Some movements look different from what is typical",
        "This does not mean your baby has a problem: many babies with this result develop well. "
        "Please show this result to your doctor or nurse soon, so that a trained person can look at "
        "your baby's movements.",
    ),
}


def band_for(score: Score, threshold: float) -> Band:
    """``raised`` when even the low end of the interval reaches the threshold, ``low`` when even the
    high end stays below it, ``unclear`` when the interval straddles it."""
    if score.low >= threshold:
        return BANDS["raised"]
    if score.high < threshold:
        return BANDS["low"]
    return BANDS["unclear"]


@dataclass(frozen=True)
class BundleInfo:
    path: str
    version: str
    threshold: float
    not_for_clinical_use: bool
    notice: str
    schema: str
    fps_min: float
    fps_max: float
    min_frames: int
    max_frames: int
    runtime: str

    def to_dict(self) -> dict:
        return asdict(self)


def load_verified_bundle(path: str | os.PathLike):
    """``export.bundle.load_bundle`` with its errors turned into the app's ScorerError."""
    from export.bundle import BundleError, load_bundle

    try:
        return load_bundle(path)
    except BundleError as e:
        raise ScorerError(f"the model bundle cannot be used: {e}") from None


class Scorer(ABC):
    """Scores a MediaPipe-33 PoseRecording with one verified bundle."""

    runtime: str = "abstract"

    def __init__(self, bundle_path: str | os.PathLike):
        self.bundle = load_verified_bundle(bundle_path)
        self.bundle_path = Path(bundle_path)

    @property
    def info(self) -> BundleInfo:
        b, c = self.bundle, self.bundle.input_contract
        return BundleInfo(
            path=str(self.bundle_path), version=b.version, threshold=b.threshold,
            not_for_clinical_use=b.not_for_clinical_use, notice=b.notice, schema=c.schema,
            fps_min=c.fps_min, fps_max=c.fps_max, min_frames=c.min_frames, max_frames=c.max_frames,
            runtime=self.runtime,
        )

    def check(self, rec: PoseRecording) -> None:
        """Refuse a recording outside the model's contract, before the runtime sees it."""
        from export.bundle import BundleError

        try:
            self.bundle.check_recording(rec)
        except BundleError as e:
            raise ScorerError(f"this recording does not fit the model: {e}") from None

    @property
    def fps_max(self) -> float:
        """Videos faster than this are thinned before pose estimation (the model's limit)."""
        return self.bundle.input_contract.fps_max

    def score(self, rec: PoseRecording) -> Score:
        self.check(rec)
        return Score.from_output(self._run(rec.keypoints, rec.fps))

    @abstractmethod
    def _run(self, landmarks: np.ndarray, fps: float) -> np.ndarray:
        """(risk, risk_low, risk_high) from the platform runtime."""


class ExecuTorchScorer(Scorer):
    """Desktop: the ExecuTorch Python runtime (XNNPACK) on the bundle's fp32 ``model.pte``.

    The bundle is verified at once; the runtime loads on the first score. Its Python bindings
    bring in libtorch (about 180 MB resident), so the pipeline loads it after pose estimation
    has finished and MediaPipe's buffers are freed, which keeps the peak memory down.
    """

    runtime = "executorch-python (model.pte, XNNPACK)"

    def __init__(self, bundle_path: str | os.PathLike, program: str = "model.pte"):
        super().__init__(bundle_path)
        self.program = program
        self._runner = None

    def load_runtime(self) -> None:
        if self._runner is not None:
            return
        from export.bundle import BundleError
        from export.runtime import PteRunner

        from .et_runtime import preload_runtime

        preload_runtime()
        try:
            self._runner = PteRunner.from_bundle(self.bundle, self.program)
        except BundleError as e:
            raise ScorerError(f"the model bundle cannot be used: {e}") from None

    def _run(self, landmarks: np.ndarray, fps: float) -> np.ndarray:
        from export.bundle import BundleError

        self.load_runtime()
        try:
            return self._runner.run(landmarks, fps)
        except BundleError as e:
            raise ScorerError(str(e)) from None


class IsolatedScorer(Scorer):
    """Desktop app: the ExecuTorch scorer in a short-lived process (``mobile_app.score_worker``),
    so the app process never holds libtorch. The contract is checked here first."""

    runtime = "executorch-python in a worker process (model.pte, XNNPACK)"
    timeout_s = 300.0

    def score(self, rec: PoseRecording) -> Score:
        import json
        import subprocess
        import sys
        import tempfile

        self.check(rec)
        with tempfile.TemporaryDirectory(prefix="cogma-score-") as tmp:
            path = rec.save(Path(tmp) / "recording.npz")
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "mobile_app.score_worker", str(self.bundle_path.resolve()), str(path)],
                    capture_output=True, text=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL,
                    cwd=str(Path(__file__).resolve().parents[1]),
                )
            except subprocess.TimeoutExpired:
                raise ScorerError(f"scoring took longer than {self.timeout_s:.0f} s and was stopped") from None
        answer = next((json.loads(line) for line in reversed(done.stdout.splitlines()) if line.startswith("{")), None)
        if answer is None:
            raise ScorerError(f"the scorer stopped unexpectedly (exit code {done.returncode})")
        if "error" in answer:
            raise ScorerError(answer["error"])
        return Score.from_output(np.asarray(answer["score"], np.float32))

    def _run(self, landmarks: np.ndarray, fps: float) -> np.ndarray:  # pragma: no cover - score() is overridden
        raise NotImplementedError


class AndroidExecuTorchScorer(Scorer):
    """Android: ``org.pytorch.executorch.Module`` (executorch-android AAR) via pyjnius. UNTESTED ON DEVICES."""

    runtime = "executorch-android (model.pte)"

    def __init__(self, bundle_path: str | os.PathLike, program: str = "model.pte"):
        super().__init__(bundle_path)
        try:
            from jnius import autoclass
        except ImportError:
            raise ScorerError("the Android scorer runs only inside the Android app (pyjnius missing)") from None
        self._ac = autoclass
        self._module = autoclass("org.pytorch.executorch.Module").load(str(self.bundle.path(program)))

    def _run(self, landmarks: np.ndarray, fps: float) -> np.ndarray:
        Tensor, EValue = self._ac("org.pytorch.executorch.Tensor"), self._ac("org.pytorch.executorch.EValue")
        t = int(landmarks.shape[0])
        x = Tensor.fromBlob(np.ascontiguousarray(landmarks, np.float32).reshape(-1).tolist(), [1, t, 33, 3])
        f = Tensor.fromBlob([float(fps)], [1])
        evalue = getattr(EValue, "from")  # `from` is a Python keyword
        out = self._module.forward(evalue(x), evalue(f))[0].toTensor()
        return np.asarray(out.getDataAsFloatArray(), np.float32)


class IOSCoreMLScorer(Scorer):
    """iOS: Core ML on the bundle's ``model.mlpackage`` via pyobjus. UNTESTED ON DEVICES."""

    runtime = "coreml (model.mlpackage)"

    def __init__(self, bundle_path: str | os.PathLike):
        super().__init__(bundle_path)
        try:
            from pyobjus import autoclass, objc_str
            from pyobjus.dylib_manager import load_framework
        except ImportError:
            raise ScorerError("the iOS scorer runs only inside the iOS app (pyobjus missing)") from None
        load_framework("/System/Library/Frameworks/CoreML.framework")
        self._ac, self._str = autoclass, objc_str
        url = autoclass("NSURL").fileURLWithPath_(objc_str(str(self.bundle.path("model.mlpackage"))))
        compiled = autoclass("MLModel").compileModelAtURL_error_(url, None)  # .mlpackage -> .mlmodelc
        self._model = autoclass("MLModel").modelWithContentsOfURL_error_(compiled, None)
        if self._model is None:
            raise ScorerError("Core ML could not load the model of this bundle")

    def _multiarray(self, values: np.ndarray, shape: list[int]):
        ac = self._ac
        NSNumber = ac("NSNumber")
        dims = ac("NSMutableArray").array()
        for d in shape:
            dims.addObject_(NSNumber.numberWithInt_(d))
        arr = ac("MLMultiArray").alloc().initWithShape_dataType_error_(dims, 65568, None)  # Float32
        for i, v in enumerate(values.reshape(-1).tolist()):
            arr.setObject_atIndexedSubscript_(NSNumber.numberWithFloat_(v), i)
        return arr

    def _run(self, landmarks: np.ndarray, fps: float) -> np.ndarray:
        ac = self._ac
        t = int(landmarks.shape[0])
        inputs = ac("NSMutableDictionary").dictionary()
        inputs.setObject_forKey_(ac("MLFeatureValue").featureValueWithMultiArray_(
            self._multiarray(landmarks, [1, t, 33, 3])), self._str("landmarks"))
        inputs.setObject_forKey_(ac("MLFeatureValue").featureValueWithMultiArray_(
            self._multiarray(np.array([fps], np.float32), [1])), self._str("fps"))
        provider = ac("MLDictionaryFeatureProvider").alloc().initWithDictionary_error_(inputs, None)
        result = self._model.predictionFromFeatures_error_(provider, None)
        scores = result.featureValueForName_(self._str("scores")).multiArrayValue
        return np.array([scores.objectAtIndexedSubscript_(i).floatValue() for i in range(3)], np.float32)


def default_bundle_path() -> Path:
    """$COGMA_BUNDLE, else the demo bundle shipped with the export package."""
    if os.environ.get("COGMA_BUNDLE"):
        return Path(os.environ["COGMA_BUNDLE"])
    import export

    return Path(export.__file__).resolve().parent / "demo_bundle"


def open_scorer(bundle_path: str | os.PathLike | None = None, platform: str | None = None) -> Scorer:
    """The scorer for this platform, on a verified bundle (``desktop``: in this process;
    ``desktop-worker``: in a short-lived worker process, as the desktop app does)."""
    from .pose.backend import platform_name

    path = Path(bundle_path) if bundle_path else default_bundle_path()
    platform = platform or platform_name()
    if platform == "desktop-worker":
        return IsolatedScorer(path)
    if platform == "android":
        return AndroidExecuTorchScorer(path)
    if platform == "ios":
        return IOSCoreMLScorer(path)
    return ExecuTorchScorer(path)
