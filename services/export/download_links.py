"""Signed, expiring download links of export files."""

from __future__ import annotations

import time
from urllib.parse import quote

from services import errors
from services.auth.signing import Signer

PURPOSE = "download"


def download_path(job_id: str) -> str:
    """The gateway path of a job's download route."""
    return f"/api/analytics/exports/{quote(job_id)}/download"


def sign(signer: Signer, workspace_id: int, job_id: str, ttl_seconds: float) -> tuple[str, int]:
    """A download URL (relative to the gateway) for the job and when it expires (epoch s)."""
    token = signer.sign(PURPOSE, {"job": job_id, "ws": workspace_id}, ttl_seconds)
    return f"{download_path(job_id)}?token={token}", int(time.time() + ttl_seconds)


def verify(signer: Signer, job_id: str, token: str) -> int:
    """The workspace a valid, unexpired link for job_id was signed for; 401 otherwise."""
    if not token:
        raise errors.unauthenticated("the download link's token is missing")
    claims = signer.verify(PURPOSE, token)
    if claims.get("job") != job_id or not isinstance(claims.get("ws"), int):
        raise errors.unauthenticated("this download token is for another export")
    return int(claims["ws"])
