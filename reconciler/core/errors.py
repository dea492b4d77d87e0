"""The one exception root of reconciler and its small leaves.

Every error a user can cause or meet derives from :class:`ReconcilerError`.  Each carries
structured fields (file/line, HTTP status, address) so that the CLI, the single error
boundary, can render one located, actionable line and choose the exit code.  Library code
raises these; it never prints or exits.

    ReconcilerError
    ├── ManifestError          one or more located Diagnostics (file:line:col)
    ├── ConfigError            flags, environment, reconciler.toml, tokens, target URLs
    ├── StateError             state file, lock, journal
    │   └── StateLockedError   another writer holds the lock
    ├── PlanFileError          a saved plan that cannot be used (corrupt, stale, other target)
    └── RemoteError            anything the remote API answered or failed to answer
        ├── AuthError              401 / token refused / wrong business
        ├── DoorRefusedError       the gateway refused a route its fallback serves; no fallback configured
        ├── UnsupportedRouteError  no token of the target is one vcita accepts on this route (not sent)
        ├── FeatureDisabledError   403 module_permission_missing (booking_packages off)
        ├── NotFoundError          the object does not exist (or belongs to another business)
        ├── RemoteValidationError  422 with the server's field messages
        ├── RateLimitedError       429 after every retry
        ├── UnavailableError       5xx / transport failure after every retry
        │   └── NotSentError       never sent: the run is stopping
        ├── ProtocolError          an answer that is not what the API documents (HTML, bad JSON)
        └── OutcomeUnknownError    a write whose outcome cannot be known (timeout, dropped connection)

Messages never contain tokens: the remote layer builds them from method, path and status only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ReconcilerError(Exception):
    """Root of every error reconciler raises on purpose."""

    #: What the user can do about it, shown under the message.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One located problem in a manifest, rendered like a compiler's error line."""

    file: str
    line: int  # 1-based; 0 when unknown
    col: int  # 1-based; 0 when unknown
    message: str
    address: str = ""  # "CatalogPackage/piano-10"
    field: str = ""  # "spec.items[0].total_bookings"

    def render(self) -> str:
        """``file:LINE:COL: Kind/name: field: message`` on one line (control characters escaped)."""
        where = self.file
        if self.line:
            where += f":{self.line}:{self.col or 1}"
        parts = [where]
        if self.address:
            parts.append(self.address)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return _printable(": ".join(parts))


def _printable(text: str) -> str:
    # A value quoted from a manifest may hold a newline or a carriage return; one line stays one line.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ManifestError(ReconcilerError):
    """The manifests are invalid; carries every diagnostic found, sorted by location."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics))
        n = len(self.diagnostics)
        super().__init__(f"{n} error{'s' if n != 1 else ''} in manifests")


class ConfigError(ReconcilerError):
    """A flag, environment variable, project file or token is missing or wrong."""


class StateError(ReconcilerError):
    """The state file, its lock or the journal cannot be used as they are."""


class StateLockedError(StateError):
    """Another process holds the state lock."""

    def __init__(self, message: str, *, lock_id: str, holder: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(
            message,
            hint=hint or f"If that process is gone, break the lock with: reconciler state unlock {lock_id}",
        )
        self.lock_id = lock_id
        self.holder = holder


class PlanFileError(ReconcilerError):
    """A saved plan cannot be applied (corrupt, for another target, stale or already applied)."""


@dataclass
class RequestInfo:
    """What was asked, without credentials: enough to say what happened and where."""

    method: str
    path: str
    door: str = ""  # "gateway" | "fallback" | "" when not sent
    status: int | None = None
    body_digest: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        s = f"{self.method} {self.path}"
        if self.door:
            s += f" via {self.door}"
        if self.status is not None:
            s += f" -> {self.status}"
        return s


class RemoteError(ReconcilerError):
    """The remote API refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.request = request
        self.status = status if status is not None else (request.status if request else None)


class AuthError(RemoteError):
    hint = (
        "Check the staff token (VCITA_STAFF_TOKEN or --token-file) and that it belongs to the "
        "business id of the target."
    )


class DoorRefusedError(RemoteError):
    """The gateway refused a route in the way it refuses routes that vcita's fallback door serves
    (API-NOTES §3), nothing was executed, and the target has no fallback door to repeat it on."""

    hint = (
        "Configure the fallback door: set VCITA_FALLBACK_URL (or --fallback-url, or fallback_url in the "
        "target's table of reconciler.toml). 'reconciler doctor' checks every route on each door."
    )


class UnsupportedRouteError(RemoteError):
    """The target has no token vcita accepts on this route (e.g. only a directory token where only a
    staff token works); the request was not sent."""


class FeatureDisabledError(RemoteError):
    hint = "Enable the 'booking_packages' feature for this business in vcita, then retry."


class NotFoundError(RemoteError):
    pass


class RemoteValidationError(RemoteError):
    def __init__(
        self,
        message: str,
        *,
        field_errors: list[dict[str, str]] | None = None,
        request: RequestInfo | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, request=request, status=status, hint=hint)
        self.field_errors = field_errors or []


class RateLimitedError(RemoteError):
    hint = "The API kept answering 429. Lower --concurrency / --rate, or retry later."


class UnavailableError(RemoteError):
    hint = "The API is unreachable or failing. Retry later; nothing was changed by the failed request."


class NotSentError(UnavailableError):
    """The request was never sent: the run is stopping (interrupted, or its state cannot be written)."""

    hint = "Nothing was sent. Run the command again to continue."


class SendWindowPassed(NotSentError):
    """A create was not sent because its pending record is older than the send window (see
    ``reconciler.core.listlag``): sending it later would let a recovery conclude "not created" while
    vcita's list could still be hiding it.  The applier opens a fresh record and tries again."""


class ProtocolError(RemoteError):
    hint = "The server's answer is not what the vcita API documents; check the target URLs."


class OutcomeUnknownError(RemoteError):
    """A non-idempotent request may or may not have been executed.

    Raised instead of retrying, so the caller (the applier) can look before it leaps.
    """

    hint = (
        "The request may have been executed. Check the object in vcita before doing anything "
        "else; reconciler will not repeat it on its own."
    )

    def __init__(self, message: str, *, request: RequestInfo | None = None, status: int | None = None,
                 hint: str | None = None, remote_id: str | None = None) -> None:
        super().__init__(message, request=request, status=status, hint=hint)
        #: the id of what the request created, when an answer that could not be read still showed it
        self.remote_id = remote_id

    @property
    def executed(self) -> bool:
        """True when the server answered 2xx: the request was executed, only its result is unknown."""
        return self.status is not None and 200 <= self.status < 300


def proves_not_executed(error: BaseException) -> bool:
    """True only when a failed write is known not to have been executed: the server refused it
    with a 4xx answer (validation, authentication, permission, not found, rate limit), or it was
    never sent at all.  Anything else (a 2xx whose body cannot be read, a 5xx, a dropped
    connection, an error of our own after sending) may have created something."""
    if not isinstance(error, RemoteError) or isinstance(error, OutcomeUnknownError):
        return False
    if error.status is None:  # no answer: only the "never sent" failures are raised as such
        return isinstance(error, UnavailableError)
    return 400 <= error.status < 500

