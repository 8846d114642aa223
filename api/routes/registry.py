"""Enrolment: elders and devices, pairing and swapping.

Reading is scoped (``auth.scope``): staff see their community's elders and the devices
they wear, a caregiver their orders' elders, family their linked elders.  Writing the
registry is the administrator's (``elders.manage``, ``devices.manage``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from api.access import scoped, visible
from api.deps import ConnDep
from api.models import (
    DeviceCreate,
    DevicePublic,
    DevicesPublic,
    DeviceUpdate,
    ElderCreate,
    ElderPublic,
    EldersPublic,
    ElderUpdate,
    PairRequest,
    Problem,
)
from auth.roles import Permission
from auth.scope import Scope
from storage import registry

router = APIRouter(prefix="/api/v1", tags=["registry"])
ElderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
DeviceIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]
NOT_FOUND = {404: {"model": Problem}}
CONFLICT = {409: {"model": Problem}}
ReadElders = Annotated[Scope, Depends(scoped(Permission.elders_read))]
ManageElders = Annotated[Scope, Depends(scoped(Permission.elders_manage))]
ReadDevices = Annotated[Scope, Depends(scoped(Permission.devices_read))]
ManageDevices = Annotated[Scope, Depends(scoped(Permission.devices_manage))]


async def _device_in_scope(conn: ConnDep, scope: Scope, device_id: str) -> dict:
    row = await registry.get_device(conn, device_id)
    visible(scope.sees_device(row["elder_id"]), "device", device_id)
    return row


@router.get("/elders", response_model=EldersPublic)
async def list_elders(
    conn: ConnDep, scope: ReadElders, limit: Limit = 100, offset: Offset = 0
) -> EldersPublic:
    """The elders the caller may see; ``count`` counts only those."""
    rows, total = await registry.list_elders(
        conn, limit=limit, offset=offset, elder_ids=scope.elder_filter()
    )
    return EldersPublic(data=[ElderPublic(**r) for r in rows], count=total)


@router.post(
    "/elders", response_model=ElderPublic, status_code=status.HTTP_201_CREATED, responses=CONFLICT
)
async def create_elder(body: ElderCreate, conn: ConnDep, _: ManageElders) -> ElderPublic:
    return ElderPublic(**await registry.create_elder(conn, body.model_dump(exclude_unset=True)))


@router.get("/elders/{elder_id}", response_model=ElderPublic, responses=NOT_FOUND)
async def get_elder(elder_id: ElderId, conn: ConnDep, scope: ReadElders) -> ElderPublic:
    visible(scope.sees_elder(elder_id), "elder", elder_id)
    return ElderPublic(**await registry.get_elder(conn, elder_id))


@router.patch("/elders/{elder_id}", response_model=ElderPublic, responses=NOT_FOUND)
async def update_elder(
    elder_id: ElderId, body: ElderUpdate, conn: ConnDep, _: ManageElders
) -> ElderPublic:
    fields = body.model_dump(exclude_unset=True)
    return ElderPublic(**await registry.update_elder(conn, elder_id, fields))


@router.delete("/elders/{elder_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_elder(elder_id: ElderId, conn: ConnDep, _: ManageElders) -> Response:
    await registry.delete_elder(conn, elder_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/devices", response_model=DevicesPublic)
async def list_devices(
    conn: ConnDep, scope: ReadDevices, limit: Limit = 100, offset: Offset = 0
) -> DevicesPublic:
    """The devices the caller may see (staff: those worn in their community)."""
    rows, total = await registry.list_devices(
        conn, limit=limit, offset=offset, elder_ids=scope.elder_filter()
    )
    return DevicesPublic(data=[DevicePublic(**r) for r in rows], count=total)


@router.post(
    "/devices",
    response_model=DevicePublic,
    status_code=status.HTTP_201_CREATED,
    responses={**CONFLICT, **NOT_FOUND},
)
async def create_device(body: DeviceCreate, conn: ConnDep, _: ManageDevices) -> DevicePublic:
    row = await registry.create_device(
        conn, body.id, body.model, body.report_interval_s, body.elder_id
    )
    return DevicePublic(**row)


@router.get("/devices/{device_id}", response_model=DevicePublic, responses=NOT_FOUND)
async def get_device(device_id: DeviceIdPath, conn: ConnDep, scope: ReadDevices) -> DevicePublic:
    return DevicePublic(**await _device_in_scope(conn, scope, device_id))


@router.patch("/devices/{device_id}", response_model=DevicePublic, responses=NOT_FOUND)
async def update_device(
    device_id: DeviceIdPath, body: DeviceUpdate, conn: ConnDep, _: ManageDevices
) -> DevicePublic:
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    return DevicePublic(**await registry.update_device(conn, device_id, fields))


@router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_device(device_id: DeviceIdPath, conn: ConnDep, _: ManageDevices) -> Response:
    await registry.delete_device(conn, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/devices/{device_id}/pair", response_model=DevicePublic, responses=NOT_FOUND)
async def pair_device(
    device_id: DeviceIdPath, body: PairRequest, conn: ConnDep, _: ManageDevices
) -> DevicePublic:
    """Pair the device to an elder; a device paired to someone else is swapped over."""
    return DevicePublic(**await registry.pair(conn, device_id, body.elder_id))


@router.post("/devices/{device_id}/unpair", response_model=DevicePublic, responses=NOT_FOUND)
async def unpair_device(device_id: DeviceIdPath, conn: ConnDep, _: ManageDevices) -> DevicePublic:
    return DevicePublic(**await registry.unpair(conn, device_id))
