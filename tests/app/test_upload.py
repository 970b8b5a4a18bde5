"""The upload client and its offline queue against the real server (`cogma serve` on loopback)."""

from __future__ import annotations

import random
import sqlite3

import httpx
import pytest

from mobile_app.errors import UploadError
from mobile_app.pipeline import screen
from mobile_app.store import Store
from mobile_app.upload import SETTING_TOKEN, Backoff, UploadQueue, sharing_payload, what_is_sent
from skeleton.recording import load_recording

OFFLINE = "http://127.0.0.1:9"  # the discard port: nothing answers


@pytest.fixture()
def phone(tmp_path, recordings, scorer):
    """A phone's store with one scored result of the baby 'Mia'."""
    store = Store(tmp_path / "phone")
    profile = store.add_profile("Mia", 12.0)
    result = screen(recordings["typical"], scorer=scorer, age_weeks=12.0)
    stored = store.add_result(result, profile.id, result.recording)
    yield store, stored
    store.close()


def server_get(server, store, path):
    token = store.get_setting(SETTING_TOKEN)
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_nothing_is_shared_without_consent(phone, server):
    store, result = phone
    queue = UploadQueue(store)
    queue.set_server_url(server.url)
    with pytest.raises(UploadError, match="without your consent"):
        queue.share_result(result.id)
    assert queue.run_once().sent == 0 and store.get_setting(SETTING_TOKEN) is None  # not even a registration


def test_consent_share_and_withdraw_against_the_real_server(phone, server):
    store, result = phone
    queue = UploadQueue(store)
    queue.set_server_url(server.url)
    consent = queue.give_consent("anonymized_video", "parent")
    assert queue.run_once().sent == 1
    consent = store.consent(consent.id)
    answer = server_get(server, store, f"/v1/consents/{consent.server_id}")
    assert answer.status_code == 200 and answer.json()["scope"] == "anonymized_video"

    (task,) = queue.share_result(result.id)
    assert queue.share_result(result.id) == []  # already queued: not twice
    summary = queue.run_once()
    assert summary.sent == 1, summary.errors
    sent = store.task(task.id)
    assert sent.state == "done" and sent.response["job_id"]
    sub = server_get(server, store, f"/v1/submissions/{sent.response['submission_id']}").json()
    assert sub["num_frames"] == result.details["quality"]["duration_s"] * 30 and sub["schema_name"] == "mediapipe33"
    assert server_get(server, store, f"/v1/jobs/{sent.response['job_id']}").json()["status"] in ("queued", "running", "succeeded")

    # A lost answer: the phone sends the same submission again with the same Idempotency-Key.
    db = sqlite3.connect(store.dir / "cogma.sqlite3")
    db.execute("UPDATE tasks SET state='pending' WHERE id=?", (task.id,))
    db.commit()
    db.close()
    assert queue.run_once().sent == 1
    replay = store.task(task.id).response
    assert replay["replayed"] is True and replay["submission_id"] == sent.response["submission_id"]

    # Withdrawal: one call; the server erases the consent and what came under it.
    queue.withdraw("anonymized_video")
    assert queue.run_once().sent == 1
    assert store.consent(consent.id).erased_at is not None
    assert server_get(server, store, f"/v1/consents/{consent.server_id}").status_code == 404
    assert server_get(server, store, f"/v1/submissions/{sent.response['submission_id']}").status_code == 404


def test_what_is_sent_is_keypoints_and_age_only(phone):
    store, result = phone
    profile = store.profile(result.profile_id)
    payload = load_recording(sharing_payload(str(store.recording_path(result)), profile.pseudonym))
    assert payload.age_weeks == 12.0 and payload.infant_id == profile.pseudonym
    assert payload.extra == {} and payload.device == "phone" and payload.label is None
    assert "Mia" not in str(payload.meta())
    shown = what_is_sent(12.0, payload.num_frames, payload.fps)
    assert any("Corrected age in weeks (12)" in line for line in shown)
    assert any(line.startswith("Never: the video") for line in shown)


def test_offline_queue_survives_a_restart_and_backs_off(phone, server):
    store, result = phone
    clock = [1_000_000.0]
    queue = UploadQueue(store, clock=lambda: clock[0], backoff=Backoff(base_s=10, cap_s=100, jitter=0.0))
    queue.set_server_url(OFFLINE)
    queue.give_consent("research_keypoints", "guardian")
    queue.share_result(result.id)
    delays = []
    for _ in range(5):
        summary = queue.run_once(now=clock[0])
        assert summary.sent == 0 and summary.retry_later >= 1
        nxt = min(t.next_attempt_at for t in store.tasks("pending"))
        delays.append(nxt - clock[0])
        clock[0] = nxt
    assert delays == [10, 20, 40, 80, 100]  # exponential, capped
    assert "cannot be reached" in queue.status().last_error
    store.close()

    # The app is closed and opened again, later, with the network back.
    store2 = Store(store.dir)
    queue2 = UploadQueue(store2)
    assert len(store2.tasks("pending")) == 2
    queue2.set_server_url(server.url)
    summary = queue2.run_once(now=clock[0] + 1000)
    assert summary.sent == 2, summary.errors
    assert queue2.status().pending == 0 and queue2.status().done == 2
    store2.close()


def test_withdrawing_before_anything_reached_the_server_sends_nothing(phone, server):
    store, result = phone
    queue = UploadQueue(store)
    queue.set_server_url(OFFLINE)
    queue.give_consent("research_keypoints", "parent")
    queue.share_result(result.id)
    queue.run_once()  # offline: nothing goes out
    queue.withdraw("research_keypoints")
    queue.set_server_url(server.url)
    assert queue.run_once(now=10**12).sent == 0
    assert {t.state for t in store.tasks()} == {"cancelled"}
    assert store.get_setting(SETTING_TOKEN) is None  # the server never heard of this phone


def test_a_forgotten_device_registers_again(phone, server):
    store, result = phone
    queue = UploadQueue(store)
    queue.set_server_url(server.url)
    queue.give_consent("research_keypoints", "parent")
    queue.run_once()
    store.set_setting(SETTING_TOKEN, "cgd_not-a-valid-token")
    queue.share_result(result.id)
    first = queue.run_once()
    assert first.sent == 0 and "401" in first.errors[0]
    assert store.get_setting(SETTING_TOKEN) is None
    # The phone registers again and, before sending, registers the consent in force again.
    second = queue.run_once(now=10**12)
    assert second.sent == 0 and second.retry_later == 1  # the submission waits for the consent
    third = queue.run_once(now=2 * 10**12)
    assert third.sent == 2 and not third.errors  # consent again, then the submission
    assert queue.status().pending == 0


def test_damaged_local_keypoints_fail_that_upload_only(phone, server):
    store, result = phone
    queue = UploadQueue(store)
    queue.set_server_url(server.url)
    queue.give_consent("research_keypoints", "parent")
    store.recording_path(result).write_bytes(b"damaged")
    queue.share_result(result.id)
    summary = queue.run_once()
    assert summary.sent == 1 and summary.failed == 1  # the consent went, the damaged upload did not
    assert "not an .npz pose recording" in summary.errors[0]


def test_backoff_has_jitter():
    b = Backoff(base_s=10, cap_s=1000, jitter=0.2)
    rng = random.Random(1)
    values = [b.delay(3, rng) for _ in range(50)]
    assert all(32 <= v <= 40 for v in values) and len(set(values)) > 1


def test_server_address_must_be_http(tmp_path):
    queue = UploadQueue(Store(tmp_path))
    with pytest.raises(UploadError, match="https://"):
        queue.set_server_url("ftp://example.org")
