"""The state's tracked dicts (``_tracked.py``): every way to a value through the dict notes it,
or the state file's writer would keep an old text for a changed value."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from atlassian_playbook.emulator._tracked import Tracked, peek


def records() -> Tracked:
    return Tracked({"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}})


@pytest.mark.parametrize(("reach", "reached"), [
    (lambda d: d["a"], ["a"]),
    (lambda d: d.get("b"), ["b"]),
    (lambda d: d.get("nothing"), []),
    (lambda d: d.setdefault("a", {}), ["a"]),
    (lambda d: d.setdefault("new", {}), ["new"]),
    (lambda d: d.__setitem__("c", {"n": 4}), ["c"]),
    (lambda d: d.update({"b": {}}, c={}), ["b", "c"]),
    (lambda d: d.__ior__({"a": {}}), ["a"]),
    (lambda d: d.keys() and "a" in d and len(d), []),
    (lambda d: d.keys().mapping["b"], ["b"]),
])
def test_each_way_to_one_value_notes_its_key(reach, reached):
    d = records()
    reach(d)
    assert list(d.reached) == reached
    assert not d.all_reached and not d.dropped


@pytest.mark.parametrize("reach", [
    lambda d: d.items(),
    lambda d: d.values(),
    lambda d: d.copy(),
    lambda d: d | {},
    lambda d: {} | d,
    lambda d: copy.copy(d),
    lambda d: copy.deepcopy(d),
    lambda d: pickle.dumps(d),
    lambda d: json.dumps(d),
    lambda d: list(d.keys().mapping.values()),
])
def test_what_hands_out_every_value_says_so(reach):
    d = records()
    reach(d)
    assert d.all_reached


@pytest.mark.parametrize("reach", [lambda d: dict(d), lambda d: {**d}, lambda d: dict(**d)])
def test_a_plain_copy_goes_through_getitem(reach):
    d = records()
    assert reach(d) == {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}}
    assert set(d.reached) == {"a", "b", "c"}  # not read from the dict's storage behind it


def test_copies_are_plain_dicts_of_the_same_values():
    d = records()
    for made in (copy.copy(d), copy.deepcopy(d), pickle.loads(pickle.dumps(d)), d.copy()):
        assert type(made) is dict and made == d


@pytest.mark.parametrize(("delete", "dropped"), [
    (lambda d: d.__delitem__("a"), {"a"}),
    (lambda d: d.pop("b"), {"b"}),
    (lambda d: d.pop("nothing", None), set()),
    (lambda d: d.popitem(), {"c"}),
    (lambda d: d.clear(), {"a", "b", "c"}),
])
def test_deleted_keys_are_noted(delete, dropped):
    d = records()
    delete(d)
    assert d.dropped == dropped


def test_a_key_inserted_again_is_reached_last_as_the_dict_holds_it():
    d = records()
    d["a"]
    d["new"] = {}
    del d["a"]
    d["a"] = {"n": 5}
    assert list(d.reached) == list(d)[-2:] == ["new", "a"]


def test_peek_reads_without_noting_and_forget_reached_starts_over():
    d = records()
    assert [key for key, _ in peek(d)] == ["a", "b", "c"]
    assert not d.reached and not d.all_reached
    d["a"]
    del d["b"]
    d.values()
    d.forget_reached()
    assert (d.reached, d.dropped, d.all_reached) == ({}, set(), False)
