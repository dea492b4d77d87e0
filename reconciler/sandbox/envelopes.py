"""Response envelopes and error bodies, by family (API-NOTES §5), and the `ApiError` exception.

Two families, chosen by path prefix:

- `platform` (`/platform/v1/*`, `/v2/*`): success `{"status":"OK","data":{...}}`,
  error `{"status":"Error","error":"<message>"}` (usually 422).
- `business` (`/business/payments/v1/*`, `/client/*`): success `{"success":true,"data":{...}}`,
  error `{"success":false,"errors":[{"code","field"?,"message"}]}`.

The 401 bodies say which layer refused (docs/401-returns-in-core.md) and are the same in both
families: `DOORKEEPER_401` (token missing or unknown), `JWT_401` (a JWT-looking token that does not
verify), `CONTEXT_401` (token accepted, business context wrong: a directory token without
X-On-Behalf-Of, or a token type the endpoint refuses), `DIRECTORY_401` (the directory does not own
the X-On-Behalf-Of business). The feature gate answers `FEATURE_403`.
"""

from __future__ import annotations

from typing import Any

from .jsontext import dumps

DOORKEEPER_401 = {"success": False, "errors": [{"code": "unauthorized", "message": "401 Unauthorized"}]}
CONTEXT_401 = {"success": False, "errors": [{"code": "unauthorized", "message": "Unauthorized"}]}
JWT_401 = {"message": "401 Unauthorized", "status": "Failure"}
DIRECTORY_401 = {"error": "Unauthorized"}
FEATURE_403 = {"message": "403 Forbidden", "status": "module_permission_missing"}
GATEWAY_UNAUTHORIZED_422 = {"status": "Error", "error": "Unauthorized"}


def family_of(path: str) -> str:
    """`business` for the `/business/...` and `/client/...` APIs, `platform` for the rest."""
    return "business" if path.startswith(("/business/", "/client/")) else "platform"


def ok(family: str, data: Any) -> dict[str, Any]:
    """A success envelope of `family` around `data`."""
    if family == "business":
        return {"success": True, "data": data}
    return {"status": "OK", "data": data}


def error_body(family: str, message: str, *, code: str = "invalid", field: str | None = None
               ) -> dict[str, Any]:
    """An error body of `family` (`code`/`field` only show in the business family)."""
    if family == "business":
        entry: dict[str, Any] = {"code": code, "message": message}
        if field is not None:
            entry["field"] = field
        return {"success": False, "errors": [entry]}
    return {"status": "Error", "error": message}


class ApiError(Exception):
    """Raised by handlers to answer `status` with `body` (already in its family's shape)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}

    @classmethod
    def of(cls, family: str, status: int, message: str, *, code: str = "invalid",
           field: str | None = None) -> ApiError:
        return cls(status, error_body(family, message, code=code, field=field))


def encode(body: Any) -> bytes:
    """Compact JSON bytes (str bodies are sent as they are, for plain-text gateway answers)."""
    if isinstance(body, (bytes, str)):
        return body.encode() if isinstance(body, str) else body
    return dumps(body)


def content_type(body: Any) -> bytes:
    if isinstance(body, (bytes, str)):
        return b"text/plain; charset=utf-8"
    return b"application/json; charset=utf-8"
