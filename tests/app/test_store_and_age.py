"""Corrected age, the local SQLite store, and the rule that a birth date is never kept."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from mobile_app.age import AgeError, age_window, corrected_age_weeks, parse_date
from mobile_app.errors import StoreError
from mobile_app.pipeline import screen
from mobile_app.store import Store, iter_files


def test_corrected_age_counts_from_the_due_date():
    today = dt.date(2026, 11, 25)
    # Born at 32 weeks, 10 weeks ago: 8 weeks early, so 2 weeks corrected age.
    assert corrected_age_weeks(today - dt.timedelta(weeks=10), 32, today) == 2.0
    assert corrected_age_weeks(today - dt.timedelta(weeks=14), 40, today) == 14.0
    assert corrected_age_weeks(today - dt.timedelta(days=3), 30 + 3 / 7, today) == pytest.approx(-9.1, abs=0.05)


@pytest.mark.parametrize("text", ["2026-09-14", "14.09.2026", "14/09/2026", " 2026-9-14 "])
def test_dates_as_parents_type_them(text):
    assert parse_date(text) == dt.date(2026, 9, 14)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "31.02.2026"])
def test_bad_dates_say_how_to_type_them(text):
    with pytest.raises(AgeError, match="like 2026-09-14"):
        parse_date(text)


def test_impossible_ages_are_refused():
    today = dt.date(2026, 11, 25)
    with pytest.raises(AgeError, match="future"):
        corrected_age_weeks(today + dt.timedelta(days=1), 40, today)
    with pytest.raises(AgeError, match="between 22 and 44"):
        corrected_age_weeks(today, 18, today)
    with pytest.raises(AgeError, match="first months"):
        corrected_age_weeks(today - dt.timedelta(weeks=200), 40, today)


def test_gma_windows():
    assert age_window(-2).period == "preterm" and age_window(4).period == "writhing"
    assert age_window(8.5).period == "between" and not age_window(8.5).in_window
    assert age_window(14).period == "fidgety" and age_window(14).in_window
    too_old = age_window(26)
    assert too_old.period == "too_old" and not too_old.in_window and "20 weeks" in too_old.message


def test_profiles_keep_a_nickname_and_the_age_in_weeks_only(tmp_path):
    store = Store(tmp_path)
    p = store.add_profile("  Mia  ", 4.3)
    assert p.nickname == "Mia" and p.age_weeks == 4.3 and len(p.pseudonym) == 32
    assert store.find_profile("Mia") == p
    assert p.age_now(p.age_set_at + 7 * 24 * 3600) == pytest.approx(5.3)
    with pytest.raises(StoreError, match="nickname"):
        store.add_profile("   ", 1.0)
    with pytest.raises(StoreError, match="at most"):
        store.add_profile("x" * 41, 1.0)
    columns = {row[1] for row in sqlite3.connect(tmp_path / "cogma.sqlite3").execute("PRAGMA table_info(profiles)")}
    assert not any("birth" in c or "date" in c for c in columns)


def test_results_survive_reopening_and_deleting_removes_files(tmp_path, recordings, scorer):
    store = Store(tmp_path)
    profile = store.add_profile("Mia", 12.0)
    result = screen(recordings["typical"], scorer=scorer, age_weeks=12.0)
    stored = store.add_result(result, profile.id, result.recording, keep_video=recordings["atypical"])
    store.close()

    store = Store(tmp_path)  # the app was closed and opened again
    (again,) = store.results()
    assert again == stored and again.nickname == "Mia" and again.age_weeks == 12.0
    assert again.risk == result.risk and again.band == result.band
    assert (tmp_path / again.recording_file).is_file() and (tmp_path / again.video_file).is_file()
    store.delete_result(again.id)
    assert store.results() == [] and not any(p.suffix in (".npz", ".mp4") for p in iter_files(store))

    unscorable = screen(recordings["typical"], scorer=scorer)
    unscorable.scorable = False
    with pytest.raises(StoreError, match="only scored results"):
        store.add_result(unscorable, None, None)


def test_newer_data_is_not_overwritten(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "cogma.sqlite3")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer version"):
        Store(tmp_path)


def test_a_damaged_database_is_a_clear_error(tmp_path):
    (tmp_path / "cogma.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        Store(tmp_path)


def test_screening_follows_the_gma_age_window(recordings, scorer):
    too_old = screen(recordings["typical"], scorer=scorer, age_weeks=30.0)
    assert not too_old.scorable and too_old.risk is None
    assert any("up to 20 weeks" in r for r in too_old.reasons) and "doctor or nurse" in too_old.advice
    between = screen(recordings["typical"], scorer=scorer, age_weeks=8.5)
    assert between.scorable and any("less reliable" in w for w in between.warnings)
    in_window = screen(recordings["typical"], scorer=scorer, age_weeks=12.0)
    assert in_window.scorable and not any("weeks" in w for w in in_window.warnings)


def test_an_age_that_contradicts_the_recording_is_noted(recordings, scorer):
    from skeleton.recording import load_recording

    stored = load_recording(recordings["typical"]).age_weeks
    assert stored is not None and stored < 14.0
    later = screen(recordings["typical"], scorer=scorer, age_weeks=stored + 5.0)
    assert later.age_weeks == stored + 5.0 and any(f"saved at {stored:g} weeks" in w for w in later.warnings)
    same = screen(recordings["typical"], scorer=scorer, age_weeks=stored + 0.5)
    assert not any("saved at" in w for w in same.warnings)
