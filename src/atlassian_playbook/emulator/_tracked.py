"""A dict that remembers which of its values were reached, so the state file's writer
serialises those again and takes the others' text from what it wrote before (``_state.py``).

A transaction's body changes the state in place, at any depth. A value it never reached cannot
have changed: the state is a tree (no value sits in two places, as JSON has it) and nothing
taken from it is changed after its transaction, so the only way to change a value inside a
:class:`Tracked` dict is through the dict. Every method that hands a value out, sets or
deletes one therefore notes its key; those that hand out all the values (``items``,
``values``, ``copy``, ``|``, a copy or a pickle) note that they did. ``__iter__`` is
overridden for that reason too: ``dict(d)`` and ``{**d}`` then go through ``__getitem__``
instead of reading the dict's storage directly. Whether a reached value changed is for the
writer to decide (its JSON text against the file's).

:func:`peek` goes round the tracking, for a reader that changes nothing it sees (the pruning,
which only decides what to delete; what it deletes is noted).
"""

from __future__ import annotations

from collections.abc import ItemsView
from typing import Any

__all__ = ["Tracked", "peek"]


class Tracked(dict):
    """A dict noting the keys it handed out, set or deleted since :meth:`forget_reached`.

    ``reached`` keeps the keys in the order they were first reached, a newly inserted key
    moved to the end, so that new keys are in the order the dict holds them. ``dropped`` has
    the keys deleted; ``all_reached`` says every value was handed out at once.
    """

    __slots__ = ("reached", "dropped", "all_reached")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self.forget_reached()

    def forget_reached(self) -> None:
        self.reached: dict[Any, None] = {}
        self.dropped: set[Any] = set()
        self.all_reached = False

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        self.reached[key] = None
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            self.reached[key] = None
            return dict.__getitem__(self, key)
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        if not dict.__contains__(self, key):
            self.reached.pop(key, None)  # inserted now: it goes to the end, here as in the dict
        self.reached[key] = None
        dict.__setitem__(self, key, value)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Tracked:
        self.update(other)
        return self

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self.dropped.add(key)

    def pop(self, key: Any, *default: Any) -> Any:
        if dict.__contains__(self, key):
            self.dropped.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = dict.popitem(self)
        self.dropped.add(key)
        return key, value

    def clear(self) -> None:
        self.dropped.update(dict.keys(self))
        dict.clear(self)

    def __iter__(self):
        return dict.__iter__(self)

    def values(self):
        self.all_reached = True
        return dict.values(self)

    def items(self):
        self.all_reached = True
        return dict.items(self)

    def copy(self) -> dict:
        self.all_reached = True
        return dict.copy(self)

    def __or__(self, other: Any) -> dict:
        self.all_reached = True
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> dict:
        self.all_reached = True
        return dict.__ror__(self, other)

    def __reduce_ex__(self, protocol: int) -> tuple:
        # copy.copy, copy.deepcopy and pickle: a plain dict of the same values.
        self.all_reached = True
        return dict, (dict.copy(self),)


def peek(records: dict) -> ItemsView:
    """``records.items()`` without noting them reached: for a reader that changes nothing."""
    return dict.items(records)
