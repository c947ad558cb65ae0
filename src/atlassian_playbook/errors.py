"""One exception hierarchy for the whole playbook.

Every error carries a ``hint``: the one thing the user should do next. The CLI prints
``error: <message>  hint: <hint>`` on one line; notebooks show the same text. Messages never
contain a secret: they are built from redacted values only (see :mod:`atlassian_playbook.redact`).

    PlaybookError
    ├── ConfigError                  bad or missing setting
    │   └── ProfileError             a partner profile file (by file and key) that cannot be used
    ├── TokenStoreError              no stored connection, unreadable store
    │   └── RotationNotSaved         Atlassian rotated the refresh token; the save failed
    ├── StorageError                 a file could not be written (disk full, read-only...)
    ├── NotebookParameterError       a secret passed as a papermill parameter
    ├── PlanError                    a batch plan that cannot run
    ├── RenderError                  the training build cannot write its site
    ├── ParityRecordError            a file given as a parity record that is not one
    ├── WebhookSignatureInvalid      a webhook delivery whose JWT or body does not verify
    ├── CallbackError                the browser never came back, or came back wrong
    │   ├── CallbackTimeout
    │   ├── StateMismatch
    │   ├── MissingCode
    │   └── ConsentDenied            the user pressed Deny (error=access_denied)
    ├── TransientError               Atlassian did not process the request: try again later
    │   ├── RateLimited              429, from the token endpoint or the gateway
    │   └── ServerError              5xx, from either
    ├── OAuthError                   the token endpoint said no
    │   ├── InvalidClient            wrong client id or secret
    │   ├── RedirectUriMismatch
    │   ├── GrantNotAllowed          the credential does not take this grant (a service
    │   │                            account's and refresh_token; an app's and client_credentials)
    │   └── InvalidGrant             code or refresh token rejected
    │       └── ReauthorizationRequired   refresh token reused, expired or revoked
    └── ApiError                     the API gateway said no
        ├── TokenExpired
        ├── ScopeNotGranted
        └── SiteSelectionRequired

``TransientError`` is neither an ``OAuthError`` nor an ``ApiError``: a 429 or 5xx means the same
whichever host sent it (the request was not processed, and the same request may succeed later),
so a caller catches it once for both, beside the host's own refusals.

The emulator adds two of its own, beside the code they guard: ``WorldError`` (a ConfigError:
a world file, by file, line and key) and ``StateFileError`` (a state file it cannot use).
"""

from __future__ import annotations

__all__ = [
    "PlaybookError",
    "ConfigError",
    "ProfileError",
    "TokenStoreError",
    "RotationNotSaved",
    "StorageError",
    "NotebookParameterError",
    "PlanError",
    "RenderError",
    "ParityRecordError",
    "WebhookSignatureInvalid",
    "GrantNotAllowed",
    "CallbackError",
    "CallbackTimeout",
    "WaitCancelled",
    "StateMismatch",
    "MissingCode",
    "ConsentDenied",
    "OAuthError",
    "InvalidClient",
    "RedirectUriMismatch",
    "InvalidGrant",
    "ReauthorizationRequired",
    "ApiError",
    "TokenExpired",
    "ScopeNotGranted",
    "SiteSelectionRequired",
    "TransientError",
    "RateLimited",
    "ServerError",
]


class PlaybookError(Exception):
    """Base of every error the playbook raises on purpose.

    ``message`` says what happened, ``hint`` what to do about it. Both are plain text, safe to
    print: callers must never put a secret in either.
    """

    default_hint = "See the README's troubleshooting section."

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint

    def __str__(self) -> str:
        return f"{self.message} Hint: {self.hint}"

    def one_line(self) -> str:
        """The CLI's rendering: message and hint on a single line."""
        return f"error: {self.message}  hint: {self.hint}".replace("\n", " ")


class ConfigError(PlaybookError):
    """A setting is missing or malformed; ``setting`` names it (e.g. ``ATLASSIAN_CLIENT_ID``)."""

    default_hint = "Fix the setting in .env (see .env.example) or the environment."

    def __init__(self, message: str, hint: str | None = None, *, setting: str | None = None):
        super().__init__(message, hint)
        self.setting = setting


class ProfileError(ConfigError):
    """A partner profile (``data/profiles/*.toml`` or a user's own file) that cannot be used.

    ``path`` is the file and ``key`` the dotted key at fault (``handoff.labels.client_id``), so
    the message can point at the line to fix; ``None`` when the whole file is at fault.
    """

    default_hint = "Compare the file with a bundled one: `atlassian-playbook profiles show custom`."

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.path = path
        self.key = key


class TokenStoreError(PlaybookError):
    default_hint = "Run `atlassian-playbook login` to create a connection."


class RotationNotSaved(TokenStoreError):
    """Atlassian answered a refresh with a new refresh token that could not be saved.

    The store still holds the old refresh token, which Atlassian accepts until ``deadline``
    (the end of its reuse leeway, seconds since the epoch); a refresh from a writable store
    before then recovers the connection, after it the grant is revoked. ``tokens`` is the new
    :class:`~.tokens.TokenSet`, usable by this process meanwhile (it prints masked).
    """

    def __init__(
        self, message: str, hint: str | None = None, *, tokens=None, deadline: float = 0.0
    ) -> None:
        super().__init__(message, hint)
        self.tokens = tokens
        self.deadline = deadline


class StorageError(PlaybookError, OSError):
    """A file could not be written: no space, quota exhausted, read-only or not permitted.

    Also an :class:`OSError` (``errno`` is the original one), so code that handled the raw
    error still does. ``path`` is the file that was being written (the old version of it, if
    any, is intact); ``reason`` says why in a few words ("no space left on the device").
    """

    default_hint = "Free space on the disk or make the folder writable, then try again."

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        path=None,
        errno: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.path = path
        self.errno = errno
        self.reason = reason or message

    def __reduce__(self):
        # OSError pickles its args only (errno would be lost on the way back from a worker).
        return type(self), (self.message, self.hint), {**self.__dict__, "errno": self.errno}


class NotebookParameterError(PlaybookError):
    default_hint = (
        "Put secrets in .env or the environment; papermill writes every parameter into the "
        "executed notebook."
    )


class PlanError(PlaybookError):
    default_hint = "See examples/batch-plan.yaml for the plan format."


class RenderError(PlaybookError):
    default_hint = "Give --output a folder (new or existing), not a file."


class ParityRecordError(PlaybookError):
    default_hint = "Give a file written by `atlassian-playbook doctor --record FILE`."


class WebhookSignatureInvalid(PlaybookError):
    """A webhook delivery that is not Atlassian's for this app: no bearer JWT, a bad signature,
    an expired token, another app's, or a body other than the one signed. Do not act on it."""

    default_hint = (
        "Verify with the app's own client secret and client id; a delivery that still fails is "
        "not from Jira for this app (or was changed on the way): answer 401 and ignore it."
    )


class CallbackError(PlaybookError):
    """The authorization redirect did not bring back a usable code."""


class WaitCancelled(CallbackError):
    """The wait for the callback was stopped by the person: Cancel, Ctrl-C or the notebook's
    stop button. Nothing was exchanged or stored. In IPython it shows as its message and hint
    (``_render_traceback_``): a choice the person made is not a crash."""

    def _render_traceback_(self) -> list[str]:
        return [f"⏹ {self.message}", f"hint: {self.hint}"]


class CallbackTimeout(CallbackError):
    default_hint = (
        "Open the authorization URL in a browser and finish consent before the timeout, or use "
        "--paste to paste the redirected URL."
    )


class StateMismatch(CallbackError):
    default_hint = (
        "Start the login again and use only the newest authorization URL; an old tab or a "
        "forged redirect carries another state."
    )


class MissingCode(CallbackError):
    default_hint = "Paste the whole URL the browser landed on, including ?code=...&state=..."


class ConsentDenied(CallbackError):
    default_hint = "Run the login again and press Accept on Atlassian's consent screen."


class OAuthError(PlaybookError):
    """An error body from the token endpoint: ``{"error": ..., "error_description": ...}``."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        error: str | None = None,
        description: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.error = error
        self.description = description
        self.status_code = status_code


class InvalidClient(OAuthError):
    default_hint = (
        "Check ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET against the console's Settings "
        "tab (copy them again; rotate the secret if in doubt). Consenting again will not help."
    )


class RedirectUriMismatch(OAuthError):
    default_hint = (
        "Make ATLASSIAN_REDIRECT_URI identical to a Callback URL on the console's Authorization "
        "tab: scheme, host, port, path and trailing slash all count."
    )


class GrantNotAllowed(OAuthError):
    """The token endpoint's 403 ``unauthorized_client``: this client id exists and the secret
    is right, but its kind of credential does not take the grant sent."""

    default_hint = (
        "A service account's credential takes grant_type=client_credentials only (`atlassian-"
        "playbook login --client-credentials`); a 3LO app's takes the authorization code and "
        "refresh grants (`atlassian-playbook login`)."
    )


class InvalidGrant(OAuthError):
    default_hint = "Authorization codes are single-use and expire in minutes: log in again."


class ReauthorizationRequired(InvalidGrant):
    default_hint = (
        "The refresh token was rotated out (a newer one was not saved, or an old one was presented "
        "again after the 10-minute reuse leeway, which revokes the grant), idle for 90 days, or "
        "revoked by the user: run `atlassian-playbook login` again."
    )


class ApiError(PlaybookError):
    """A non-success answer from the API gateway (``api.atlassian.com``)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status_code: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status_code = status_code
        self.url = url


class TokenExpired(ApiError):
    default_hint = "Refresh the token (`atlassian-playbook refresh`) or log in again."


class ScopeNotGranted(ApiError):
    default_hint = (
        "Add the scope on the console's Permissions tab, request it in ATLASSIAN_SCOPES and log "
        "in again, choosing this site; scopes granted on one site do not carry to another."
    )


class SiteSelectionRequired(ApiError):
    default_hint = "Set ATLASSIAN_SITE to the cloud id, name or URL of the site to use."


class TransientError(PlaybookError):
    """A 429 or 5xx answer, from the token endpoint or the API gateway, after the retries the
    client allows: Atlassian did not process the request. ``url`` says which host answered."""

    default_hint = "Atlassian could not take the request now: try again in a few minutes."

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status_code: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status_code = status_code
        self.url = url


class RateLimited(TransientError):
    default_hint = "Atlassian is rate limiting this app: wait for Retry-After and lower the pace."

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, hint, status_code=status_code, url=url)
        self.retry_after = retry_after


class ServerError(TransientError):
    default_hint = "Atlassian answered with a server error: try again in a few minutes."
