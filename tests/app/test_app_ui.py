"""The real Kivy app, headless, driven through the whole user path with simulated taps.

Kivy's SDL2 window falls back to its offscreen driver without a display. Every screen is saved
as a screenshot under docs/screens/. The tests run in order and share one app, like one person
using it: profile, guide, a real video through MediaPipe (not scorable: an adult's upper body),
a scorable recording, bad inputs that must not lose the earlier result, history, sharing with
the real server, settings and deleting everything.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "MIXED")  # leave the root logger and sys.stderr to pytest

REPO = Path(__file__).resolve().parents[2]
SCREENS = REPO / "docs" / "screens"


# -- driving helpers ---------------------------------------------------------------------------
def pump(until=None, timeout: float = 30.0, frames: int = 3) -> None:
    """Run the Kivy event loop until ``until()`` holds (and at least ``frames`` frames)."""
    from kivy.base import EventLoop

    deadline = time.monotonic() + timeout
    n = 0
    while True:
        EventLoop.idle()
        n += 1
        if n >= frames and (until is None or until()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not get there within {timeout:g} s")
        time.sleep(0.005)


def tap(widget) -> None:
    """A finger tap in the middle of ``widget``: what a person can do, nothing more."""
    from kivy.tests.common import UnitTestTouch

    assert widget.get_root_window() is not None, f"{widget} is not on screen"
    assert not widget.disabled, f"{getattr(widget, 'text', widget)!r} is disabled"
    assert widget.opacity > 0 and widget.height > 0, f"{getattr(widget, 'text', widget)!r} is hidden"
    pump()
    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    touch.touch_up()
    pump()


def shot(name: str) -> Path:
    from kivy.core.window import Window

    pump(frames=6)
    SCREENS.mkdir(parents=True, exist_ok=True)
    target = SCREENS / f"{name}.png"
    for old in SCREENS.glob(f"{name}0*.png"):
        old.unlink()
    written = Path(Window.screenshot(name=str(target)))
    shutil.move(written, target)
    assert target.stat().st_size > 5000
    return target


def popup_of(cls):
    from kivy.core.window import Window

    found = [w for w in Window.children if isinstance(w, cls)]
    assert found, f"no {cls.__name__} open"
    return found[0]


def nav(app, text: str):
    (button,) = [b for b in app.nav.children if b.text == text]
    return button


def all_text(widget) -> str:
    """Every text shown inside ``widget`` (what a person could read on it)."""
    texts = [getattr(widget, "text", "") or ""]
    for child in widget.walk(restrict=True):
        if child is not widget and isinstance(getattr(child, "text", None), str):
            texts.append(child.text)
    return "\n".join(texts)


@pytest.fixture(scope="module")
def app(tmp_path_factory, bundle_dir, media, recordings):
    import mobile_app.ui  # noqa: F401  (phone-sized window, before Kivy creates it)
    from mobile_app.ui.app import CogmaApp

    browse = tmp_path_factory.mktemp("phone_files")
    for path in [*media.values(), *recordings.values()]:
        shutil.copy(path, browse / path.name)
    the_app = CogmaApp(data_dir=tmp_path_factory.mktemp("app_data"), bundle=bundle_dir, transitions=False)
    the_app.browse_dir = str(browse)
    the_app._run_prepare()
    pump(frames=5)
    yield the_app
    the_app.stop()


def choose_file(app, name: str) -> None:
    """Capture screen: "Choose a video", pick ``name`` in the file chooser, wait for the preview."""
    from mobile_app.ui.screens import ChooserPopup

    capture = app.sm.get_screen("capture")
    tap(capture.ids.choose_button)
    popup = popup_of(ChooserPopup)
    chooser = popup.ids.chooser
    pump(lambda: any(Path(f).name == name for f in chooser.files))
    chooser.selection = [str(Path(app.browse_dir) / name)]
    tap(popup.ids.open_button)
    pump(lambda: capture.preview_done.is_set(), timeout=60)
    pump()


def check_video(app, name: str):
    """Choose ``name`` and tap "Check this video"; returns the processing screen when done."""
    choose_file(app, name)
    tap(app.sm.get_screen("capture").ids.start_button)
    processing = app.sm.get_screen("processing")
    pump(lambda: processing.done.is_set(), timeout=120)
    pump()
    return processing


# -- the user's path ---------------------------------------------------------------------------
def test_01_welcome(app):
    from cogma import NOT_FOR_CLINICAL_USE

    welcome = app.sm.get_screen("welcome")
    assert app.sm.current == "welcome" and app.nav.opacity == 0
    text = all_text(welcome)
    assert "not a diagnosis" in text and "never the video" in text
    if app._bundle.not_for_clinical_use:
        assert NOT_FOR_CLINICAL_USE in text
    assert welcome.ids.continue_button.disabled  # the terms must be acknowledged first
    shot("01_welcome")
    tap(welcome.ids.agree)
    tap(welcome.ids.continue_button)
    assert app.sm.current == "profile"


def test_02_profile_stores_corrected_age_not_birth_date(app, caplog):
    profile = app.sm.get_screen("profile")
    birth = dt.date.today() - dt.timedelta(weeks=10)
    profile.ids.nickname.text = "Mia"
    profile.ids.ga_weeks.text = "34"
    profile.ids.ga_days.text = "3"
    profile.ids.birth_date.text = "1999-02-31"
    pump()
    assert "like 2026-09-14" in profile.error_text
    profile.ids.birth_date.text = birth.isoformat()
    pump()
    assert "4.4 weeks" in profile.age_text and profile.error_text == ""  # 10 weeks old, born 5.6 weeks early
    assert "writhing" in profile.window_text
    shot("02_profile")
    caplog.set_level("INFO", logger="cogma")
    tap(profile.ids.next_button)
    assert app.sm.current == "guide"
    (stored,) = app.store.profiles()
    assert stored.nickname == "Mia" and stored.age_weeks == 4.4
    assert profile.ids.birth_date.text == ""  # not kept on screen either
    raw = b"".join(p.read_bytes() for p in app.store.dir.rglob("cogma.sqlite3*"))
    assert "corrected age 4.4 weeks" in caplog.text  # the log says the age in weeks ...
    for form in (birth.isoformat(), birth.strftime("%d.%m.%Y"), birth.strftime("%d/%m/%Y")):
        assert form.encode() not in raw and form not in caplog.text  # ... never the birth date


def test_03_guide(app):
    guide = app.sm.get_screen("guide")
    text = all_text(guide)
    for words in ("On the back", "No dummy", "Camera above", "3 minutes"):
        assert words in text
    shot("03_guide")
    tap(guide.ids.ready_button)
    assert app.sm.current == "capture"


def test_04_capture_preview_draws_the_skeleton_and_checks_framing(app):
    from mobile_app.ui import texts

    capture = app.sm.get_screen("capture")
    assert capture.ids.start_button.disabled  # nothing chosen yet
    tap(capture.ids.camera_button)  # this machine has no camera: the app says so and offers files
    assert capture.framing_text == texts.CAPTURE_NO_CAMERA and capture.ids.start_button.disabled
    choose_file(app, "person.mp4")
    assert capture.chosen_path.endswith("person.mp4") and not capture.ids.start_button.disabled
    assert capture.ids.preview.texture is not None
    # An adult seen from the waist up: the legs are out of the picture, and the app says so.
    assert not capture.framing_ok and "outside the picture" in capture.framing_text
    shot("04_capture")


def test_05_real_video_is_processed_and_not_scorable(app):
    capture = app.sm.get_screen("capture")
    processing = app.sm.get_screen("processing")
    tap(capture.ids.start_button)
    assert app.sm.current == "processing"
    pump(lambda: processing.progress > 0.2 or processing.done.is_set(), timeout=60)
    if not processing.done.is_set():
        shot("05_processing")
    pump(lambda: processing.done.is_set(), timeout=120)
    pump()
    assert processing.outcome == "not_scorable"
    text = all_text(processing)
    assert "could not be checked" in text and "whole body" in text and "The recording is only" in text
    assert app.store.results() == []
    shot("05_processing_retake")
    tap(processing.ids.retake_button)
    assert app.sm.current == "guide"
    tap(app.sm.get_screen("guide").ids.ready_button)


def test_06_scorable_recording_gives_a_result(app):
    from cogma import NOT_FOR_CLINICAL_USE
    from mobile_app.scoring import BANDS

    processing = check_video(app, "typical.npz")
    assert processing.outcome == "scored", all_text(processing)
    assert app.sm.current == "result"
    result = app.sm.get_screen("result")
    (stored,) = app.store.results()
    assert stored.nickname == "Mia" and stored.age_weeks == pytest.approx(4.4, abs=0.1)
    text = all_text(result)
    assert BANDS[stored.band].headline in text and "not a diagnosis" in text
    assert f"Score {stored.risk:.2f}" in text and stored.model_version in text
    assert (NOT_FOR_CLINICAL_USE in text) == stored.not_for_clinical_use
    assert result.ids.bar.risk == pytest.approx(stored.risk)
    shot("06_result")


@pytest.mark.parametrize("name, expected", [
    ("garbage.mp4", "This file cannot be used: garbage.mp4: this is not a video the app can read"),
    ("empty.mp4", "This file cannot be used: empty.mp4: the file is empty"),
])
def test_07_unreadable_files_are_refused_at_once(app, name, expected):
    app.go("capture")
    choose_file(app, name)
    capture = app.sm.get_screen("capture")
    assert capture.framing_text.startswith(expected)
    assert capture.chosen_path == "" and capture.ids.start_button.disabled
    assert len(app.store.results()) == 1


@pytest.mark.parametrize("name, expected", [
    ("no_person.mp4", "No person was found"),
    ("two_people.mp4", "More than one person was seen"),
    ("dark.mp4", "The video is too dark"),
    ("too_short.mp4", "The recording is only 2 seconds long"),
    ("blink.mp4", "only 0.5 seconds long"),
])
def test_08_bad_videos_get_a_clear_message_and_lose_nothing(app, name, expected):
    app.go("capture")
    processing = check_video(app, name)
    assert processing.outcome in ("not_scorable", "error")
    assert expected in all_text(processing)
    assert len(app.store.results()) == 1  # the earlier result is still there
    if name == "two_people.mp4":
        shot("05_processing_two_people")


def test_09_wrong_bundle_is_a_clear_message(app, bundle_dir, tmp_path):
    tampered = tmp_path / "bundle"
    shutil.copytree(bundle_dir, tampered)
    (tampered / "MODEL_CARD.md").write_text("edited")
    good, app.bundle_path, app._scorer = app.bundle_path, tampered, None
    try:
        app.go("capture")
        processing = check_video(app, "typical.npz")
        assert processing.outcome == "error"
        assert "The model bundle cannot be used: MODEL_CARD.md" in all_text(processing)
    finally:
        app.bundle_path, app._scorer = good, None
    assert len(app.store.results()) == 1


def test_10_history(app):
    tap(nav(app, "History"))
    history = app.sm.get_screen("history")
    assert app.sm.current == "history" and history.has_items
    assert "Mia" in all_text(history)
    shot("07_history")


def test_11_sharing_with_the_real_server(app, server):
    import httpx

    from mobile_app.upload import SETTING_TOKEN

    tap(nav(app, "Settings"))
    settings = app.sm.get_screen("settings")
    settings.ids.server.text = server.url
    tap(settings.ids.save_server_button)
    assert settings.server_message == "Saved."

    tap(nav(app, "Sharing"))
    sharing = app.sm.get_screen("sharing")
    assert sharing.ids.share_latest_button.disabled  # no consent yet
    text = all_text(sharing)
    assert "Corrected age in weeks (4.4)" in text and "Never: the video" in text
    row = sharing.rows["anonymized_video"]
    tap(row.ids.give)
    app._upload_thread.join(30)
    pump()
    assert row.active and app.store.active_consent("anonymized_video").server_id
    tap(sharing.ids.share_latest_button)
    app._upload_thread.join(30)
    pump()
    (task,) = [t for t in app.store.tasks() if t.kind == "submission"]
    assert task.state == "done", task.last_error
    assert "1 waiting" not in sharing.queue_text and "sent" in sharing.queue_text
    shot("08_sharing")
    headers = {"Authorization": f"Bearer {app.store.get_setting(SETTING_TOKEN)}"}
    sub_url = f"{server.url}/v1/submissions/{task.response['submission_id']}"
    assert httpx.get(sub_url, headers=headers).status_code == 200

    tap(row.ids.withdraw)  # one tap
    app._upload_thread.join(30)
    pump()
    assert not row.active and "withdrawn" in sharing.message
    assert httpx.get(sub_url, headers=headers).status_code == 404  # erased on the server


def test_12_settings_and_delete_everything(app):
    from mobile_app.ui.screens import ConfirmPopup

    tap(nav(app, "Settings"))
    settings = app.sm.get_screen("settings")
    info = all_text(settings)
    assert app._bundle.version in info and "Decision threshold" in info and "1 result(s)" in info
    shot("09_settings")
    tap(settings.ids.delete_all_data_button)
    popup = popup_of(ConfirmPopup)
    tap(popup.ids.confirm_button)
    app._delete_thread.join(30)
    pump(lambda: app.sm.current == "welcome")
    assert app.store.results() == [] and app.store.profiles() == []
    assert not any(p.suffix in (".npz", ".mp4") for p in app.store.dir.rglob("*"))
    db = sqlite3.connect(app.store.dir / "cogma.sqlite3")
    assert db.execute("SELECT count(*) FROM profiles").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM consents WHERE withdrawn_at IS NULL").fetchone()[0] == 0
