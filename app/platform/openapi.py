"""The OpenAPI document declares every status the service can answer.

Routers declare what their own rules answer (401, 403, 404, 409, 429) with
`problems(...)` from app/platform/schemas.py. What depends only on the shape of
an operation is added here, to every operation, so a new route cannot forget it:

- 400 where there is a request body (malformed JSON or form),
- 422 where there is any input (FastAPI's own 422 schema is replaced: errors are problem+json),
- 413, 500 and 503 everywhere: the request middleware answers them on any route
  (body over the limit, an unexpected error, a request cut by shutdown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI

from app.platform.errors import PROBLEM_JSON
from app.platform.schemas import PROBLEM_RESPONSES, Problem

_COMPONENT_REF = "#/components/schemas/{model}"
_OPERATION_KEYS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_ANY_ROUTE = (413, 500, 503)
# What FastAPI adds for its own 422 body, unused once every 422 is a Problem.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _operations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _OPERATION_KEYS:
                yield operation


def _declare(operation: dict[str, Any], status: int) -> None:
    responses = operation.setdefault("responses", {})
    existing = responses.get(str(status))
    if existing is None or PROBLEM_JSON not in existing.get("content", {}):
        responses[str(status)] = PROBLEM_RESPONSES[status]


def _register_problem_schemas(schema: dict[str, Any]) -> None:
    problem = Problem.model_json_schema(ref_template=_COMPONENT_REF)
    definitions = problem.pop("$defs", {})
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(definitions)
    components["Problem"] = problem


def _drop_unused_fastapi_schemas(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)


def complete_problem_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds the statuses every operation can answer, as problem+json (in place)."""
    _register_problem_schemas(schema)
    for operation in _operations(schema):
        if "requestBody" in operation:
            _declare(operation, 400)
        if "requestBody" in operation or operation.get("parameters"):
            _declare(operation, 422)
        for status in _ANY_ROUTE:
            _declare(operation, status)
    _drop_unused_fastapi_schemas(schema)
    return schema


def document_problems(app: FastAPI) -> None:
    """Completes the app's OpenAPI document once, when it is first built."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_problem_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def link(path: str, method: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to the operation at `path` and `method`, by JSON pointer
    (operationRef), with its parameters taken from the response (runtime expressions)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method}", "parameters": parameters}
