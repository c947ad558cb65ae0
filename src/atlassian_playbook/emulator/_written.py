"""What a state file holds, as text: each top-level value's JSON, and each record's in its
collection, so that a transaction's change costs the values it reached (``_tracked.py``), not
the whole state.

A reached value is serialised again and compared with the text the file holds: equal, it did not
change. That is exact, where comparing the values would not be (``1 == 1.0 == True``, and a
dict's order does not count in ``==`` but does in the file). A value not reached is its text
unchanged. The texts are also the whole state's text when the file is rewritten, so a rewrite
serialises nothing again either.
"""

from __future__ import annotations

from ._state_file import RECORDS, apply_change, encode, fragment
from ._tracked import Tracked

__all__ = ["Written", "tracked"]


def tracked(state: dict) -> Tracked:
    """``state`` with its top level and its collections of records as :class:`Tracked`."""
    top = state if isinstance(state, Tracked) else Tracked(state)
    for key in RECORDS & dict.keys(top):
        if not isinstance(records := dict.__getitem__(top, key), Tracked):
            dict.__setitem__(top, key, Tracked(records))
    return top


class Written:
    """The texts of a tracked state (:func:`tracked`), as the file holds it."""

    def __init__(self, state: Tracked) -> None:
        self.order = list(state)
        self.texts: dict[str, str] = {}  # top-level value -> its JSON
        self.records: dict[str, dict[str, str]] = {}  # collection -> record id -> fragment
        self.collections: dict[str, Tracked] = {}  # the collection objects the texts are of
        for key in self.order:
            self._take(state, key)
        _forget_reached(state)

    def _take(self, state: Tracked, key: str) -> str:
        """Take ``state[key]``'s text whole; it is returned."""
        value = dict.__getitem__(state, key)
        if key not in RECORDS:
            self.texts[key] = text = encode(value)
            return text
        if not isinstance(value, Tracked):
            dict.__setitem__(state, key, value := Tracked(value))
        self.collections[key] = value
        self.records[key] = {name: fragment(name, record) for name, record in dict.items(value)}
        return self.collection_text(key)

    def collection_text(self, key: str) -> str:
        return "{" + ",".join(self.records[key].values()) + "}"

    def whole(self) -> str:
        """The first line of a file holding this state alone."""
        parts = (f"{encode(key)}:{self.collection_text(key) if key in RECORDS else self.texts[key]}"
                 for key in self.order)
        return "{" + ",".join(parts) + "}\n"

    def change(self, state: Tracked) -> tuple[str | None, bool]:
        """The line that brings the file from these texts to ``state`` (``None`` when nothing
        changed), and whether the file must be rewritten instead: top-level keys added, removed
        or reordered, which no line says. The texts are then of ``state``; the reached marks
        start afresh.
        """
        if list(state) != self.order:
            self.__init__(state)
            return None, True
        sets, drops, puts = [], [], []
        for key in self.order:
            value = dict.__getitem__(state, key)
            if key in RECORDS and value is self.collections[key]:
                dropped, put = self._record_changes(key, value)
                if dropped:
                    drops.append(f"{encode(key)}:{encode(dropped)}")
                if put:
                    puts.append(f"{encode(key)}:{{{','.join(put)}}}")
            elif key in RECORDS or state.all_reached or key in state.reached:
                before = self.texts.get(key) if key not in RECORDS else None
                if (text := self._take(state, key)) != before:
                    sets.append(f"{encode(key)}:{text}")
        _forget_reached(state)
        parts = [f'"{name}":{{{",".join(items)}}}'
                 for name, items in (("set", sets), ("drop", drops), ("put", puts)) if items]
        return ("{" + ",".join(parts) + "}\n" if parts else None), False

    def _record_changes(self, key: str, records: Tracked) -> tuple[list[str], list[str]]:
        """The ids of the records deleted from the collection ``key`` (or deleted and put
        back: they go at the end then) and the fragments of those added or changed."""
        texts = self.records[key]
        dropped = [name for name in records.dropped if name in texts]
        for name in dropped:
            del texts[name]
        put = []
        for name in (dict.keys(records) if records.all_reached else records.reached):
            if dict.__contains__(records, name):
                text = fragment(name, dict.__getitem__(records, name))
                if texts.get(name) != text:
                    texts[name] = text
                    put.append(text)
        return [str(name) for name in dropped], put

    def apply(self, state: Tracked, change: dict) -> None:
        """Apply a change line read from the file to ``state`` and to these texts."""
        apply_change(state, change)
        for key in change.get("set", {}):
            self._take(state, key)
        for key, names in change.get("drop", {}).items():
            for name in names:
                self.records[key].pop(name, None)
        for key, added in change.get("put", {}).items():
            texts = self.records[key]
            for name, record in added.items():
                texts[name] = fragment(name, record)


def _forget_reached(state: Tracked) -> None:
    state.forget_reached()
    for key in RECORDS & dict.keys(state):
        dict.__getitem__(state, key).forget_reached()
