"""The OAuth 2.0 client: authorization URL, callback parsing, code exchange, refresh (3LO), and
a service account's client credentials grant.

Everything Atlassian-specific about the protocol lives here (FACTS.md, "The flow"):

* the authorization URL carries ``audience=api.atlassian.com`` and ``prompt=consent``, and its
  scopes are space-separated (``%20``); ``offline_access`` asks for a refresh token;
* the token endpoint takes **JSON**, not a form, and always wants the client secret (no PKCE);
* a wrong client secret comes back as ``access_denied`` — the same code a declining user gets
  at consent — so it is mapped to :class:`InvalidClient`, whose hint says *not* to consent again;
* ``invalid_grant`` on a refresh means the grant is gone (rotated out, idle 90 days, revoked):
  only a new login helps (:class:`ReauthorizationRequired`);
* a refresh whose answer is lost (a timeout, a dropped connection) is sent again at once: the
  server may have rotated the token, but it still accepts the old one within its 10-minute
  reuse leeway. A lost code exchange is not: a code is single-use;
* 429 and 5xx answers are retried by the :class:`~._retry.RetryPolicy` the gateway's client
  uses too, and end in :class:`~.errors.RateLimited` / :class:`~.errors.ServerError`, which
  are :class:`~.errors.TransientError`, not :class:`OAuthError`.

* a service account's credential posts ``grant_type=client_credentials`` and gets a 60-minute
  access token without a refresh token; the credential refuses the refresh grant, and an app's
  refuses client credentials, both as 403 ``unauthorized_client`` (:class:`GrantNotAllowed`).
No message raised from here contains the code, the client secret or a token: bodies are quoted
through :func:`~.redact.redact` only.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from ._http import new_client
from ._retry import RetryPolicy, Sent, is_transient
from .config import Settings
from .errors import (
    CallbackError,
    ConfigError,
    ConsentDenied,
    GrantNotAllowed,
    InvalidClient,
    InvalidGrant,
    MissingCode,
    OAuthError,
    RateLimited,
    ReauthorizationRequired,
    RedirectUriMismatch,
    ServerError,
    StateMismatch,
)
from .redact import Secret, get_logger, redact, register_secret
from .tokens import TokenSet

__all__ = ["OAuthClient", "AuthorizationRequest", "AUDIENCE", "parse_callback_params"]

logger = get_logger(__name__)

AUDIENCE = "api.atlassian.com"
DEFAULT_TIMEOUT = 30.0

# Nothing reached the server: safe to send again, even a single-use code.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
# Sent, but the answer never came back: the server may have acted on it.
_ANSWER_LOST = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization URL and what is needed to check the redirect that answers it."""

    url: str
    state: str
    scopes: tuple[str, ...]
    redirect_uri: str


def parse_callback_params(url: str) -> dict[str, str]:
    """The query parameters of a callback, from a full URL, ``?query`` or a bare query string.

    The first value of each parameter wins.
    """
    text = url.strip()
    if "?" in text:
        query = text.split("?", 1)[1]
    elif "://" in text:
        query = urlsplit(text).query
    else:
        query = text
    query = query.split("#", 1)[0]
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


class OAuthClient:
    """Talks to ``settings.auth_base_url``: builds the authorization URL, swaps codes for tokens.

    ``http`` may be any :class:`httpx.Client` (tests inject one); by default one is created
    on first use, with the redacted debug trace hooks, and closed by :meth:`close`. Retries on
    429/5xx are bounded by ``max_retries``; a ``Retry-After`` longer than ``max_retry_wait``
    is not waited out but raised as :class:`RateLimited` (the same knobs as
    :class:`~.api.ApiClient`'s). A refresh whose answer was lost is sent once more at once.
    ``sleep`` is injectable for tests; ``clock`` is Atlassian's time (token expiry, HTTP-date
    ``Retry-After``).
    """

    def __init__(
        self,
        settings: Settings,
        http: httpx.Client | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._http = http
        self._owns_http = http is None
        self.timeout = timeout
        self.retry = RetryPolicy(max(0, int(max_retries)), float(max_retry_wait), sleep, clock)
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"OAuthClient(auth_base_url={self.settings.auth_base_url!r}, "
            f"client_id={self.settings.client_id!r})"
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = new_client(timeout=self.timeout)
        return self._http

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def token_url(self) -> str:
        return f"{self.settings.auth_base_url.rstrip('/')}/oauth/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.settings.auth_base_url.rstrip('/')}/authorize"

    # -- step 1: the browser ---------------------------------------------------------------

    def authorization_request(
        self, scopes: Sequence[str] | None = None, state: str | None = None
    ) -> AuthorizationRequest:
        """The URL to send the user's browser to, with a fresh random ``state``.

        Parameters are in the order of Atlassian's documentation, every value percent-encoded
        (spaces as ``%20``, never ``+``).
        """
        if not self.settings.client_id:
            self.settings.require_credentials()
        scopes = tuple(dict.fromkeys(scopes if scopes is not None else self.settings.scopes))
        if not scopes:
            raise ConfigError(
                "No scopes to request.",
                "Set ATLASSIAN_SCOPES, e.g. 'read:me offline_access' (space-separated).",
                setting="ATLASSIAN_SCOPES",
            )
        state = state or secrets.token_urlsafe(32)
        params = [
            ("audience", AUDIENCE),
            ("client_id", self.settings.client_id),
            ("scope", " ".join(scopes)),
            ("redirect_uri", self.settings.redirect_uri),
            ("state", state),
            ("response_type", "code"),
            ("prompt", "consent"),
        ]
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params)
        if "offline_access" not in scopes:
            logger.info("offline_access not requested: the connection will not be refreshable")
        return AuthorizationRequest(
            url=f"{self.authorize_url}?{query}",
            state=state,
            scopes=scopes,
            redirect_uri=self.settings.redirect_uri,
        )

    def parse_callback(self, url: str, expected_state: str) -> str:
        """The authorization code from the URL the browser was redirected to.

        Accepts the full URL or just its query string. Raises :class:`ConsentDenied` (the user
        pressed Deny), :class:`CallbackError` (another error from the consent page),
        :class:`StateMismatch` (not the answer to *our* request: CSRF check) or
        :class:`MissingCode`.
        """
        params = parse_callback_params(url or "")
        state = params.get("state")
        error = params.get("error")
        code = params.get("code")
        if code:
            register_secret(code)  # from now on redact() masks it in any text
        state_ok = state is not None and hmac.compare_digest(
            state.encode("utf-8"), (expected_state or "").encode("utf-8")
        )
        if error:
            # An error that carries another state is not about our request.
            if state is not None and not state_ok:
                raise _state_mismatch()
            raise _callback_error(error, params.get("error_description"))
        if not code and state is None:
            raise MissingCode(
                f"The callback URL has no code and no state: {redact(_shorten(url))!r}.",
            )
        if not state_ok:
            raise _state_mismatch()
        if not code:
            raise MissingCode("The callback URL carries a state but no code.")
        return code

    # -- step 2: the token endpoint --------------------------------------------------------

    def exchange_code(self, code: str | Secret) -> TokenSet:
        """Swap an authorization code for tokens (codes are single-use and short-lived).

        A response without ``refresh_token`` is still a success: ``offline_access`` was not
        granted, and ``TokenSet.refresh_token`` is ``None`` (callers warn about it).
        """
        code = Secret(code)
        self.settings.require_credentials()
        body = {
            "grant_type": "authorization_code",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.reveal(),
            "code": code.reveal(),
            "redirect_uri": self.settings.redirect_uri,
        }
        tokens = self._token_request(body, grant="authorization_code")
        if tokens.refresh_token is None:
            logger.warning(
                "the token response has no refresh_token: offline_access was not granted"
            )
        return tokens

    def refresh(self, refresh_token: str | Secret) -> TokenSet:
        """Swap a refresh token for new tokens, including a **new** refresh token.

        The one sent stops working after Atlassian's reuse leeway: persist the result before
        using it (:class:`~.tokens.StoredTokenSource` does).
        """
        refresh_token = Secret(refresh_token)
        self.settings.require_credentials()
        body = {
            "grant_type": "refresh_token",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.reveal(),
            "refresh_token": refresh_token.reveal(),
        }
        return self._token_request(body, grant="refresh_token")

    def client_credentials(self, scopes: Sequence[str] | None = None) -> TokenSet:
        """A service account's access token, fetched with its client id and secret
        (``grant_type=client_credentials``): no browser, no consent, no refresh token.

        ``scopes`` narrows the token to some of the credential's scopes (``None``: all of
        them, as the admin chose them). Renew it by calling this again: the source behind
        :class:`~.auth.TokenAuth` does when it expires.
        """
        self.settings.require_credentials()
        body = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.reveal(),
        }
        if scopes:
            body["scope"] = " ".join(dict.fromkeys(scopes))
        tokens = self._token_request(body, grant="client_credentials")
        if tokens.refresh_token is not None:  # not Atlassian's documented answer: never kept
            logger.warning("a client credentials answer carried a refresh token; ignored")
            tokens = dataclasses.replace(tokens, refresh_token=None)
        return tokens

    def _token_request(self, body: dict[str, str], *, grant: str) -> TokenSet:
        refreshing = grant == "refresh_token"
        try:
            sent = self.retry.send(
                # json= sends Content-Type: application/json, which Atlassian requires.
                lambda: self.http.post(
                    self.token_url, json=body, headers={"Accept": "application/json"}
                ),
                what=f"POST {self.token_url} ({grant})",
                # Nothing reached the server: retrying cannot spend the code or the token.
                retry_errors=_NOT_SENT,
                # Atlassian may have rotated the token, but accepts it again within the reuse
                # leeway (FACTS.md, "Refresh tokens"): ask again now, while it is sure to. A
                # code may have been spent: sending it again would only fail.
                resend_once=_ANSWER_LOST if refreshing else (),
            )
        except _ANSWER_LOST as exc:
            if refreshing:  # lost twice: the policy sent it once more already
                raise self._refresh_unanswered(exc) from None
            raise self._unreachable(exc) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        response = sent.response
        status = response.status_code
        if is_transient(status):
            raise self._transient_error(sent)
        if 200 <= status < 300:
            data = _json(response)
            if not isinstance(data, Mapping):
                raise OAuthError(
                    f"The token endpoint answered {status} with a body that is not a JSON "
                    f"object: {redact(_shorten(response.text))!r}.",
                    "Check ATLASSIAN_AUTH_BASE_URL: it must be https://auth.atlassian.com.",
                    status_code=status,
                )
            return TokenSet.from_response(data, now=self._clock())
        raise self._error(response, grant)

    def _unreachable(self, exc: httpx.HTTPError) -> OAuthError:
        return OAuthError(
            f"Could not reach the token endpoint {self.token_url} ({type(exc).__name__}: "
            f"{redact(exc)}).",
            "Check the network and ATLASSIAN_AUTH_BASE_URL, then try again.",
        )

    def _refresh_unanswered(self, exc: httpx.HTTPError) -> OAuthError:
        return OAuthError(
            f"The token endpoint {self.token_url} did not answer the refresh, twice "
            f"({type(exc).__name__}: {redact(exc)}); Atlassian may have rotated the refresh "
            "token anyway.",
            "The stored refresh token stays valid for 10 minutes after such a rotation: check "
            "the network, then run `atlassian-playbook refresh` within 10 minutes.",
        )

    def _transient_error(self, sent: Sent) -> RateLimited | ServerError:
        response, retry_after = sent.response, sent.retry_after
        status = response.status_code
        where = f"The token endpoint {self.token_url}"
        attempts = sent.retries + 1
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if status == 429:
            wait = f"; Retry-After {retry_after:g} s" if retry_after is not None else ""
            return RateLimited(
                f"{where} is rate limiting this app (429 after {tries}{wait}).",
                retry_after=retry_after,
                status_code=status,
                url=self.token_url,
            )
        return ServerError(
            f"{where} answered {status} after {tries}: {redact(_shorten(response.text))!r}.",
            status_code=status,
            url=self.token_url,
        )

    def _error(self, response: httpx.Response, grant: str) -> OAuthError:
        status = response.status_code
        data = _json(response)
        data = data if isinstance(data, Mapping) else {}
        error = str(data.get("error") or "") or None
        description = data.get("error_description") or data.get("message")
        description = redact(description) if description else None
        detail = f"{error}" + (f": {description}" if description else "") if error else None
        detail = detail or redact(_shorten(response.text)) or "(empty body)"
        kwargs: dict[str, Any] = {
            "error": error,
            "description": description,
            "status_code": status,
        }
        what = {"authorization_code": "code exchange", "refresh_token": "refresh",
                "client_credentials": "client credentials grant"}[grant]
        if error == "unauthorized_client" and grant == "client_credentials":
            return GrantNotAllowed(
                f"The token endpoint refused the client credentials grant ({status} {detail}): "
                f"client {self.settings.client_id} is a 3LO app's, not a service account's "
                "credential.",
                "Put the service account's OAuth 2.0 credential (Atlassian Administration > "
                "Directory > Service accounts) in ATLASSIAN_CLIENT_ID and "
                "ATLASSIAN_CLIENT_SECRET, or log in the 3LO way: `atlassian-playbook login`.",
                **kwargs,
            )
        if error == "unauthorized_client":
            return GrantNotAllowed(
                f"The token endpoint refused the {what} ({status} {detail}): client "
                f"{self.settings.client_id} is a service account's credential, and service "
                "accounts have no refresh token and no consent.",
                "Service accounts have no refresh token: fetch a new token with the client "
                "credentials (`atlassian-playbook login --client-credentials`, or "
                "OAuthClient.client_credentials()).",
                **kwargs,
            )
        if (error == "access_denied" and grant == "client_credentials" and description
                and "not been granted" in description):
            return OAuthError(
                f"The service account's credential was not granted every scope asked for "
                f"({status} {detail}).",
                "Ask for fewer scopes (or none: all the credential's), or have an organisation "
                "admin add them to the credential in Atlassian Administration.",
                **kwargs,
            )
        if error in ("access_denied", "invalid_client", "unauthorized_client"):
            # Atlassian answers a wrong client secret with access_denied (FACTS.md).
            return InvalidClient(
                f"The token endpoint rejected the client credentials during the {what} "
                f"({status} {detail}): the client id or secret is wrong.",
                **kwargs,
            )
        if error == "invalid_grant" and grant == "refresh_token":
            return ReauthorizationRequired(
                f"Atlassian no longer accepts this refresh token ({status} {detail}): the grant "
                "is revoked or expired.",
                "Only a new consent fixes it: run `atlassian-playbook login` again. (The refresh "
                "token was rotated out, because a newer one was not saved or an old one was "
                "presented again after the 10-minute reuse leeway, idle for 90 days, or revoked "
                "by the user.)",
                **kwargs,
            )
        if description and "redirect" in description.lower():
            return RedirectUriMismatch(
                f"The {what} was refused because of the redirect URI ({status} {detail}); "
                f"the token request used {self.settings.redirect_uri}.",
                **kwargs,
            )
        if error == "invalid_grant":
            # Atlassian says the same "Invalid authorization code" for a used, an expired and
            # a code issued for another redirect_uri (FACTS.md): name every cause.
            return InvalidGrant(
                f"The authorization code was refused ({status} {detail}): it was already "
                "used, it expired, or it was issued for another redirect_uri than "
                f"{self.settings.redirect_uri} (a trailing slash is the usual culprit).",
                "Log in again; if it fails again, make ATLASSIAN_REDIRECT_URI identical to the "
                "redirect_uri of the authorization request and to a callback URL on the "
                "console's Authorization tab.",
                **kwargs,
            )
        return OAuthError(
            f"The token endpoint refused the {what} ({status} {detail}).",
            "Run with --debug for a redacted trace; check the client id, secret and "
            "ATLASSIAN_AUTH_BASE_URL.",
            **kwargs,
        )


def _state_mismatch() -> StateMismatch:
    return StateMismatch(
        "The callback's state does not match the authorization request's: this redirect "
        "answers another (older or forged) request."
    )


def _callback_error(error: str, description: str | None) -> CallbackError:
    desc = redact(description) if description else ""
    shown = f" ({desc})" if desc else ""
    if error == "access_denied":
        if "admin" in desc.lower():
            return ConsentDenied(
                f"Atlassian refused consent{shown}.",
                "A site or organisation admin must allow user-installed apps (Atlassian "
                "Administration > Apps > Sites > Connected apps settings) or approve this app; "
                "then log in again.",
            )
        return ConsentDenied(f"Consent was denied on Atlassian's consent screen{shown}.")
    hints = {
        "invalid_scope": "Add every requested scope on the console's Permissions tab, or remove "
        "it from ATLASSIAN_SCOPES; then log in again.",
        # Not the sign of an app left on "Not sharing": Atlassian shows a non-owner of such an
        # app a "Something went wrong" page at consent, and never redirects (FACTS.md).
        "unauthorized_client": "Check ATLASSIAN_CLIENT_ID against the console's Settings tab "
        "and that the app uses OAuth 2.0 (3LO) on its Authorization tab; then log in again.",
        "invalid_request": "Check ATLASSIAN_CLIENT_ID and ATLASSIAN_REDIRECT_URI against the "
        "console, then log in again.",
        "server_error": "Atlassian had a problem: try again in a few minutes.",
        "temporarily_unavailable": "Atlassian had a problem: try again in a few minutes.",
    }
    return CallbackError(
        f"The consent page answered with error {redact(error)!r}{shown}.",
        hints.get(error, "Read the description, fix the app in the console, and log in again."),
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"
