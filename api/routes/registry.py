"""Enrolment: elders and devices, pairing and swapping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

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
from storage import registry

router = APIRouter(prefix="/api/v1", tags=["registry"])
ElderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
DeviceIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]
NOT_FOUND = {404: {"model": Problem}}
CONFLICT = {409: {"model": Problem}}


@router.get("/elders", response_model=EldersPublic)
async def list_elders(conn: ConnDep, limit: Limit = 100, offset: Offset = 0) -> EldersPublic:
    rows, total = await registry.list_elders(conn, limit=limit, offset=offset)
    return EldersPublic(data=[ElderPublic(**r) for r in rows], count=total)


@router.post(
    "/elders", response_model=ElderPublic, status_code=status.HTTP_201_CREATED, responses=CONFLICT
)
async def create_elder(body: ElderCreate, conn: ConnDep) -> ElderPublic:
    return ElderPublic(**await registry.create_elder(conn, body.model_dump(exclude_unset=True)))


@router.get("/elders/{elder_id}", response_model=ElderPublic, responses=NOT_FOUND)
async def get_elder(elder_id: ElderId, conn: ConnDep) -> ElderPublic:
    return ElderPublic(**await registry.get_elder(conn, elder_id))


@router.patch("/elders/{elder_id}", response_model=ElderPublic, responses=NOT_FOUND)
async def update_elder(elder_id: ElderId, body: ElderUpdate, conn: ConnDep) -> ElderPublic:
    fields = body.model_dump(exclude_unset=True)
    return ElderPublic(**await registry.update_elder(conn, elder_id, fields))


@router.delete("/elders/{elder_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_elder(elder_id: ElderId, conn: ConnDep) -> Response:
    await registry.delete_elder(conn, elder_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/devices", response_model=DevicesPublic)
async def list_devices(conn: ConnDep, limit: Limit = 100, offset: Offset = 0) -> DevicesPublic:
    rows, total = await registry.list_devices(conn, limit=limit, offset=offset)
    return DevicesPublic(data=[DevicePublic(**r) for r in rows], count=total)


@router.post(
    "/devices",
    response_model=DevicePublic,
    status_code=status.HTTP_201_CREATED,
    responses={**CONFLICT, **NOT_FOUND},
)
async def create_device(body: DeviceCreate, conn: ConnDep) -> DevicePublic:
    row = await registry.create_device(
        conn, body.id, body.model, body.report_interval_s, body.elder_id
    )
    return DevicePublic(**row)


@router.get("/devices/{device_id}", response_model=DevicePublic, responses=NOT_FOUND)
async def get_device(device_id: DeviceIdPath, conn: ConnDep) -> DevicePublic:
    return DevicePublic(**await registry.get_device(conn, device_id))


@router.patch("/devices/{device_id}", response_model=DevicePublic, responses=NOT_FOUND)
async def update_device(device_id: DeviceIdPath, body: DeviceUpdate, conn: ConnDep) -> DevicePublic:
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    return DevicePublic(**await registry.update_device(conn, device_id, fields))


@router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_device(device_id: DeviceIdPath, conn: ConnDep) -> Response:
    await registry.delete_device(conn, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/devices/{device_id}/pair", response_model=DevicePublic, responses=NOT_FOUND)
async def pair_device(device_id: DeviceIdPath, body: PairRequest, conn: ConnDep) -> DevicePublic:
    """Pair the device to an elder; a device paired to someone else is swapped over."""
    return DevicePublic(**await registry.pair(conn, device_id, body.elder_id))


@router.post("/devices/{device_id}/unpair", response_model=DevicePublic, responses=NOT_FOUND)
async def unpair_device(device_id: DeviceIdPath, conn: ConnDep) -> DevicePublic:
    return DevicePublic(**await registry.unpair(conn, device_id))
