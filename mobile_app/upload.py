"""Sharing keypoints with the research server: consent-gated, offline-first, never video.

Everything to send goes into the store's task table first, so it survives the app being
closed, the phone being offline or the server being down. :meth:`UploadQueue.run_once`
sends what is due, in order (withdrawals, then consents, then submissions), and backs off
exponentially on failures. Rules that hold whatever happens:

* a recording is only sent under a consent for that scope that is recorded on the phone,
  registered on the server and not withdrawn — checked again right before sending;
* each submission has one Idempotency-Key, reused on every retry, so a lost answer never
  makes a second copy on the server;
* withdrawing cancels everything not yet sent and asks the server to erase what it has.

API: docs/server.md (``POST /v1/devices``, ``POST/DELETE /v1/consents``, ``POST /v1/submissions``,
``GET /v1/jobs/{id}``).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from skeleton.errors import CogmaError
from skeleton.recording import load_recording

from .errors import StoreError, UploadError
from .store import Consent, Store, Task

log = logging.getLogger("cogma.app.upload")

CONSENT_TEXT_VERSION = "v1"
SCOPES = ("research_keypoints", "anonymized_video")
GIVEN_BY = ("parent", "guardian", "legal_representative")
APP_VERSION = "0.1.0"

SETTING_SERVER = "server_url"
SETTING_DEVICE_ID = "device_id"
SETTING_TOKEN = "device_token"

REGISTER, SUBMIT, WITHDRAW = "register_consent", "submission", "withdraw_consent"


class ApiError(UploadError):
    def __init__(self, message: str, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient


class ApiClient:
    """A thin, synchronous client of the server's v1 API (httpx)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 15.0):
        import httpx

        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, ok: tuple[int, ...], **kwargs: Any) -> dict[str, Any]:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self._client.request(method, path, headers=headers, **kwargs)
        except self._httpx.HTTPError as e:  # offline, refused, timed out, reset
            raise ApiError(f"the server cannot be reached ({type(e).__name__})", transient=True) from None
        if resp.status_code in ok:
            return resp.json() if resp.content else {}
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text[:200]
        transient = resp.status_code >= 500 or resp.status_code in (401, 408, 429)
        raise ApiError(f"server answered {resp.status_code}: {detail}", resp.status_code, transient)

    def register_device(self, platform: str) -> tuple[str, str]:
        body = self._request("POST", "/v1/devices", (200, 201), json={"platform": platform, "app_version": APP_VERSION})
        return body["device_id"], body["token"]

    def create_consent(self, scope: str, text_version: str, given_by: str) -> str:
        body = self._request("POST", "/v1/consents", (200, 201),
                             json={"scope": scope, "text_version": text_version, "given_by": given_by})
        return body["consent_id"]

    def delete_consent(self, consent_id: str) -> dict[str, Any]:
        """Withdraw and erase; an already-erased consent (404) counts as done."""
        try:
            return self._request("DELETE", f"/v1/consents/{consent_id}", (200, 204))
        except ApiError as e:
            if e.status == 404:
                return {"consent_id": consent_id, "withdrawn": True, "already_gone": True}
            raise

    def submit(self, recording: bytes, consent_id: str, idempotency_key: str) -> dict[str, Any]:
        return self._request(
            "POST", "/v1/submissions", (200, 201, 202),
            files={"recording": ("recording.npz", recording, "application/octet-stream")},
            data={"consent_id": consent_id}, headers={"Idempotency-Key": idempotency_key},
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}", (200,))


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n: base·2^(n-1), capped, with jitter so phones don't retry in step."""

    base_s: float = 10.0
    cap_s: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        d = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return d * (1.0 - self.jitter * (rng or random).random())


@dataclass
class RunSummary:
    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueueStatus:
    pending: int
    done: int
    failed: int
    cancelled: int
    last_error: str | None
    next_attempt_at: float | None

    def summary(self) -> str:
        if not (self.pending or self.done or self.failed):
            return "Nothing shared yet."
        parts = [f"{self.done} sent", f"{self.pending} waiting"]
        if self.failed:
            parts.append(f"{self.failed} could not be sent")
        text = ", ".join(parts) + "."
        if self.pending and self.last_error:
            text += f" Last try: {self.last_error}."
        return text


def what_is_sent(age_weeks: float | None, frames: int | None = None, fps: float | None = None) -> list[str]:
    """The exact list shown on the sharing screen; :func:`sharing_payload` sends nothing else."""
    frames_txt = f"{frames} frames" if frames else "one per video frame"
    return [
        f"Body keypoints: 33 points (x, y, how clearly seen) per frame, {frames_txt}"
        + (f" at {fps:g} per second" if fps else ""),
        "The video's frame size and frame rate, and the name of the pose model",
        f"Corrected age in weeks ({age_weeks:g})" if age_weeks is not None else "Corrected age in weeks",
        "A random code for your baby, so that two recordings of the same baby can be grouped",
        "Never: the video, pictures, your baby's nickname or name, the date of birth, your location",
    ]


def sharing_payload(recording_path: str, pseudonym: str | None) -> bytes:
    """The PoseRecording as sent: keypoints, frame rate and size, pose model, corrected age,
    a random code; every other field is dropped."""
    rec = load_recording(recording_path)
    shared = replace(rec, device="phone", label=None, infant_id=pseudonym, extra={})
    return shared.to_bytes()


class UploadQueue:
    def __init__(
        self,
        store: Store,
        platform: str = "desktop",
        clock: Callable[[], float] = time.time,
        backoff: Backoff = Backoff(),
        client_factory: Callable[..., ApiClient] = ApiClient,
    ):
        self.store = store
        self.platform = platform
        self.clock = clock
        self.backoff = backoff
        self.client_factory = client_factory
        self._rng = random.Random()

    # -- settings -------------------------------------------------------------------------
    @property
    def server_url(self) -> str | None:
        return self.store.get_setting(SETTING_SERVER)

    def set_server_url(self, url: str) -> None:
        url = url.strip().rstrip("/")
        if url and not url.startswith(("http://", "https://")):
            raise UploadError("The server address must start with https:// (or http:// on a local network).")
        if url != self.server_url:  # a new server knows nothing of this device
            self.store.set_setting(SETTING_DEVICE_ID, None)
            self.store.set_setting(SETTING_TOKEN, None)
        self.store.set_setting(SETTING_SERVER, url or None)

    # -- consent --------------------------------------------------------------------------
    def give_consent(self, scope: str, given_by: str, text_version: str = CONSENT_TEXT_VERSION) -> Consent:
        if scope not in SCOPES:
            raise UploadError(f"unknown sharing scope {scope!r}")
        if given_by not in GIVEN_BY:
            raise UploadError("Please say who gives consent (parent, guardian or legal representative).")
        current = self.store.active_consent(scope)
        if current is not None:
            return current
        consent = self.store.record_consent(scope, text_version, given_by)
        self.store.add_task(REGISTER, consent.id, now=self.clock())
        log.info("consent recorded: scope=%s text_version=%s", scope, text_version)
        return consent

    def withdraw(self, scope: str) -> Consent | None:
        """One tap: stop everything not yet sent and ask the server to erase what it has."""
        consent = self.store.active_consent(scope)
        if consent is None:
            return None
        self.store.mark_withdrawn(consent.id)
        cancelled = self.store.cancel_tasks_of_consent(consent.id, (REGISTER, SUBMIT))
        registered = any(t.kind == REGISTER and t.state == "done" for t in self._tasks_of(consent.id))
        if registered or consent.server_id:
            self.store.add_task(WITHDRAW, consent.id, now=self.clock())
        log.info("consent withdrawn: scope=%s, %d unsent uploads cancelled", scope, cancelled)
        return self.store.consent(consent.id)

    def withdraw_all(self) -> None:
        for scope in SCOPES:
            self.withdraw(scope)

    def erase_everything(self) -> None:
        """Settings' "delete all data": withdraw every consent (server erasure), then wipe the phone.

        Withdrawals that cannot reach the server now stay queued (they hold no personal data)
        and are sent when it can be reached."""
        self.withdraw_all()
        self.run_once()
        self.store.delete_all_data(keep_pending_withdrawals=True)

    def active_consents(self) -> dict[str, Consent | None]:
        return {scope: self.store.active_consent(scope) for scope in SCOPES}

    # -- sharing --------------------------------------------------------------------------
    def share_result(self, result_id: int) -> list[Task]:
        """Queue the result's keypoints under every active consent (one submission per scope)."""
        result = self.store.result(result_id)
        if not result.recording_file:
            raise UploadError("This result has no keypoints to share.")
        consents = [c for c in self.active_consents().values() if c is not None]
        if not consents:
            raise UploadError("Nothing is shared without your consent. Please choose what you agree to share first.")
        queued = {(t.consent_id, t.result_id) for t in self.store.tasks() if t.kind == SUBMIT and t.state in ("pending", "done")}
        return [self.store.add_task(SUBMIT, c.id, result_id, now=self.clock())
                for c in consents if (c.id, result_id) not in queued]

    def status(self) -> QueueStatus:
        tasks = self.store.tasks()
        pending = [t for t in tasks if t.state == "pending"]
        count = lambda s: sum(1 for t in tasks if t.state == s)  # noqa: E731
        last = max(pending, key=lambda t: t.attempts, default=None)
        return QueueStatus(
            pending=len(pending), done=count("done"), failed=count("failed"), cancelled=count("cancelled"),
            last_error=last.last_error if last else None,
            next_attempt_at=min((t.next_attempt_at for t in pending), default=None),
        )

    # -- sending --------------------------------------------------------------------------
    def run_once(self, now: float | None = None) -> RunSummary:
        """Send everything that is due; never raises for network or server trouble."""
        now = self.clock() if now is None else now
        summary = RunSummary()
        due = self.store.due_tasks(now)
        if not due:
            return summary
        if not self.server_url:
            for task in due:
                self._retry(task, "no server address is set (Settings)", summary, now)
            return summary
        client = self.client_factory(self.server_url)
        try:
            for task in due:
                self._run_task(client, task, summary, now)
        finally:
            client.close()
        return summary

    def _tasks_of(self, consent_id: int) -> list[Task]:
        return [t for t in self.store.tasks() if t.consent_id == consent_id]

    def _ensure_device(self, client: ApiClient) -> None:
        token = self.store.get_setting(SETTING_TOKEN)
        if not token:
            device_id, token = client.register_device(self.platform)
            self.store.set_setting(SETTING_DEVICE_ID, device_id)
            self.store.set_setting(SETTING_TOKEN, token)
            # A new registration (new server, or the server forgot this phone) knows none of the
            # consents in force: register them again before anything is sent under them.
            for consent in self.store.consents():
                if consent.active and consent.server_id:
                    self.store.set_consent_server_id(consent.id, None)
                    self.store.add_task(REGISTER, consent.id, now=self.clock())
        client.token = token

    def _run_task(self, client: ApiClient, task: Task, summary: RunSummary, now: float) -> None:
        task = self.store.task(task.id)  # may have been cancelled since the list was read
        if task.state != "pending":
            return
        try:
            self._ensure_device(client)
            handler = {REGISTER: self._register, SUBMIT: self._submit, WITHDRAW: self._withdraw}[task.kind]
            outcome = handler(client, task)
        except ApiError as e:
            if e.status == 401:  # the server forgot this device (reset, new server): register again
                self.store.set_setting(SETTING_TOKEN, None)
            if e.transient:
                self._retry(task, str(e), summary, now)
            else:
                self.store.finish_task(task.id, "failed", error=str(e))
                summary.failed += 1
                summary.errors.append(str(e))
                log.warning("upload task %d (%s) failed for good: %s", task.id, task.kind, e)
            return
        except CogmaError as e:  # a local problem (the kept keypoints are damaged): this task cannot succeed
            self.store.finish_task(task.id, "failed", error=str(e))
            summary.failed += 1
            summary.errors.append(str(e))
            return
        if outcome == "wait":  # a submission whose consent is not registered yet
            self.store.retry_task(task.id, now + self.backoff.base_s, "waiting for the consent to be registered")
            summary.retry_later += 1
        elif outcome == "cancelled":
            summary.cancelled += 1
        else:
            summary.sent += 1

    def _retry(self, task: Task, error: str, summary: RunSummary, now: float) -> None:
        delay = self.backoff.delay(task.attempts + 1, self._rng)
        self.store.retry_task(task.id, now + delay, error)
        summary.retry_later += 1
        summary.errors.append(error)

    def _register(self, client: ApiClient, task: Task) -> str:
        consent = self.store.consent(task.consent_id)
        if not consent.active:
            self.store.finish_task(task.id, "cancelled", error="consent withdrawn before it was sent")
            return "cancelled"
        server_id = client.create_consent(consent.scope, consent.text_version, consent.given_by)
        self.store.set_consent_server_id(consent.id, server_id)
        self.store.finish_task(task.id, "done", {"consent_id": server_id})
        if not self.store.consent(consent.id).active:  # withdrawn while the request was in flight
            self.store.add_task(WITHDRAW, consent.id, now=self.clock())
        return "sent"

    def _submit(self, client: ApiClient, task: Task) -> str:
        consent = self.store.consent(task.consent_id)
        if not consent.active:  # never upload without a consent in force
            self.store.finish_task(task.id, "cancelled", error="consent withdrawn")
            return "cancelled"
        if not consent.server_id:
            return "wait"
        try:
            result = self.store.result(task.result_id)
        except StoreError:
            self.store.finish_task(task.id, "cancelled", error="the result was deleted")
            return "cancelled"
        pseudonym = self.store.profile(result.profile_id).pseudonym if result.profile_id else None
        payload = sharing_payload(str(self.store.recording_path(result)), pseudonym)
        answer = client.submit(payload, consent.server_id, task.idempotency_key)
        self.store.finish_task(task.id, "done", answer)
        log.info("submission sent: task=%d scope=%s", task.id, consent.scope)
        return "sent"

    def _withdraw(self, client: ApiClient, task: Task) -> str:
        consent = self.store.consent(task.consent_id)
        if not consent.server_id:
            self.store.finish_task(task.id, "done", {"note": "never reached the server"})
            return "sent"
        answer = client.delete_consent(consent.server_id)
        self.store.mark_erased(consent.id)
        self.store.finish_task(task.id, "done", answer)
        return "sent"

    def job_status(self, task_id: int) -> dict[str, Any] | None:
        """Status of the server job behind a sent submission (None when there is none)."""
        task = self.store.task(task_id)
        job_id = (task.response or {}).get("job_id")
        if not job_id or not self.server_url:
            return None
        client = self.client_factory(self.server_url, self.store.get_setting(SETTING_TOKEN))
        try:
            return client.job(job_id)
        finally:
            client.close()
