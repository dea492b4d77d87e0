"""Both envelope families, unwrapped; and every error answer mapped onto ``reconciler.core.errors``.

Success bodies are ``{"status":"OK","data":{...}}`` (/platform/v1/*) or ``{"success":true,
"data":{...}}`` (/business/payments/v1/*); errors ``{"status":"Error","error":"..."}`` or
``{"success":false,"errors":[{"code","field","message"}]}``, plus the feature gate's 403
``{"message":"403 Forbidden","status":"module_permission_missing"}`` and several 401 variants
(API-NOTES §5).  Either family is accepted on any route: the server, not the path, decides.
Messages are built from method, path, door and status (never headers), and say what to do;
whatever text of the server's they quote is cut short and has its control characters escaped
(``safetext.printable``): an error body cannot move the cursor, ring, or forge a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core import jsontext
from reconciler.core.errors import (
    AuthError,
    FeatureDisabledError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RemoteError,
    RemoteValidationError,
    RequestInfo,
    UnavailableError,
)
from reconciler.core.safetext import printable

_MAX_SNIPPET = 200


class Answer:
    """One HTTP answer, read whole: what the dispatcher and ``doctor`` use of it.

    The network transport makes it straight from aiohttp's response (``HttpTransport.exchange``);
    any other transport's ``httpx.Response`` is read into one (:meth:`of`).  ``headers`` is
    case-insensitive (``get``, ``items``), ``content`` the decoded body.
    """

    __slots__ = ("content", "headers", "reason", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, reason: str = "") -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.reason = reason

    @classmethod
    def of(cls, response: Any) -> Answer:
        """The answer of a read ``httpx.Response``."""
        return cls(response.status_code, response.headers, response.content, response.reason_phrase)

    @property
    def text(self) -> str:
        """The body as text (UTF-8; what cannot be decoded is replaced)."""
        return self.content.decode("utf-8", "replace")


def parse_json(content: bytes) -> Any:
    """The JSON value of a body, or None when it is empty or not JSON (e.g. an HTML error page)."""
    if not content.strip():
        return None
    try:
        return jsontext.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def unwrap(body: Any, info: RequestInfo) -> dict[str, Any]:
    """The ``data`` object of a success body of either family; ProtocolError otherwise."""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict) and (body.get("status") == "OK" or body.get("success") in (True, "true")):
        return data
    raise ProtocolError(
        f"{info.describe()}: the answer is not a vcita success envelope "
        f"({_shape(body)})",
        request=info,
    )


def messages(body: Any) -> list[dict[str, str]]:
    """The server's error messages as ``[{"field","message","code"}]`` (field may be empty),
    control characters escaped, each cut to a few hundred characters, at most 20 of them."""
    return [{k: printable(v, limit=_MAX_SNIPPET) for k, v in m.items()} for m in _messages(body)[:20]]


def _messages(body: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if not isinstance(body, dict):
        return out
    errors = body.get("errors")
    if isinstance(errors, list):
        for err in errors:
            if isinstance(err, dict):
                out.append({
                    "field": str(err.get("field") or ""),
                    "message": str(err.get("message") or err.get("code") or ""),
                    "code": str(err.get("code") or ""),
                })
            elif isinstance(err, str):
                out.append({"field": "", "message": err, "code": ""})
    elif isinstance(errors, dict):  # {"field": ["msg", ...]} as Rails sometimes answers
        for fld, msgs in errors.items():
            for msg in msgs if isinstance(msgs, list) else [msgs]:
                out.append({"field": str(fld), "message": str(msg), "code": ""})
    for key in ("error", "message"):
        if not out and isinstance(body.get(key), str):
            out.append({"field": "", "message": body[key], "code": str(body.get("status") or "")})
    return out


def _summary(body: Any, text: str) -> str:
    msgs = messages(body)
    if msgs:
        return "; ".join(f"{m['field']}: {m['message']}" if m["field"] else m["message"] for m in msgs)
    snippet = printable(" ".join(text.split()), limit=_MAX_SNIPPET)
    return snippet or "empty body"


def _shape(body: Any) -> str:
    if body is None:
        return "not JSON"
    if isinstance(body, dict):
        return "keys: " + printable(", ".join(sorted(map(str, body))[:8]), limit=_MAX_SNIPPET)
    return type(body).__name__


def error_for(
    status: int, body: Any, text: str, info: RequestInfo, *, fallback_configured: bool
) -> RemoteError:
    """Map one final (non-retried) error answer to the error hierarchy."""
    what = info.describe()
    summary = _summary(body, text)
    msg_lower = summary.lower()
    is_json = body is not None
    if status == 401 or (status == 422 and summary.strip() == "Unauthorized"):
        hint = None
        if info.door == "gateway" and info.path.startswith("/business/payments/v1/") and not fallback_configured:
            hint = (
                "The gateway refuses /business/payments/v1/* (API-NOTES §3); configure the fallback "
                "door with VCITA_FALLBACK_URL (or fallback_url in reconciler.toml)."
            )
        kind = "the token is missing or invalid" if "401" in summary else "the token was refused for this business"
        return AuthError(f"{what}: {kind} ({summary})", request=info, status=status, hint=hint)
    if status == 403:
        if isinstance(body, dict) and body.get("status") == "module_permission_missing":
            return FeatureDisabledError(
                f"{what}: the business has the 'booking_packages' feature turned off", request=info, status=status
            )
        return AuthError(f"{what}: forbidden ({summary})", request=info, status=status)
    if status == 404 and "bad gateway" in msg_lower:
        return UnavailableError(f"{what}: the gateway could not route the request ({summary})", request=info,
                                status=status)
    if status == 404 and not is_json:
        return ProtocolError(f"{what}: 404 with a non-JSON body; is the URL a vcita API door?", request=info,
                             status=status)
    # 422 "... not found" is the API's 404 for the object addressed by the path; on a create, or
    # naming a field, it is about a referenced object instead: a validation error.
    addressed_missing = (status == 422 and "not found" in msg_lower and info.method != "POST"
                         and not any(m["field"] for m in messages(body)))
    if status == 404 or addressed_missing:
        return NotFoundError(f"{what}: not found ({summary})", request=info, status=status,
                             hint="It may have been deleted in vcita or belong to another business; "
                                  "run a refresh to see the current state.")
    if status in (400, 409, 422):
        return RemoteValidationError(
            f"{what}: the server rejected the request ({summary})",
            field_errors=messages(body) or [{"field": "", "message": summary, "code": ""}],
            request=info, status=status,
            hint="Fix the values the server names in the manifest, then plan again.",
        )
    if status == 429:
        return RateLimitedError(f"{what}: still rate limited after every retry", request=info, status=status)
    if status >= 500:
        return UnavailableError(f"{what}: server error ({summary})", request=info, status=status)
    return ProtocolError(f"{what}: unexpected answer ({summary})", request=info, status=status)
