"""The OpenAPI document, generated from the registered operations on first request."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app

from ..openapi import operation, spec
from ..services import services

bp = Blueprint("docs", __name__, url_prefix="/api/v1")
CACHE = "godel.openapi"


@operation(bp, "/openapi.json", response=None, scope=None)
def openapi() -> Response:
    """This API's OpenAPI 3.1 document; public, so clients can discover how to authenticate."""
    document = current_app.extensions.get(CACHE)
    if document is None:
        document = json.dumps(spec(current_app, auth=services().auth))
        current_app.extensions[CACHE] = document
    return Response(document, mimetype="application/json")
