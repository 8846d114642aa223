"""What the map and an elder's page read: newest state, history, the community outline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.access import scoped, visible
from api.attention import attention_reasons
from api.deps import ConnDep, SettingsDep
from api.models import (
    ElderLatest,
    LatestPublic,
    MapConfig,
    PositionBucket,
    PositionSeries,
    Problem,
    VitalsBucket,
    VitalsSeries,
)
from auth.roles import Permission
from auth.scope import Scope
from storage import readings, registry

router = APIRouter(prefix="/api/v1", tags=["readings"])
ElderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
DEFAULT_CENTER = (34.867, 110.447)  # 杏北社区, 永济市
MAX_POINTS = 5000
SignedIn = Annotated[Scope, Depends(scoped())]
ReadReadings = Annotated[Scope, Depends(scoped(Permission.readings_read))]


@router.get("/config", response_model=MapConfig)
async def map_config(settings: SettingsDep, conn: ConnDep, _: SignedIn) -> MapConfig:
    c = await registry.community(conn)
    center = (c["center_lat"], c["center_lon"]) if c and c["center_lat"] else DEFAULT_CENTER
    return MapConfig(
        tile_url=settings.tile_url,
        tile_crs=settings.tile_crs,
        center=center,
        zoom=16,
        live_interval_s=settings.live_interval_s,
    )


@router.get("/community")
async def community_geojson(conn: ConnDep, _: SignedIn) -> dict[str, object]:
    """GeoJSON of the community: outline, residential compounds, streets (WGS-84)."""
    c = await registry.community(conn)
    return c["geojson"] if c else {"type": "FeatureCollection", "features": []}


@router.get("/latest", response_model=LatestPublic)
async def latest(conn: ConnDep, scope: ReadReadings) -> LatestPublic:
    """Every elder's (that the caller may see) newest position and vital signs in one
    call: the map's first paint."""
    now = datetime.now(UTC)
    rows = await readings.latest_all(conn)
    elders = []
    for r in rows:
        if not scope.sees_elder(r["elder_id"]):
            continue
        reasons = attention_reasons(r, now)
        elders.append(ElderLatest(**r, attention=bool(reasons), attention_reasons=reasons))
    return LatestPublic(server_time=now, count=len(elders), elders=elders)


def _window(
    start: datetime | None, end: datetime | None, bucket_s: int | None, default_span: timedelta
) -> tuple[datetime, datetime, timedelta]:
    end = end or datetime.now(UTC)
    start = start or end - default_span
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise HTTPException(
                422, f"{name} must carry a UTC offset, e.g. 2026-11-28T08:00:00+08:00"
            )
    if start >= end:
        raise HTTPException(422, "start must be before end")
    span = end - start
    if span > timedelta(days=400):
        raise HTTPException(422, "the time range may span at most 400 days")
    bucket = timedelta(seconds=bucket_s) if bucket_s else max(span / 500, timedelta(minutes=1))
    if span / bucket > MAX_POINTS:
        raise HTTPException(422, f"bucket too small: at most {MAX_POINTS} buckets per request")
    return start, end, bucket


Start = Annotated[datetime | None, Query(description="RFC 3339 with offset; default end - 24 h")]
End = Annotated[datetime | None, Query(description="RFC 3339 with offset; default now")]
Bucket = Annotated[int | None, Query(ge=10, le=31 * 86400, description="bucket width, seconds")]


@router.get(
    "/elders/{elder_id}/vitals", response_model=VitalsSeries, responses={404: {"model": Problem}}
)
async def vitals(
    elder_id: ElderId,
    conn: ConnDep,
    scope: ReadReadings,
    start: Start = None,
    end: End = None,
    bucket_s: Bucket = None,
) -> VitalsSeries:
    """Vital signs over a time range, averaged (and min/max) per time bucket."""
    visible(scope.sees_elder(elder_id), "elder", elder_id)
    await registry.get_elder(conn, elder_id)
    s, e, b = _window(start, end, bucket_s, timedelta(hours=24))
    rows = await readings.vitals_series(conn, elder_id, s, e, b)
    return VitalsSeries(
        elder_id=elder_id,
        start=s,
        end=e,
        bucket_s=int(b.total_seconds()),
        data=[VitalsBucket(**r) for r in rows],
    )


@router.get(
    "/elders/{elder_id}/positions",
    response_model=PositionSeries,
    responses={404: {"model": Problem}},
)
async def positions(
    elder_id: ElderId,
    conn: ConnDep,
    scope: ReadReadings,
    start: Start = None,
    end: End = None,
    bucket_s: Bucket = None,
) -> PositionSeries:
    """The track over a time range: the most accurate fix of each time bucket."""
    visible(scope.sees_elder(elder_id), "elder", elder_id)
    await registry.get_elder(conn, elder_id)
    s, e, b = _window(start, end, bucket_s, timedelta(hours=24))
    rows = await readings.positions_series(conn, elder_id, s, e, b)
    return PositionSeries(
        elder_id=elder_id,
        start=s,
        end=e,
        bucket_s=int(b.total_seconds()),
        data=[PositionBucket(**r) for r in rows],
    )
