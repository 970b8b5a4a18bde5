"""GET /v1/files/{key}: result files behind short-lived signed links (local storage; S3 uses its own links)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse

from ...security import LinkError, verify
from ..deps import State, not_found

router = APIRouter(prefix="/v1/files", tags=["files"])
_MEDIA = {".mp4": "video/mp4", ".json": "application/json"}


@router.get(
    "/{key:path}", response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}, "application/json": {}}}, 403: {}, 404: {}},
    summary="Download a result file through a signed link (no bearer token: the signature is the permission)",
)
def download(
    state: State,
    key: Annotated[str, Path(max_length=512)],
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(min_length=1, max_length=128, description="hex HMAC from the result call")],
) -> FileResponse:
    try:
        verify(state.secret, key, expires, signature)
    except LinkError as e:
        raise HTTPException(403, str(e)) from None
    # Only results are ever served: the recordings (keypoints) never leave the server.
    if not key.startswith("submissions/") or "/result/" not in key:
        raise not_found("file")
    path = state.store.local_path(key)
    if path is None or not path.is_file():
        raise not_found("file")  # erased, or kept in a store that issues its own links
    suffix = path.suffix.lower()
    return FileResponse(path, media_type=_MEDIA.get(suffix, "application/octet-stream"),
                        headers={"Cache-Control": "private, no-store"})
