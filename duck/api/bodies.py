"""JSON request bodies: capped reading, strict structuring into attrs classes, errors."""

from __future__ import annotations

import json
import re
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
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


def json_name(field: attrs.Attribute[Any]) -> str:
    """A field's JSON name: Python keywords are spelled with a trailing ``_``."""
    return field.name[:-1] if field.name.endswith("_") else field.name


def _renames(cls: type) -> dict[str, Any]:
    return {f.name: override(rename=json_name(f)) for f in attrs.fields(cls)
            if json_name(f) != f.name}


converter.register_structure_hook_factory(
    attrs.has,
    lambda cls: make_dict_structure_fn(
        cls, converter, _cattrs_forbid_extra_keys=True, **_renames(cls)
    ),
)
converter.register_unstructure_hook_factory(
    attrs.has, lambda cls: make_dict_unstructure_fn(cls, converter, **_renames(cls))
)

_ID = re.compile(r"^[0-9a-f]{24}$")
#: Largest UID (RFC 3501 §2.3.1.1: 32-bit).
MAX_UID = 2**32 - 1


def path_id(request: Request, name: str) -> str:
    """A 24-hex id path parameter, or a 400 naming it."""
    value = request.path_params[name]
    if not isinstance(value, str) or not _ID.match(value):
        raise ApiError(400, "InvalidId", f"invalid field {name}: not a 24-hex id")
    return value


def path_uid(request: Request, name: str = "uid") -> int:
    """A UID path parameter (1..2^32-1), or a 400 naming it."""
    value = request.path_params[name]
    if not isinstance(value, str) or not value.isdigit() or not 0 < int(value) <= MAX_UID:
        raise ApiError(400, "InvalidUid", f"invalid field {name}: not a UID")
    return int(value)


def read_query(request: Request, model: type[T]) -> T:
    """Structure the query string into ``model`` (int, str, bool, Literal fields)."""
    params = request.query_params
    attrs.resolve_types(model)  # type: ignore[type-var]
    known = {json_name(f): f for f in attrs.fields(model)}  # type: ignore[arg-type]
    extra = sorted(set(params) - set(known))
    if extra:
        raise ApiError(400, "InvalidRequest", f"unknown parameter(s): {', '.join(extra)}")
    values: dict[str, Any] = {}
    for name, field in known.items():
        if name not in params:
            continue
        raw = params[name]
        kind = _base(field.type)
        try:
            if kind is int:
                if not raw.lstrip("-").isdigit() or len(raw) > 19:
                    raise ValueError(raw)
                values[field.name] = int(raw)
            elif kind is bool:
                if raw not in ("true", "false"):
                    raise ValueError(raw)
                values[field.name] = raw == "true"
            else:
                choices = _literal_choices(kind)
                if choices is not None and raw not in choices:
                    raise ValueError(raw)
                values[field.name] = raw
        except ValueError as exc:
            raise ApiError(400, "InvalidRequest", f"invalid field {name}: {raw!r}") from exc
    try:
        return model(**values)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "InvalidRequest", str(exc)) from exc


def _base(kind: Any) -> Any:
    """``X | None`` -> X."""
    args = [a for a in get_args(kind) if a is not type(None)]
    if get_origin(kind) in (types.UnionType, Union) and len(args) == 1:
        return args[0]
    return kind


def _literal_choices(kind: Any) -> tuple[str, ...] | None:
    if get_origin(kind) is Literal:
        return tuple(get_args(kind))
    return None


def ok(value: Any, status: int = 200) -> JSONResponse:
    """A JSON response from an attrs response model, ``success`` first as documented
    (attrs puts the defaulted field last; a reader of the raw text expects it first)."""
    data = converter.unstructure(value)
    if isinstance(data, dict) and "success" in data:
        data = {"success": data.pop("success"), **data}
    return JSONResponse(data, status_code=status)


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
    except RecursionError as exc:
        # (Arrays or objects nested about a thousand deep: the decoder recurses.)
        raise ApiError(400, "InvalidJSON", "request body is nested too deeply") from exc


def _describe(exc: BaseException, prefix: str = "") -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        names = ", ".join(prefix + name for name in sorted(exc.extra_fields))
        return f"unknown field(s): {names}"
    if isinstance(exc, ClassValidationError):
        messages = []
        for sub in exc.exceptions:
            notes = getattr(sub, "__notes__", [])
            where = notes[0].replace("Structuring class ", "") if notes else ""
            field = where.split("@ attribute ")[-1] if "@ attribute " in where else where
            field = field.rstrip("_")
            if isinstance(sub, KeyError):
                messages.append(f"missing field: {prefix}{field}")
            elif isinstance(sub, (ClassValidationError, ForbiddenExtraKeysError)):
                messages.append(_describe(sub, f"{prefix}{field}." if field else prefix))
            elif isinstance(sub, cattrs.errors.IterableValidationError):
                messages.append(f"invalid field {prefix}{field}: " + "; ".join(
                    _describe(e) for e in sub.exceptions))
            elif not field and isinstance(sub, ValueError):
                # An attrs validator: its message starts with the field's name.
                messages.append(f"invalid field {prefix}{sub}".replace("'", ""))
            else:
                messages.append(f"invalid field {prefix}{field}: {sub}")
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
