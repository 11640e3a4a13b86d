"""The audit trail of administrative actions, newest first (admin scope)."""

from __future__ import annotations

from flask import Blueprint

from godel import audit

from ..openapi import operation
from ..schemas import AuditList, AuditQuery
from ..services import services

bp = Blueprint("audit", __name__, url_prefix="/api/v1/audit")


@operation(bp, "", query=AuditQuery, response=AuditList, scope="admin")
def list_audit(query: AuditQuery) -> AuditList:
    """Control actions and key changes: who, what, when, and the outcome."""
    records = audit.history(services().ctx.redis, limit=query.limit, before=query.before or "+")
    return AuditList(items=records)
