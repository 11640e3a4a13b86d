"""Declaring operations, and the OpenAPI document built from those declarations.

``@operation`` registers a Flask route together with its pydantic request and
response models and the scope it needs. The wrapper validates the query string
and JSON body into the models, serialises the returned model, and leaves the
metadata on the view, where the auth hook reads the scope and ``spec()`` reads
everything else. The spec is therefore generated from the code that runs, never
written by hand.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Blueprint, Flask, Response, request
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from godel import __version__
from godel.errors import ValidationError
from godel.keys import Scope
from godel.validation import validated

from .schemas import ErrorResponse

ATTR = "godel_operation"
REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_ERROR_TEXT = {
    401: "No key, or an unknown, revoked or expired key",
    403: "The key lacks the scope",
    404: "Not found",
    409: "Conflicts with the object's state",
    413: "Request body too large",
    422: "Invalid input; error.field names it",
    429: "Rate limit exceeded; see Retry-After",
    503: "A service is unavailable",
}


@dataclass(frozen=True)
class Operation:
    """What the spec and the auth hook need to know about one route."""

    method: str
    response: type[BaseModel] | None
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    scope: Scope | None
    tag: str
    summary: str
    description: str
    errors: tuple[int, ...]
    media_type: str = "application/json"


@dataclass
class Reply:
    """A response model with a status or headers other than the operation's defaults."""

    body: BaseModel
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def json_response(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json", headers=headers)


def _json_body() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if data is None:
        if request.get_data(cache=True):
            raise ValidationError("the request body is not valid JSON", field="body")
        return {}
    if not isinstance(data, dict):
        raise ValidationError("the request body must be a JSON object", field="body")
    return data


def operation(
    bp: Blueprint,
    rule: str,
    method: str = "GET",
    *,
    response: type[BaseModel] | None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    scope: Scope | Literal["auto"] | None = "auto",
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Register ``view`` on ``bp``; it receives path values plus ``body=``/``query=`` models.

    ``scope="auto"`` means read for GET and write otherwise; ``None`` makes the
    route public. A view returns its response model, a ``Reply``, or (when
    ``response`` is None) a Flask ``Response``.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Response]:
        doc = (view.__doc__ or "").strip()
        summary, _, description = doc.partition("\n")
        op = Operation(
            method=method,
            response=response,
            status=status,
            body=body,
            query=query,
            scope=("read" if method == "GET" else "write") if scope == "auto" else scope,
            tag=bp.name,
            summary=summary.strip(),
            description=description.strip(),
            errors=errors,
            media_type=media_type,
        )

        @functools.wraps(view)
        def endpoint(**path: Any) -> Response:
            kwargs = dict(path)
            if body is not None:
                kwargs["body"] = validated(body, _json_body())
            if query is not None:
                kwargs["query"] = validated(query, request.args.to_dict())
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            if isinstance(result, Reply):
                return json_response(result.body, result.status or status, result.headers)
            return json_response(result, status)

        setattr(endpoint, ATTR, op)
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=endpoint, methods=[method])
        return endpoint

    return decorator


def operation_of(app: Flask, endpoint: str | None) -> Operation | None:
    view = app.view_functions.get(endpoint or "")
    return getattr(view, ATTR, None)


# the document ---------------------------------------------------------------


def _path_parameters(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in _PATH_PARAM.findall(rule):
        kind = "integer" if converter == "int" else "string"
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": kind}})
    return _PATH_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _error_responses(op: Operation, has_path: bool) -> dict[str, Any]:
    codes = set(op.errors)
    if op.scope is not None:
        codes |= {401, 403, 429}
    if op.body is not None or op.query is not None:
        codes.add(422)
    if op.body is not None:
        codes.add(413)
    if has_path:
        codes.add(404)
    ref = {"$ref": REF.format(model="ErrorResponse")}
    return {
        str(code): {"description": _ERROR_TEXT.get(code, "Error"), "content": {"application/json": {"schema": ref}}}
        for code in sorted(codes)
    }


def _entry(rule: str, endpoint: str, op: Operation, refs: dict[Any, Any]) -> tuple[str, dict[str, Any]]:
    """The path template and operation object of one route."""
    path, parameters = _path_parameters(rule)
    if op.query is not None:
        query_schema = op.query.model_json_schema(ref_template=REF)
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": schema})
    entry: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "tags": [op.tag],
        "summary": op.summary,
        "parameters": parameters,
        "responses": _error_responses(op, "{" in path),
    }
    if op.description:
        entry["description"] = op.description
    if op.body is not None:
        content = {"application/json": {"schema": refs[(op.body, "validation")]}}
        entry["requestBody"] = {"required": True, "content": content}
    schema = refs[(op.response, "serialization")] if op.response is not None else {"type": "string"}
    entry["responses"][str(op.status)] = {"description": "OK", "content": {op.media_type: {"schema": schema}}}
    if op.scope is None:
        entry["security"] = []
    else:
        entry["x-required-scope"] = op.scope
    return path, entry


def spec(app: Flask, *, auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ``@operation`` registered on ``app``."""
    operations = []
    for url_rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op = operation_of(app, url_rule.endpoint)
        if op is not None:
            operations.append((url_rule.rule, url_rule.endpoint, op))

    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for _rule, _endpoint, op in operations:
        wanted += [(m, "validation") for m in (op.body, op.query) if m is not None]
        if op.response is not None:
            wanted.append((op.response, "serialization"))
    refs, schemas = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)

    paths: dict[str, dict[str, Any]] = {}
    for rule, endpoint, op in operations:
        path, entry = _entry(rule, endpoint, op, refs)
        paths.setdefault(path, {})[op.method.lower()] = entry

    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Godel API",
            "version": __version__,
            "description": "Jobs, agents, sessions, worktrees, metrics and health of a Godel installation. "
            "Scopes nest: admin > write > read.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
    if auth:
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document
