"""The sites a token reaches: ``accessible-resources`` merged per site, and the choice among
them. Atlassian lists one entry per product per site and promises no order (FACTS.md, "Find
the site"), so the app must choose, never assume the first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SiteSelectionRequired

__all__ = ["Site", "choose_site", "group_sites"]


@dataclass(frozen=True)
class Site:
    """One Atlassian site the token can reach, merged over its per-product entries.

    ``accessible-resources`` lists one entry per product per site (the same cloud id twice,
    Jira and Confluence, each with its own scopes), so a site's ``scopes`` are the union and
    ``products`` names the products seen.
    """

    id: str  # the cloud id used in /ex/{product}/{cloudid}/...
    name: str
    url: str
    scopes: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    avatar_url: str | None = None

    @property
    def label(self) -> str:
        """How a person recognises the site: ``name (url, cloud id …)``."""
        return f"{self.name} ({self.url}, cloud id {self.id})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "scopes": list(self.scopes),
            "products": list(self.products),
            "avatar_url": self.avatar_url,
        }


def _product_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """Which product an accessible-resources entry is for.

    Atlassian's entries carry no product field (FACTS.md shows id, name, url, scopes,
    avatarUrl), so it is read from the scope names; an explicit ``product``/``products`` field
    wins when present.
    """
    explicit = entry.get("product") or entry.get("products")
    if isinstance(explicit, str):
        return (explicit,)
    if isinstance(explicit, list):
        return tuple(str(p) for p in explicit)
    products: list[str] = []
    for scope in entry.get("scopes") or ():
        if any(word in scope for word in ("jira", "servicedesk", "servicemanagement")):
            product = "jira"
        elif "confluence" in scope:
            product = "confluence"
        else:
            continue
        if product not in products:
            products.append(product)
    return tuple(products)


def group_sites(entries: Iterable[Mapping[str, Any]]) -> list[Site]:
    """Merge accessible-resources entries by cloud id, keeping the order of first appearance."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        site_id = str(entry.get("id") or "")
        if not site_id:
            continue
        slot = merged.setdefault(
            site_id,
            {
                "name": entry.get("name") or "",
                "url": (entry.get("url") or "").rstrip("/"),
                "scopes": [],
                "products": [],
                "avatar_url": entry.get("avatarUrl"),
            },
        )
        for key in ("name", "url", "avatar_url"):
            source = "avatarUrl" if key == "avatar_url" else key
            if not slot[key] and entry.get(source):
                slot[key] = entry[source].rstrip("/") if key == "url" else entry[source]
        for scope in entry.get("scopes") or ():
            if scope not in slot["scopes"]:
                slot["scopes"].append(scope)
        for product in _product_of(entry):
            if product not in slot["products"]:
                slot["products"].append(product)
    return [
        Site(
            id=site_id,
            name=slot["name"],
            url=slot["url"],
            scopes=tuple(slot["scopes"]),
            products=tuple(slot["products"]),
            avatar_url=slot["avatar_url"],
        )
        for site_id, slot in merged.items()
    ]


def choose_site(sites: Sequence[Site], wanted: str | None) -> Site:
    """The site to use: the one ``wanted`` names (cloud id, name or URL), or the only one.

    Never the first of several: with more than one site and nothing chosen this raises
    :class:`SiteSelectionRequired` listing them (FACTS.md: "the app must choose, never assume
    the first").
    """
    if not sites:
        raise SiteSelectionRequired(
            "The token reaches no Atlassian site (accessible-resources is empty).",
            "The user must have access to at least one Jira or Confluence site: log in again "
            "and choose a site on the consent screen (a site admin may have to allow the app).",
        )
    if wanted:
        needle = wanted.strip()
        normalized = _normalize_site_text(needle)
        for site in sites:
            if needle == site.id:
                return site
        for site in sites:
            if (
                normalized
                in (
                    _normalize_site_text(site.url),
                    _normalize_site_text(site.name),
                )
                or normalized == _normalize_site_text(site.url).split(".", 1)[0]
            ):
                return site
        raise SiteSelectionRequired(
            f"ATLASSIAN_SITE={wanted!r} matches none of the granted sites: {_list_sites(sites)}.",
            "Set ATLASSIAN_SITE to one of these cloud ids, names or URLs, or log in again and "
            "choose that site on the consent screen.",
        )
    if len(sites) == 1:
        return sites[0]
    raise SiteSelectionRequired(
        f"The token reaches {len(sites)} sites and none was chosen: {_list_sites(sites)}.",
        "Set ATLASSIAN_SITE to the cloud id, name or URL of the site to use; scopes can differ "
        "per site.",
    )


def _normalize_site_text(text: str) -> str:
    text = text.strip().lower().rstrip("/")
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text


def _list_sites(sites: Sequence[Site]) -> str:
    return "; ".join(site.label for site in sites)
