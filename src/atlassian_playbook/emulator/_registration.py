"""An app as the (emulated) developer console registers it: client id and secret, callback
URLs, the APIs added on the Permissions tab, whether it is shared, its owner and its webhook
URL; and a service account's OAuth 2.0 credential as Atlassian Administration makes it."""

from __future__ import annotations

from dataclasses import dataclass

from ..redact import Secret
from ._world import DEFAULT_WORLD, load_world

__all__ = ["ClientRegistration", "ServiceAccountCredential", "DEFAULT_REDIRECT_URIS"]

# The default world's app: the callback URLs registered on its Authorization tab.
DEFAULT_REDIRECT_URIS = tuple(load_world(DEFAULT_WORLD)["apps"][0]["redirect_uris"])


@dataclass(frozen=True)
class ClientRegistration:
    """An app as registered in the (emulated) developer console."""

    client_id: str
    client_secret: Secret
    redirect_uris: tuple[str, ...]
    apis: tuple[str, ...]
    sharing: bool
    name: str
    owner: str = ""  # the account id of the app's owner (the only one who may consent when
    # the app is not shared)
    webhook_url: str | None = None  # where its dynamic webhooks are delivered (None: the URL
    # of its first registered webhook)

    def to_json(self, reveal: bool = False) -> dict:
        """The registration as JSON; the secret masked unless ``reveal``."""
        secret = self.client_secret
        return {
            "client_id": self.client_id,
            "client_secret": secret.reveal() if reveal else str(secret),
            "redirect_uris": list(self.redirect_uris),
            "apis": list(self.apis),
            "sharing": self.sharing,
            "name": self.name,
            "owner": self.owner,
            "webhook_url": self.webhook_url,
        }

    @classmethod
    def from_state(cls, record: dict) -> ClientRegistration:
        return cls(
            client_id=record["client_id"],
            client_secret=Secret(record["client_secret"]),
            redirect_uris=tuple(record["redirect_uris"]),
            apis=tuple(record["apis"]),
            sharing=record["sharing"],
            name=record["name"],
            owner=record.get("owner", ""),
            webhook_url=record.get("webhook_url"),
        )


@dataclass(frozen=True)
class ServiceAccountCredential:
    """A service account and its OAuth 2.0 credential (client credentials grant): who calls
    (``account_id``), with which scopes, on which sites (cloud ids)."""

    name: str
    account_id: str
    client_id: str
    client_secret: Secret
    scopes: tuple[str, ...]
    sites: tuple[str, ...]

    @classmethod
    def from_state(cls, record: dict) -> ServiceAccountCredential:
        return cls(
            name=record["name"],
            account_id=record["account_id"],
            client_id=record["client_id"],
            client_secret=Secret(record["client_secret"]),
            scopes=tuple(record["scopes"]),
            sites=tuple(record["sites"]),
        )
