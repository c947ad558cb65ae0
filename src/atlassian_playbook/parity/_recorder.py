"""The :class:`Recorder`: observes every httpx client the package makes inside
``recording()`` and keeps only shapes."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._http import observing
from ._record import TRANSPORT_HEADERS, Exchange, Record, json_shape, placeholder, template_path

if TYPE_CHECKING:
    import httpx

    from ..config import Settings


class Recorder:
    """Collects shapes from the answers of every client made inside :meth:`recording`.

    Requests to a host other than the two bases are not recorded: that host's name alone
    would be a value. Identical requests with the same status merge into one exchange.
    """

    def __init__(self, auth_base_url: str, api_base_url: str) -> None:
        import httpx

        self._bases = []
        for base, url in (("auth", auth_base_url), ("api", api_base_url)):
            parsed = httpx.URL(url)
            self._bases.append((base, parsed.scheme, parsed.netloc, parsed.path.rstrip("/")))
        self._bases.sort(key=lambda entry: -len(entry[3]))  # the longest path prefix first
        self._seen: dict[tuple, dict[str, Any]] = {}
        self._lock = threading.Lock()  # a client may be shared by threads

    @classmethod
    def for_settings(cls, settings: Settings) -> Recorder:
        return cls(settings.auth_base_url, settings.api_base_url)

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recorder]:
        with observing({"response": [self.observe]}):
            yield self

    def _locate(self, url: httpx.URL) -> tuple[str, str] | None:
        for base, scheme, netloc, prefix in self._bases:
            if (url.scheme, url.netloc) == (scheme, netloc) and (
                url.path == prefix or url.path.startswith(prefix + "/")
            ):
                return base, url.path[len(prefix) :] or "/"
        return None

    def observe(self, response: httpx.Response) -> None:
        """The httpx response hook."""
        request = response.request
        located = self._locate(request.url)
        if located is None:
            return
        base, path = located
        scheme = (request.headers.get("authorization") or "").split(" ", 1)[0].lower()
        auth = scheme if scheme in ("bearer", "basic") else "other" if scheme else "none"
        response.read()
        body, shape = "none", {}
        if response.content:
            try:
                shape = json_shape(json.loads(response.content))
                body = "json"
            except ValueError:
                body = "other"
        key = (base, request.method, template_path(path), auth, response.status_code)
        with self._lock:
            seen = self._seen.setdefault(
                key, {"query": set(), "headers": set(), "body": set(), "json": {}}
            )
            seen["query"] |= {placeholder(name) or name for name in request.url.params}
            seen["headers"] |= {name.lower() for name in response.headers} - TRANSPORT_HEADERS
            seen["body"].add(body)
            for path_, types in shape.items():
                seen["json"].setdefault(path_, set()).update(types)

    def record(self, target: str) -> Record:
        with self._lock:
            return Record(
                target,
                tuple(
                    Exchange(
                        *key,
                        query=tuple(sorted(seen["query"])),
                        headers=tuple(sorted(seen["headers"])),
                        body="|".join(sorted(seen["body"])),
                        json_types={p: "|".join(sorted(t)) for p, t in seen["json"].items()},
                    )
                    for key, seen in self._seen.items()
                ),
            )
