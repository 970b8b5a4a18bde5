"""Reliability 4: a replayed Idempotency-Key returns the same submission and job; another body under it is 409."""

from __future__ import annotations

import uuid

from server_testkit import make_recording, run_clients


def test_replay_returns_same_submission_and_job(shared_stack, api):
    token, consent_id = api.device_with_consent()
    data = make_recording(seed=7)
    key = uuid.uuid4().hex
    first = api.submit(token, consent_id, data, key)
    assert first.status_code == 202, first.text
    for _ in range(3):
        again = api.submit(token, consent_id, data, key)
        assert again.status_code == 202
        assert again.json()["submission_id"] == first.json()["submission_id"]
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.json()["replayed"] is True
    with shared_stack.db() as db:
        (n_sub,) = db.execute("select count(*) from submission where idempotency_key = ?", (key,)).fetchone()
        (n_job,) = db.execute("select count(*) from job where submission_id = ?",
                              (first.json()["submission_id"],)).fetchone()
    assert n_sub == 1 and n_job == 1


def test_same_key_other_body_is_409(api):
    token, consent_id = api.device_with_consent()
    key = uuid.uuid4().hex
    assert api.submit(token, consent_id, make_recording(seed=1), key).status_code == 202
    r = api.submit(token, consent_id, make_recording(seed=2), key)
    assert r.status_code == 409 and "Idempotency-Key" in r.json()["detail"]
    other_consent = api.consent(token)
    r = api.submit(token, other_consent, make_recording(seed=1), key)  # same file, other consent: other body
    assert r.status_code == 409


def test_keys_are_per_device(api):
    key = uuid.uuid4().hex
    data = make_recording(seed=3)
    ids = set()
    for _ in range(2):
        token, consent_id = api.device_with_consent()
        r = api.submit(token, consent_id, data, key)
        assert r.status_code == 202 and r.json()["replayed"] is False
        ids.add(r.json()["submission_id"])
    assert len(ids) == 2


def test_concurrent_replays_make_one_submission(shared_stack):
    api = shared_stack.client()
    token, consent_id = api.device_with_consent()
    data = make_recording(seed=11)
    key = uuid.uuid4().hex
    answers: list[tuple[int, str]] = []

    def client(_: int) -> None:
        c = shared_stack.client()
        try:
            r = c.submit(token, consent_id, data, key)
            answers.append((r.status_code, r.json().get("submission_id")))
        finally:
            c.close()

    assert run_clients(8, client) == []
    assert {code for code, _ in answers} == {202}
    assert len({sid for _, sid in answers}) == 1
    with shared_stack.db() as db:
        (n,) = db.execute("select count(*) from submission where idempotency_key = ?", (key,)).fetchone()
    assert n == 1
    api.close()
