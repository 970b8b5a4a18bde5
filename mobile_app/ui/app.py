"""The Kivy app: a ScreenManager with one screen per step of the user's path, and the services
the screens share (store, upload queue, scorer, pose detector).

Start-up stays light: the scorer (ExecuTorch) loads on a worker thread after the first frame,
MediaPipe when a video is first looked at.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path

os.environ.setdefault("KIVY_NO_ARGS", "1")  # Kivy must not read our command line

from kivy.app import App  # noqa: E402
from kivy.clock import Clock, mainthread  # noqa: E402
from kivy.lang import Builder  # noqa: E402
from kivy.metrics import dp  # noqa: E402
from kivy.properties import StringProperty  # noqa: E402
from kivy.uix.screenmanager import ScreenManager, SlideTransition  # noqa: E402

from skeleton.errors import CogmaError  # noqa: E402

from ..pose.backend import Cancelled, platform_name  # noqa: E402
from ..store import Store  # noqa: E402
from ..upload import UploadQueue  # noqa: E402
from . import texts  # noqa: E402
from .screens import (  # noqa: E402
    CaptureScreen, GuideScreen, HistoryScreen, NavBar, ProcessingScreen, ProfileScreen, ResultScreen,
    RootLayout, SettingsScreen, SharingScreen, WelcomeScreen,
)

log = logging.getLogger("cogma.app")
KV_DIR = Path(__file__).parent / "kv"
SCREEN_ORDER = ("welcome", "profile", "guide", "capture", "processing", "result", "history", "sharing", "settings")
UPLOAD_INTERVAL_S = 60.0


def default_data_dir() -> Path:
    if os.environ.get("COGMA_APP_DIR"):
        return Path(os.environ["COGMA_APP_DIR"])
    import platformdirs

    return Path(platformdirs.user_data_dir("cogma-app"))


class CogmaApp(App):
    title = texts.APP_TITLE
    notice = StringProperty("")  # "synthetic data — not for clinical use" when the bundle says so

    def __init__(self, data_dir: Path | None = None, bundle: Path | None = None, platform: str | None = None,
                 transitions: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir) if data_dir else None
        self.bundle_path = Path(bundle) if bundle else None
        self.platform = platform or platform_name()
        self.transitions = transitions
        self.profile_id: int | None = None
        self.browse_dir = str(Path.home())
        self._scorer = None
        self._scorer_error: str | None = None
        self._scorer_lock = threading.Lock()
        self._detector = None
        self._detector_lock = threading.Lock()
        self._upload_thread: threading.Thread | None = None
        self.processing_thread: threading.Thread | None = None

    # -- building --------------------------------------------------------------------------
    def load_kv(self, filename=None) -> bool:
        """The layout files are loaded explicitly in :meth:`build` (no name-based lookup)."""
        return False

    def build(self) -> RootLayout:
        for name in ("styles.kv", "screens.kv"):
            Builder.load_file(str(KV_DIR / name))
        data_dir = self.data_dir or (Path(self.user_data_dir) if self.platform != "desktop" else default_data_dir())
        self.store = Store(data_dir)
        self.queue = UploadQueue(self.store, platform=self.platform)
        self._read_bundle()
        root = RootLayout()
        sm = ScreenManager(transition=SlideTransition(duration=0.2 if self.transitions else 0.0))
        for cls in (WelcomeScreen, ProfileScreen, GuideScreen, CaptureScreen, ProcessingScreen, ResultScreen,
                    HistoryScreen, SharingScreen, SettingsScreen):
            sm.add_widget(cls())
        root.add_widget(sm)
        self.nav = NavBar()
        root.add_widget(self.nav)
        self.sm = sm
        sm.bind(current=self._update_nav)
        sm.get_screen("processing").bind(running=self._update_nav)
        self._update_nav()
        Clock.schedule_interval(lambda _dt: self.send_uploads(), UPLOAD_INTERVAL_S)
        return root

    def _update_nav(self, *_: object) -> None:
        """No way out of the terms; no wandering off while a video is being checked."""
        name = self.sm.current
        hidden = name == "welcome" or (name == "processing" and self.sm.get_screen("processing").running)
        self.nav.opacity, self.nav.disabled = (0, True) if hidden else (1, False)
        self.nav.size_hint_y = None
        self.nav.height = 0 if hidden else dp(54)

    def on_stop(self) -> None:
        processing = self.sm.get_screen("processing")
        processing.cancel_event.set()
        for thread in (self.processing_thread, self._upload_thread):
            if thread is not None:
                thread.join(timeout=10)
        if self._detector is not None:
            self._detector.close()
        self.store.close()

    # -- navigation --------------------------------------------------------------------------
    def go(self, name: str) -> None:
        if self.sm.current == name:
            return
        order = SCREEN_ORDER.index
        self.sm.transition.direction = "left" if order(name) > order(self.sm.current) else "right"
        self.sm.current = name

    def start_new_check(self) -> None:
        self.go("profile" if self.store.get_setting("terms_accepted") == texts.TERMS_VERSION else "welcome")

    def show_result(self, result_id: int) -> None:
        self.sm.get_screen("result").show(result_id)
        self.go("result")

    # -- bundle and scorer -------------------------------------------------------------------
    def _read_bundle(self) -> None:
        """Verify the bundle now (fast, no PyTorch) so the notice shows from the first screen."""
        from ..scoring import default_bundle_path, load_verified_bundle

        from cogma import NOT_FOR_CLINICAL_USE

        self.bundle_path = self.bundle_path or default_bundle_path()
        try:
            bundle = load_verified_bundle(self.bundle_path)
        except CogmaError as e:
            self._bundle, self._bundle_error = None, str(e)
            self.notice = ""
            return
        self._bundle, self._bundle_error = bundle, None
        self.notice = NOT_FOR_CLINICAL_USE if bundle.not_for_clinical_use else ""

    def bundle_description(self) -> str:
        if self._bundle is None:
            return f"The model bundle cannot be used: {self._bundle_error}"
        b, c = self._bundle, self._bundle.input_contract
        runtime = self._scorer.runtime if self._scorer is not None else "loads on first use"
        return (
            f"Version {b.version}\nDecision threshold {b.threshold:.2f}\n"
            f"Reads {c.schema} keypoints at {c.fps_min:g}–{c.fps_max:g} frames per second, "
            f"{c.min_frames}–{c.max_frames} frames\n"
            f"Runtime: {runtime}\nFolder: {self.bundle_path}"
        )

    def get_scorer(self):
        """The platform scorer, loaded once (on a worker thread); raises ScorerError if unusable."""
        from ..scoring import open_scorer

        with self._scorer_lock:
            if self._scorer is None:
                try:
                    # Desktop: scoring in a worker process, so the app never holds libtorch.
                    where = "desktop-worker" if self.platform == "desktop" else self.platform
                    self._scorer = open_scorer(self.bundle_path, where)
                    self._scorer_error = None
                except CogmaError as e:
                    self._scorer_error = str(e)
                    raise
            return self._scorer

    def image_detector(self):
        """Single-picture pose detector for previews and the camera's framing check."""
        with self._detector_lock:
            if self._detector is None:
                if self.platform == "desktop":
                    from ..pose.desktop import MediaPipeImageDetector

                    self._detector = MediaPipeImageDetector()
                else:
                    self._detector = _TrackingAsImageDetector(self.platform)
            return self._detector

    def make_preview(self, path: Path):
        """(picture, framing) for a chosen file; the picture is a PNG path (desktop: made by a
        worker process, see pose/worker.py) or an RGB array (phones)."""
        if self.platform == "desktop":
            from ..pose.worker import preview_in_worker

            picture = Path(tempfile.gettempdir()) / "cogma-capture" / f"preview-{uuid.uuid4().hex}.png"
            picture.parent.mkdir(parents=True, exist_ok=True)
            return picture, preview_in_worker(path, picture)
        from ..preview import preview_file, preview_frames

        return preview_file(path, lambda p: preview_frames(p, self.image_detector()))

    # -- processing ---------------------------------------------------------------------------
    def temp_video_path(self) -> Path:
        folder = Path(tempfile.gettempdir()) / "cogma-capture"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}.mp4"

    def current_age(self) -> float | None:
        if self.profile_id is None:
            return None
        return self.store.profile(self.profile_id).age_now()

    def start_processing(self, path: Path, keep_video: bool = False, temporary: bool = False) -> threading.Thread:
        screen: ProcessingScreen = self.sm.get_screen("processing")
        screen.begin(path.name)
        self.go("processing")
        args = (path, keep_video, temporary, screen)
        self.processing_thread = threading.Thread(target=self._process, args=args, daemon=True, name="processing")
        self.processing_thread.start()
        return self.processing_thread

    def _process(self, path: Path, keep_video: bool, temporary: bool, screen: ProcessingScreen) -> None:
        from ..pipeline import screen as run_screen

        try:
            scorer = self.get_scorer()
            result = run_screen(path, scorer=scorer, progress=screen.report_progress, cancel=screen.cancel_event,
                                age_weeks=self.current_age())
            if not result.scorable:
                log.info("not scorable: %d reason(s)", len(result.reasons))
                screen.show_not_scorable(result.reasons)
                return
            video = path if keep_video and result.input_kind == "video" else None
            stored = self.store.add_result(result, self.profile_id, result.recording, keep_video=video)
            log.info("scored: band=%s model=%s", stored.band, stored.model_version)
            self._show_scored(stored.id, screen)
        except Cancelled:
            screen.show_cancelled()
        except CogmaError as e:
            screen.show_error(str(e)[:1].upper() + str(e)[1:])
        except Exception:  # a bug must not take the app (or earlier results) down
            log.exception("unexpected error while processing")
            screen.show_error(texts.UNEXPECTED_ERROR, title="Something went wrong")
        finally:
            if temporary and not keep_video:
                path.unlink(missing_ok=True)

    @mainthread
    def _show_scored(self, result_id: int, screen: ProcessingScreen) -> None:
        self.show_result(result_id)
        screen.mark_scored()

    # -- uploads --------------------------------------------------------------------------------
    def send_uploads(self, force: bool = False) -> threading.Thread | None:
        """Send what is due on a worker thread (``force``: also what is waiting for a retry)."""
        if self._upload_thread is not None and self._upload_thread.is_alive():
            return self._upload_thread

        def work() -> None:
            import time

            try:
                self.queue.run_once(now=time.time() + (10**9 if force else 0))
            except CogmaError as e:
                log.warning("sending failed: %s", e)
            finally:
                self._refresh_sharing()

        self._upload_thread = threading.Thread(target=work, daemon=True, name="upload")
        self._upload_thread.start()
        return self._upload_thread

    @mainthread
    def _refresh_sharing(self) -> None:
        screen = self.sm.get_screen("sharing")
        if self.sm.current == "sharing":
            screen.refresh()

    def delete_all_data(self) -> threading.Thread:
        """Withdraw consents (server erasure), then wipe the phone's data; back to the start."""

        def work() -> None:
            try:
                self.queue.erase_everything()
            finally:
                self._after_delete_all()

        thread = threading.Thread(target=work, daemon=True, name="delete-all")
        thread.start()
        self._delete_thread = thread
        return thread

    @mainthread
    def _after_delete_all(self) -> None:
        self.profile_id = None
        self.go("welcome")


class _TrackingAsImageDetector:
    """Phones: the platform's pose backend, one picture at a time, for previews."""

    def __init__(self, platform: str):
        from ..pose.backend import open_backend

        self._backend = open_backend(platform)
        self._ts = 0

    def detect(self, rgb):
        from ..video import Frame

        self._backend.reset()
        self._ts += 1000
        return self._backend.detect(Frame(0, self._ts, rgb))

    def close(self) -> None:
        self._backend.close()


def run_app(data_dir: Path | None = None, bundle: Path | None = None) -> None:
    CogmaApp(data_dir=data_dir, bundle=bundle).run()
