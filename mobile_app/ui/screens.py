"""The nine screens of the user's path; their layout is in ``kv/screens.kv``.

Screens hold only what they show. Work that takes time (pose estimation, scoring, sending)
runs on a worker thread and comes back to the UI thread through ``mainthread``; errors come
back as a message on the screen, never as a crash, and never touch earlier results.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path

import numpy as np
from kivy.app import App
from kivy.clock import Clock, mainthread
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.popup import Popup
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from skeleton.errors import CogmaError

from ..age import AgeError, age_window, corrected_age_weeks, parse_date
from ..video import VIDEO_SUFFIXES
from . import texts

log = logging.getLogger("cogma.app")


def app():  # -> CogmaApp (ui/app.py imports this module)
    """The running app."""
    return App.get_running_app()


def rgb_texture(rgb: np.ndarray) -> Texture:
    h, w = rgb.shape[:2]
    tex = Texture.create(size=(w, h), colorfmt="rgb")
    tex.blit_buffer(np.ascontiguousarray(rgb[::-1]).tobytes(), colorfmt="rgb", bufferfmt="ubyte")
    return tex


# -- small widgets ---------------------------------------------------------------------------
class RootLayout(BoxLayout):
    pass


class NavBar(BoxLayout):
    pass


class NoticeBanner(Label):
    pass


class Card(BoxLayout):
    pass


class ScoreBar(Widget):
    risk = NumericProperty(0.0)
    low = NumericProperty(0.0)
    high = NumericProperty(0.0)
    threshold = NumericProperty(0.5)


class ConfirmPopup(Popup):
    message = StringProperty("")
    confirm_text = StringProperty("Delete")
    confirm_callback = ObjectProperty(None, allownone=True)

    def confirm(self) -> None:
        self.dismiss()
        if self.confirm_callback:
            self.confirm_callback()


class ChooserPopup(Popup):
    start_path = StringProperty(str(Path.home()))
    filters = ListProperty([f"*{s}" for s in VIDEO_SUFFIXES] + ["*.npz"])
    choose_callback = ObjectProperty(None, allownone=True)

    def choose(self, selection: list[str]) -> None:
        self.dismiss()
        if selection and self.choose_callback:
            self.choose_callback(selection[0])


# -- 1 welcome ---------------------------------------------------------------------------------
class WelcomeScreen(Screen):
    def on_pre_enter(self, *_: object) -> None:
        self.ids.agree.active = app().store.get_setting("terms_accepted") == texts.TERMS_VERSION

    def accept(self) -> None:
        app().store.set_setting("terms_accepted", texts.TERMS_VERSION)
        app().go("profile")


# -- 2 profile ---------------------------------------------------------------------------------
class ProfileScreen(Screen):
    known_nicknames = ListProperty([])
    age_text = StringProperty("")
    window_text = StringProperty("")
    window_warning = BooleanProperty(False)
    error_text = StringProperty("")

    def on_pre_enter(self, *_: object) -> None:
        self.known_nicknames = [p.nickname for p in app().store.profiles()]
        self.error_text = ""
        self.update_age()

    def pick_known(self, nickname: str) -> None:
        profile = app().store.find_profile(nickname)
        if profile is None:
            return
        self.ids.nickname.text = profile.nickname
        age = profile.age_now()
        if age is not None and not self.ids.birth_date.text:
            self._show_age(age, "from what you entered before")

    def _computed_age(self) -> float:
        weeks = int(self.ids.ga_weeks.text) + int(self.ids.ga_days.text) / 7.0
        return corrected_age_weeks(parse_date(self.ids.birth_date.text), weeks, dt.date.today())

    def _show_age(self, age: float, how: str = "") -> None:
        window = age_window(age)
        self.age_text = f"Corrected age: [b]{age:g} weeks[/b]" + (f" ({how})" if how else "")
        self.window_text = window.message
        self.window_warning = not window.in_window

    def update_age(self) -> None:
        if not self.ids.birth_date.text.strip():
            self.age_text, self.window_text = "Enter the birth date to see the corrected age.", ""
            return
        try:
            self._show_age(self._computed_age())
            self.error_text = ""
        except AgeError as e:
            self.age_text, self.window_text, self.error_text = "", "", str(e)

    def save(self) -> None:
        store = app().store
        nickname = self.ids.nickname.text
        try:
            existing = store.find_profile(nickname) if nickname.strip() else None
            if self.ids.birth_date.text.strip():
                age = self._computed_age()
            elif existing is not None and existing.age_now() is not None:
                age = existing.age_now()
            else:
                raise AgeError("Please enter the birth date, so the app can work out the corrected age.")
            profile = store.set_profile_age(existing.id, age) if existing else store.add_profile(nickname, age)
        except CogmaError as e:
            self.error_text = str(e)
            return
        # The birth date is used for the sum above only: clear it so nothing keeps it.
        self.ids.birth_date.text = ""
        app().profile_id = profile.id
        log.info("profile ready: corrected age %.1f weeks", age)
        app().go("guide")


# -- 3 guide -----------------------------------------------------------------------------------
class GuideScreen(Screen):
    def on_kv_post(self, *_: object) -> None:
        from kivy.factory import Factory

        for title, body in texts.GUIDE_STEPS:
            card = Card()
            card.add_widget(Factory.Heading(text=title))
            card.add_widget(Factory.Paragraph(text=body))
            self.ids.steps.add_widget(card)


# -- 4 capture ---------------------------------------------------------------------------------
class CaptureScreen(Screen):
    chosen_path = StringProperty("")
    chosen_text = StringProperty("No video chosen yet.")
    framing_text = StringProperty(texts.CAPTURE_HELP)
    framing_ok = BooleanProperty(False)
    camera_button_text = StringProperty("Use the camera")

    def on_kv_post(self, *_: object) -> None:
        self._camera = None
        self._recorder = None
        self._record_path: Path | None = None
        self._camera_event = None
        self.preview_done = threading.Event()

    def on_leave(self, *_: object) -> None:
        self.stop_camera()

    def open_chooser(self) -> ChooserPopup:
        popup = ChooserPopup(start_path=app().browse_dir, choose_callback=self.use_file)
        popup.open()
        return popup

    def use_file(self, path: str, temporary: bool = False) -> None:
        self.stop_camera()
        self.chosen_path = path
        self.chosen_is_temporary = temporary
        self.chosen_text = f"Chosen: {Path(path).name}"
        self.framing_text, self.framing_ok = "Looking at the video…", False
        self.preview_done.clear()
        threading.Thread(target=self._preview_file, args=(path,), daemon=True, name="preview").start()

    def _preview_file(self, path: str) -> None:
        try:
            image, framing = app().make_preview(Path(path))
            self._show_preview(image, framing.message, framing.ok, usable=True)
        except CogmaError as e:
            self._show_preview(None, f"This file cannot be used: {e}", False, usable=False)
        except Exception:  # a preview must never take the app down
            log.exception("preview failed")
            self._show_preview(None, "The video could not be previewed, but you can still try to check it.", False, usable=True)

    @mainthread
    def _show_preview(self, image: np.ndarray | Path | None, message: str, ok: bool, usable: bool) -> None:
        if isinstance(image, Path):  # a PNG made by the desktop's pose worker
            from kivy.core.image import Image as CoreImage

            self.ids.preview.texture = CoreImage(str(image), nocache=True).texture
            image.unlink(missing_ok=True)
        elif image is not None:
            self.ids.preview.texture = rgb_texture(image)
        self.framing_text, self.framing_ok = message, ok
        if not usable:
            self.chosen_path = ""
            self.chosen_text = "Please choose another video."
        self.preview_done.set()

    # Camera (desktop: Kivy's camera provider; Android: its camera provider) ------------------
    def toggle_camera(self) -> None:
        if self._camera is None:
            self.start_camera()
        elif self._recorder is None:
            self.start_recording()
        else:
            self.stop_recording()

    def start_camera(self) -> None:
        from kivy.uix.camera import Camera

        try:
            camera = Camera(index=0, resolution=(640, 480), play=True)
            if camera.texture is None and getattr(camera, "_camera", None) is None:
                raise RuntimeError("no camera")
        except Exception:  # no camera provider or no device: say so, offer files
            self.framing_text, self.framing_ok = texts.CAPTURE_NO_CAMERA, False
            return
        self._camera = camera
        self.ids.preview.opacity = 0
        self.ids.preview_area.add_widget(camera)
        self.camera_button_text = "Start recording"
        self._camera_event = Clock.schedule_interval(self._check_camera_frame, 0.3)

    def _camera_rgb(self) -> np.ndarray | None:
        tex = self._camera.texture if self._camera else None
        if tex is None:
            return None
        rgba = np.frombuffer(tex.pixels, np.uint8).reshape(tex.height, tex.width, 4)
        return np.ascontiguousarray(rgba[::-1, :, :3])

    def _check_camera_frame(self, _dt: float) -> None:
        from ..framing import check_framing

        rgb = self._camera_rgb()
        if rgb is None:
            return
        poses = app().image_detector().detect(rgb)
        framing = check_framing(poses)
        self.framing_text, self.framing_ok = framing.message, framing.ok
        self._draw_overlay(poses[0] if poses else None)
        if self._recorder is not None:
            self._recorder.write(rgb)

    def _draw_overlay(self, pose: np.ndarray | None) -> None:
        from kivy.graphics import Color, Line

        from skeleton.schemas import MEDIAPIPE_33

        cam = self._camera
        cam.canvas.after.clear()
        if pose is None:
            return
        # The camera picture is letterboxed inside the widget: map onto the drawn picture.
        w, h = cam.norm_image_size
        x0, top = cam.center_x - w / 2, cam.center_y + h / 2
        with cam.canvas.after:
            Color(0.0, 0.86, 1.0, 1)
            for a, b in MEDIAPIPE_33.edges:
                if pose[a, 2] >= 0.5 and pose[b, 2] >= 0.5:
                    Line(points=[x0 + pose[a, 0] * w, top - pose[a, 1] * h, x0 + pose[b, 0] * w, top - pose[b, 1] * h],
                         width=1.5)

    def start_recording(self) -> None:
        from skeleton.drawing import VideoWriter

        self._record_path = app().temp_video_path()
        tex = self._camera.texture
        self._recorder = VideoWriter(self._record_path, 30.0, (tex.width, tex.height))
        # Frames come with each camera texture update, at the camera's own rate.
        self._camera._camera.bind(on_texture=self._record_frame)
        self.camera_button_text = "Stop recording"

    def _record_frame(self, *_: object) -> None:
        rgb = self._camera_rgb()
        if rgb is not None and self._recorder is not None:
            self._recorder.write(rgb)

    def stop_recording(self) -> None:
        self._camera._camera.unbind(on_texture=self._record_frame)
        self._recorder.close()
        self._recorder = None
        path = self._record_path
        self.stop_camera()
        self.use_file(str(path), temporary=True)

    def stop_camera(self) -> None:
        if self._camera_event is not None:
            self._camera_event.cancel()
            self._camera_event = None
        if self._recorder is not None:  # a recording left unfinished: no half video of the baby stays behind
            self._recorder.discard()
            self._recorder = None
        if self._camera is not None:
            self._camera.play = False
            self.ids.preview_area.remove_widget(self._camera)
            self._camera = None
            self.ids.preview.opacity = 1
        self.camera_button_text = "Use the camera"

    def start(self) -> None:
        if not self.chosen_path:
            return
        keep = bool(self.ids.keep_video.active)
        app().start_processing(Path(self.chosen_path), keep_video=keep,
                               temporary=getattr(self, "chosen_is_temporary", False))


# -- 5 processing ------------------------------------------------------------------------------
class ProcessingScreen(Screen):
    title_text = StringProperty(texts.PROCESSING_TITLE)
    status_text = StringProperty("")
    progress = NumericProperty(0.0)
    running = BooleanProperty(False)
    outcome = StringProperty("")  # "", "scored", "not_scorable", "error", "cancelled"

    def on_kv_post(self, *_: object) -> None:
        self._cancel = threading.Event()
        self.done = threading.Event()

    def begin(self, name: str) -> None:
        self.ids.reasons.clear_widgets()
        self.title_text = texts.PROCESSING_TITLE
        self.status_text = f"{Path(name).name}\n{texts.PROCESSING_WAIT}"
        self.progress, self.running, self.outcome = 0.0, True, ""
        self._cancel.clear()
        self.done.clear()

    @property
    def cancel_event(self) -> threading.Event:
        return self._cancel

    def cancel(self) -> None:
        self._cancel.set()
        self.status_text = "Stopping…"

    def report_progress(self, fraction: float, message: str) -> None:
        Clock.schedule_once(lambda _dt: self._set_progress(fraction, message))

    def _set_progress(self, fraction: float, message: str) -> None:
        if self.running:
            self.progress = fraction
            self.status_text = f"{message}\n{texts.PROCESSING_WAIT}"

    @mainthread
    def show_not_scorable(self, reasons: list[str]) -> None:
        self._finish("not_scorable", texts.NOT_SCORABLE_TITLE, texts.NOT_SCORABLE_HELP, reasons)

    @mainthread
    def show_error(self, message: str, title: str = texts.ERROR_TITLE) -> None:
        self._finish("error", title, message, [])

    @mainthread
    def show_cancelled(self) -> None:
        self._finish("cancelled", "Stopped", "The check was stopped. Nothing was saved.", [])

    def _finish(self, outcome: str, title: str, status: str, reasons: list[str]) -> None:
        from kivy.factory import Factory

        self.running, self.outcome = False, outcome
        self.title_text, self.status_text = title, status
        self.ids.reasons.clear_widgets()
        for reason in reasons:
            card = Card()
            card.add_widget(Factory.Paragraph(text=f"• {reason}"))
            self.ids.reasons.add_widget(card)
        self.done.set()

    def mark_scored(self) -> None:
        self.running, self.outcome = False, "scored"
        self.done.set()


# -- 6 result ----------------------------------------------------------------------------------
class ResultScreen(Screen):
    result_id = NumericProperty(0)
    notice = StringProperty("")
    headline = StringProperty("")
    numbers = StringProperty("")
    advice = StringProperty("")
    details = StringProperty("")
    risk = NumericProperty(0.0)
    low = NumericProperty(0.0)
    high = NumericProperty(0.0)
    threshold = NumericProperty(0.5)

    def show(self, result_id: int) -> None:
        from cogma import NOT_FOR_CLINICAL_USE

        r = app().store.result(result_id)
        self.result_id = r.id
        self.notice = NOT_FOR_CLINICAL_USE if r.not_for_clinical_use else ""
        self.headline = r.details.get("headline", "")
        self.advice = r.details.get("advice", "")
        self.risk, self.low, self.high, self.threshold = r.risk, r.risk_low, r.risk_high, r.threshold
        self.numbers = (
            f"Score {r.risk:.2f} — likely between {r.risk_low:.2f} and {r.risk_high:.2f}. "
            f"Scores above {r.threshold:.2f} (the grey line) are worth showing to a doctor."
        )
        when = time.strftime("%d %b %Y, %H:%M", time.localtime(r.created_at))
        age = f"{r.age_weeks:g} weeks corrected age · " if r.age_weeks is not None else ""
        warnings = "".join(f"\nNote: {w}" for w in r.details.get("warnings", []))
        self.details = f"{r.nickname or 'Baby'} · {age}{when}\nModel {r.model_version}{warnings}"


# -- 7 history ---------------------------------------------------------------------------------
class HistoryItem(Card):
    result_id = NumericProperty(0)
    summary = StringProperty("")
    screen = ObjectProperty(None)

    def open_result(self) -> None:
        app().show_result(self.result_id)

    def delete(self) -> None:
        app().store.delete_result(self.result_id)
        self.screen.refresh()


class HistoryScreen(Screen):
    has_items = BooleanProperty(False)

    def on_pre_enter(self, *_: object) -> None:
        self.refresh()

    def refresh(self) -> None:
        from kivy.factory import Factory

        from ..scoring import BANDS

        items = self.ids.result_list
        items.clear_widgets()
        results = app().store.results()
        self.has_items = bool(results)
        if not results:
            items.add_widget(Factory.Paragraph(text=texts.HISTORY_EMPTY))
        for r in results:
            when = time.strftime("%d %b %Y, %H:%M", time.localtime(r.created_at))
            age = f", {r.age_weeks:g} wk" if r.age_weeks is not None else ""
            band = BANDS[r.band].headline if r.band in BANDS else r.band
            summary = f"[b]{r.nickname or 'Baby'}[/b]{age} · {when}\n{band} (score {r.risk:.2f})"
            items.add_widget(HistoryItem(result_id=r.id, summary=summary, screen=self))

    def confirm_delete_all(self) -> ConfirmPopup:
        popup = ConfirmPopup(title="Delete all results?", message="Delete every result and its keypoints from this phone?",
                             confirm_callback=self.delete_all)
        popup.open()
        return popup

    def delete_all(self) -> None:
        app().store.delete_all_results()
        self.refresh()


# -- 8 sharing ---------------------------------------------------------------------------------
class ScopeRow(Card):
    scope = StringProperty("")
    title = StringProperty("")
    body = StringProperty("")
    active = BooleanProperty(False)
    state_text = StringProperty("")
    screen = ObjectProperty(None)

    def give(self) -> None:
        self.screen.give(self.scope)

    def withdraw(self) -> None:
        self.screen.withdraw(self.scope)


class SharingScreen(Screen):
    what_is_sent = StringProperty("")
    queue_text = StringProperty("")
    message = StringProperty("")
    can_share = BooleanProperty(False)

    def on_kv_post(self, *_: object) -> None:
        from ..upload import SCOPES

        self.rows = {}
        for scope in SCOPES:
            title, body = texts.SCOPE_TEXTS[scope]
            row = ScopeRow(scope=scope, title=title, body=body, screen=self)
            self.rows[scope] = row
            self.ids.scopes.add_widget(row)

    def on_pre_enter(self, *_: object) -> None:
        self.message = ""
        self.refresh()

    def refresh(self) -> None:
        from ..upload import what_is_sent

        queue = app().queue
        consents = queue.active_consents()
        for scope, row in self.rows.items():
            c = consents[scope]
            row.active = c is not None
            row.state_text = (
                f"Agreed on {time.strftime('%d %b %Y', time.localtime(c.given_at))}" if c else "Not shared"
            )
        results = app().store.results()
        latest = results[0] if results else None
        frames = fps = None
        if latest is not None and latest.recording_file:
            frames, fps = latest.details.get("quality", {}).get("duration_s"), latest.details.get("quality", {}).get("fps")
            frames = round(frames * fps) if frames and fps else None
        lines = what_is_sent(latest.age_weeks if latest else None, frames, fps)
        self.what_is_sent = "\n".join(f"• {line}" for line in lines)
        self.can_share = latest is not None and any(c is not None for c in consents.values())
        status = queue.status()
        server = queue.server_url or "no server address set (see Settings)"
        self.queue_text = f"Server: {server}\n{status.summary()}"

    def _given_by(self) -> str:
        label = self.ids.given_by.text
        return next((k for k, v in texts.GIVEN_BY_LABELS.items() if v == label), "parent")

    def give(self, scope: str) -> None:
        try:
            app().queue.give_consent(scope, self._given_by())
        except CogmaError as e:
            self.message = str(e)
        self.refresh()
        app().send_uploads()

    def withdraw(self, scope: str) -> None:
        app().queue.withdraw(scope)
        self.message = "Consent withdrawn. Nothing more is sent, and the server is asked to erase what it received."
        self.refresh()
        app().send_uploads()

    def share_latest(self) -> None:
        results = app().store.results()
        if not results:
            return
        try:
            tasks = app().queue.share_result(results[0].id)
            self.message = f"{len(tasks)} upload(s) queued." if tasks else "This result is already shared."
        except CogmaError as e:
            self.message = str(e)
        self.refresh()
        app().send_uploads()

    def send_now(self) -> None:
        app().send_uploads(force=True)


# -- 9 settings --------------------------------------------------------------------------------
class SettingsScreen(Screen):
    server_message = StringProperty("")
    bundle_text = StringProperty("")
    data_text = StringProperty("")

    def on_pre_enter(self, *_: object) -> None:
        self.ids.server.text = app().queue.server_url or ""
        self.server_message = ""
        self.refresh()

    def refresh(self) -> None:
        a = app()
        self.bundle_text = a.bundle_description()
        store = a.store
        n_results = len(store.results())
        n_videos = sum(1 for r in store.results() if r.video_file)
        self.data_text = (
            f"{len(store.profiles())} baby profile(s), {n_results} result(s), {n_videos} kept video(s).\n"
            f"Stored in {store.dir}"
        )

    def save_server(self) -> None:
        try:
            app().queue.set_server_url(self.ids.server.text)
            self.server_message = "Saved."
        except CogmaError as e:
            self.server_message = str(e)

    def confirm_delete_all(self) -> ConfirmPopup:
        popup = ConfirmPopup(title="Delete all data?", message=texts.DELETE_ALL_CONFIRM,
                             confirm_text="Delete everything", confirm_callback=app().delete_all_data)
        popup.open()
        return popup
