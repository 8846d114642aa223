"""The monthly 六助 usage report: per elder (services, minutes, targets, plan usage and
what is charged beyond it) or per caregiver (orders, minutes, targets met, rejects)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.access import scoped
from api.deps import ConnDep
from api.order_models import MonthParam, ReportBy, ReportFormat
from api.routes.service_plans import month_of
from auth.roles import Permission
from auth.scope import Scope
from orders.report import csv_text
from storage.reports import usage_report

router = APIRouter(prefix="/api/v1", tags=["reports"])
BOM = "\ufeff"  # without it Excel reads UTF-8 CSV as the local code page: mojibake


@router.get(
    "/reports/usage",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def usage(
    conn: ConnDep,
    scope: Annotated[Scope, Depends(scoped(Permission.reports_read))],
    month: Annotated[MonthParam | None, Query(description="YYYY-MM (default: this month)")] = None,
    by: Annotated[ReportBy, Query()] = "elder",
    format: Annotated[ReportFormat, Query()] = "json",
) -> Any:
    """Months are Asia/Shanghai calendar months; money in 分 (JSON) or 元 (CSV).  Staff
    get their community's elders and caregivers."""
    m = month_of(month)
    rep = await usage_report(
        conn,
        m,
        by,
        datetime.now(UTC),
        elder_ids=scope.elder_filter(),
        caregiver_ids=None if scope.caregiver_ids is None else sorted(scope.caregiver_ids),
    )
    if format == "json":
        return rep
    return Response(
        (BOM + csv_text(rep)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="usage-{by}-{m}.csv"'},
    )
