"""The OpenAPI 3.1 document, generated from the endpoint table and the attrs models.

The models are the ones that validate requests and serialise responses, so the
document says what the code does: types from the annotations, required fields
from the defaults, bounds from the attrs validators (``ge``/``le``, lengths).
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

import attrs

from .. import __version__
from .bodies import MAX_UID, json_name
from .models import Error
from .routing import Endpoint

_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", bool: "boolean",
                               float: "number"}
_ID_PARAMS = {"user", "mailbox", "hook", "archived", "token", "apppassword"}
_STATUS_TEXT = {
    400: "Invalid request (the field is named)", 401: "Missing or wrong access token",
    403: "Not a loopback client (no access token configured), or a user token outside "
         "its user's paths", 404: "Unknown resource",
    409: "Already exists", 413: "Too large or over quota",
    429: "Too many streams or failed logins",
    503: "Database unavailable",
}


class _Schemas:
    """Component schemas collected while walking the models."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: Any, *, request: bool) -> dict[str, Any]:
        """JSON Schema of a type (attrs classes become $refs)."""
        origin = get_origin(kind)
        args = get_args(kind)
        if kind in _PRIMITIVES:
            return {"type": _PRIMITIVES[kind]}
        if kind is type(None):
            return {"type": "null"}
        if origin in (Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            schemas = [self.of(a, request=request) for a in inner]
            if type(None) in args:
                schemas.append({"type": "null"})
            return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        if origin is Literal:
            return {"type": "string", "enum": list(args)}
        if origin is list:
            return {"type": "array", "items": self.of(args[0], request=request)}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1],
                                                                       request=request)}
        if attrs.has(kind):
            name = kind.__name__
            if name not in self.components:
                self.components[name] = {}  # recursion guard (SearchQuery)
                self.components[name] = self._object(kind, request=request)
            return {"$ref": f"#/components/schemas/{name}"}
        raise TypeError(f"no schema for {kind!r}")

    def _object(self, cls: type, *, request: bool) -> dict[str, Any]:
        attrs.resolve_types(cls)
        props: dict[str, Any] = {}
        required = []
        for field in attrs.fields(cls):
            name = json_name(field)
            schema = self.of(field.type, request=request)
            schema = _constrain(schema, field.validator)
            props[name] = schema
            if not request or field.default is attrs.NOTHING:
                required.append(name)
        doc = (cls.__doc__ or "").strip()
        out: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                               "additionalProperties": False}
        if doc:
            out["description"] = doc
        return out


def _bounds(validator: Any) -> dict[str, Any]:
    """Schema keywords for an attrs validator (unknown validators add nothing)."""
    out: dict[str, Any] = {}
    if validator is None:
        return out
    if type(validator).__name__ == "_AndValidator":
        for item in validator._validators:
            out.update(_bounds(item))
    elif type(validator).__name__ == "_OptionalValidator":
        out.update(_bounds(validator.validator))
    elif type(validator).__name__ == "_NumberValidator":
        key = {">=": "minimum", "<=": "maximum", ">": "exclusiveMinimum",
               "<": "exclusiveMaximum"}.get(validator.compare_op)
        if key:
            out[key] = validator.bound
    elif type(validator).__name__ == "_MinLengthValidator":
        out["minLength"] = validator.min_length
    elif type(validator).__name__ == "_MaxLengthValidator":
        out["maxLength"] = validator.max_length
    elif type(validator).__name__ == "_DeepIterable":
        out.update(_bounds(validator.iterable_validator))
    return out


def _constrain(schema: dict[str, Any], validator: Any) -> dict[str, Any]:
    bounds = _bounds(validator)
    if not bounds:
        return schema
    targets = schema.get("anyOf", [schema])
    out = []
    for target in targets:
        target = dict(target)
        kind = target.get("type")
        for key, value in bounds.items():
            if key in ("minLength", "maxLength") and kind == "array":
                target["minItems" if key == "minLength" else "maxItems"] = value
            elif (kind == "string") == (key in ("minLength", "maxLength")) and kind in (
                "string", "integer"
            ):
                target[key] = value
        out.append(target)
    return {"anyOf": out} if "anyOf" in schema else out[0]


def _parameter(name: str, any_user: bool = False) -> dict[str, Any]:
    if name == "user" and any_user:
        schema: dict[str, Any] = {"type": "string", "minLength": 1,
                                  "description": "user id, user name or one of its addresses"}
    elif name == "uid":
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_UID}
    elif name in _ID_PARAMS:
        schema = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
    else:
        schema = {"type": "string", "minLength": 1}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``endpoints``."""
    schemas = _Schemas()
    error = schemas.of(Error, request=False)
    paths: dict[str, Any] = {}
    for ep in endpoints:
        names = [part[1:-1] for part in ep.path.split("/") if part.startswith("{")]
        op: dict[str, Any] = {
            "summary": ep.summary, "tags": [ep.tag],
            "operationId": f"{ep.method.lower()}_{ep.handler.__name__}"
            + ("_wildduck" if ep.path == "/user/create" else ""),
            "parameters": [_parameter(n, ep.any_user) for n in names],
        }
        if ep.query is not None:
            attrs.resolve_types(ep.query)
            for field in attrs.fields(ep.query):
                schema = _constrain(schemas.of(field.type, request=True), field.validator)
                # An absent query parameter is the null; it has no spelling of its own.
                schema = next((s for s in schema.get("anyOf", ()) if s != {"type": "null"}),
                              schema)
                op["parameters"].append({"name": json_name(field), "in": "query",
                                         "required": False, "schema": schema})
        if ep.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": _json(schemas.of(ep.body, request=True))}
        elif ep.raw_body is not None:
            binary = {"schema": {"type": "string", "format": "binary"}}
            op["requestBody"] = {"required": True, "content": {
                ep.raw_body: binary, "application/octet-stream": binary}}
        if ep.produces == "application/json" and ep.response is not None:
            ok: dict[str, Any] = {"description": "OK",
                                  "content": _json(schemas.of(ep.response, request=False))}
        else:
            ok = {"description": "OK",
                  "content": {ep.produces: {"schema": {"type": "string"}}}}
        responses: dict[str, Any] = {"200": ok}
        statuses = {400, 401, 403, 503, *ep.errors}
        if ep.body is not None:
            statuses.add(413)
        for status in sorted(statuses):
            responses[str(status)] = {"description": _STATUS_TEXT.get(status, "Error"),
                                      "content": _json(error)}
        op["responses"] = responses
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "duck", "version": __version__,
                 "description": "duck mail store: users, mailboxes, messages, push."},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "header", "name": "X-Access-Token"},
            },
        },
        "security": [{}, {"bearer": []}, {"token": []}],
    }
