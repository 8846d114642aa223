"""Each device's own MQTT credentials: issue or rotate (secret shown once), revoke.

With ``ELDERCARE_BROKER_AUTH`` on, every change rewrites the private Mosquitto's
password and ACL files and makes it reload: a revoked device is disconnected and
refused from then on.  With it off the credentials are stored only, ready for the
day it is turned on (the files are written at the broker's start).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.auth_deps import CurrentUser, now, require
from api.deps import ConnDep, SettingsDep
from api.models import Problem
from auth.roles import Permission
from broker_auth import apply
from broker_auth.mosquitto_files import hash_secret, new_secret
from eldercare.settings import Settings
from storage import device_credentials

router = APIRouter(prefix="/api/v1/devices", tags=["device credentials"])
DeviceIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Admin = Annotated[CurrentUser, Depends(require(Permission.devices_manage))]
ERRORS = {401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}}
# One rewrite of the broker files at a time, each from committed rows, so the last
# writer always renders every change (one API process writes the private broker's files).
_files_lock = asyncio.Lock()


class CredentialIssued(BaseModel):
    device_id: str
    username: str = Field(description="MQTT user name: the device id.")
    password: str = Field(description="Shown this once; only its hash is kept.")
    issued_at: datetime
    broker_reloaded: bool = Field(description="The private broker has the new files loaded.")


class CredentialStatus(BaseModel):
    device_id: str
    active: bool
    issued_at: datetime | None
    revoked_at: datetime | None


def broker_folder(settings: Settings) -> FsPath:
    return (settings.home / "broker").resolve()


async def _apply(conn: ConnDep, settings: Settings) -> bool:
    if not settings.broker_auth:
        return False
    return await apply.apply(
        conn, broker_folder(settings), service_user=settings.broker_service_user
    )


@router.post(
    "/{device_id}/credentials",
    response_model=CredentialIssued,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
async def issue_credentials(
    device_id: DeviceIdPath, request: Request, conn: ConnDep, settings: SettingsDep, _: Admin
) -> CredentialIssued:
    """Issue the device's MQTT password, or rotate it (the old one stops working)."""
    secret = new_secret()
    async with _files_lock:
        row = await device_credentials.issue(
            conn, device_id, secret_hash=hash_secret(secret), now=now(request)
        )
        await conn.commit()
        reloaded = await _apply(conn, settings)
    return CredentialIssued(
        device_id=device_id,
        username=device_id,
        password=secret,
        issued_at=row["issued_at"],
        broker_reloaded=reloaded,
    )


@router.get("/{device_id}/credentials", response_model=CredentialStatus, responses=ERRORS)
async def credential_status(device_id: DeviceIdPath, conn: ConnDep, _: Admin) -> CredentialStatus:
    row = await device_credentials.status(conn, device_id)
    active = row["issued_at"] is not None and row["revoked_at"] is None
    return CredentialStatus(**row, active=active)


@router.delete("/{device_id}/credentials", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def revoke_credentials(
    device_id: DeviceIdPath, request: Request, conn: ConnDep, settings: SettingsDep, _: Admin
) -> Response:
    """Lock the device out of the broker (it is disconnected if connected)."""
    async with _files_lock:
        await device_credentials.revoke(conn, device_id, now=now(request))
        await conn.commit()
        await _apply(conn, settings)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
