"""JSON request bodies: capped reading, strict structuring into attrs classes, errors."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from starlette.requests import Request
from starlette.responses import JSONResponse

T = TypeVar("T")

#: Largest accepted JSON body. Anything above is refused while reading, so a
#: 10 MB body costs at most this much memory.
MAX_BODY = 1024 * 1024


class ApiError(Exception):
    """An error answered as ``{"success": false, "error", "code"}`` with a status."""

    def __init__(self, status: int, code: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.code = code
        self.error = error

    def response(self) -> JSONResponse:
        """The JSON response for this error."""
        return error_response(self.status, self.code, self.error)


def error_response(status: int, code: str, error: str) -> JSONResponse:
    """The API's one error shape."""
    return JSONResponse({"success": False, "error": error, "code": code}, status_code=status)


def _strict(kind: type) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int subclass; a JSON true is never a number or a string here.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}")
        return value

    return hook


converter = cattrs.Converter(forbid_extra_keys=True)
for _kind in (str, int, bool, float):
    converter.register_structure_hook(_kind, _strict(_kind))


async def read_json(request: Request) -> Any:
    """Read and decode the JSON body, refusing bodies over MAX_BODY while reading."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "RequestTooLarge", f"request body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise ApiError(413, "RequestTooLarge", f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "InvalidJSON", "request body is not valid JSON") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s): {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, ClassValidationError):
        messages = []
        for sub in exc.exceptions:
            notes = getattr(sub, "__notes__", [])
            where = notes[0].replace("Structuring class ", "") if notes else ""
            field = where.split("@ attribute ")[-1] if "@ attribute " in where else where
            if isinstance(sub, KeyError):
                messages.append(f"missing field: {field}")
            else:
                messages.append(f"invalid field {field}: {sub}")
        return "; ".join(messages) or "invalid request body"
    return str(exc)


async def read_model(request: Request, model: type[T]) -> T:
    """Read the body and structure it into ``model``, or raise a 400 ApiError."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "InvalidRequest", "request body must be a JSON object")
    try:
        return converter.structure(data, model)
    except (ClassValidationError, ForbiddenExtraKeysError, TypeError, ValueError) as exc:
        raise ApiError(400, "InvalidRequest", _describe(exc)) from exc
