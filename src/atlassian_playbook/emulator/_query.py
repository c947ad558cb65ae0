"""The query subset JQL and CQL share here: ``field op value`` clauses joined by AND, then
``ORDER BY field [ASC|DESC], ...``; and word matching for ``~``.

:func:`parse` reads the generic shape (operators ``= != ~ !~ < > <= >= IN, NOT IN, IS, IS NOT``,
quoted or bare values, lists, function calls), so a product can name a clause it does not
support instead of failing on its syntax. OR, NOT and parentheses raise :class:`Unsupported`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Clause",
    "Order",
    "Query",
    "QuerySyntaxError",
    "Unsupported",
    "parse",
    "text_matches",
]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|!~|<=|>=|=|~|<|>)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!~<>]+)
      | (?P<bad>["'])
    )""",
    re.VERBOSE,
)


class QuerySyntaxError(ValueError):
    """The text is not a query of the shared shape."""


class Unsupported(ValueError):
    """A construct the emulator does not evaluate; ``part`` is the text that names it."""

    def __init__(self, part: str) -> None:
        super().__init__(part)
        self.part = part


@dataclass(frozen=True)
class Value:
    kind: str  # "word", "string" or "function"
    text: str  # unquoted for strings; the whole call for functions


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # upper case: =, !=, ~, IN, NOT IN, IS, ...
    values: tuple[Value, ...]
    text: str  # the clause as written


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool
    text: str


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]
    order: tuple[Order, ...]


@dataclass(frozen=True)
class _Token:
    kind: str
    value: str
    start: int
    end: int

    def word(self, *words: str) -> bool:
        return self.kind == "word" and self.value.upper() in words


def _tokens(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip():
                raise QuerySyntaxError(f"unexpected text at character {pos + 1}")
            break
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "bad":
            raise QuerySyntaxError(
                f"the quoted string starting at character {match.start(kind) + 1} is not closed"
            )
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(_Token(kind, value, match.start(kind), match.end(kind)))
        pos = match.end()
    return tokens


_OPERATOR_WORDS = ("IN", "NOT", "IS", "WAS", "CHANGED")


def parse(text: str) -> Query:
    """The clauses and ORDER BY of ``text`` (empty for an empty query)."""
    tokens = _tokens(text)
    clauses: list[Clause] = []
    order: list[Order] = []
    i = 0

    def peek(offset: int = 0) -> _Token | None:
        return tokens[i + offset] if i + offset < len(tokens) else None

    def need(what: str) -> _Token:
        token = peek()
        if token is None:
            raise QuerySyntaxError(f"expecting {what} but the query ended")
        return token

    def value() -> tuple[Value, int]:
        nonlocal i
        token = need("a value")
        if token.kind == "string":
            i += 1
            return Value("string", token.value), token.end
        if token.kind != "word":
            raise QuerySyntaxError(f"expecting a value but got {token.value!r}")
        i += 1
        after = peek()
        if after is not None and after.kind == "punct" and after.value == "(":
            depth = 0
            while i < len(tokens):
                current = tokens[i]
                i += 1
                if current.kind == "punct" and current.value == "(":
                    depth += 1
                elif current.kind == "punct" and current.value == ")":
                    depth -= 1
                    if depth == 0:
                        return Value("function", text[token.start : current.end]), current.end
            raise QuerySyntaxError(f"the call {token.value}( is not closed")
        return Value("word", token.value), token.end

    while i < len(tokens):
        first = tokens[i]
        if first.word("ORDER"):
            break
        if first.kind == "punct" and first.value == "(":
            raise Unsupported("( ... ) grouping")
        if first.word("NOT"):
            raise Unsupported("NOT")
        if first.kind not in ("word", "string"):
            raise QuerySyntaxError(f"expecting a field name but got {first.value!r}")
        i += 1
        operator = need("an operator")
        if operator.kind == "op":
            op = operator.value
            i += 1
        elif operator.word(*_OPERATOR_WORDS):
            op = operator.value.upper()
            i += 1
            if op in ("NOT", "IS") and peek() is not None and peek().word("IN", "NOT"):
                op = f"{op} {peek().value.upper()}"
                i += 1
        else:
            raise QuerySyntaxError(
                f"expecting an operator after {first.value!r} but got {operator.value!r}"
            )
        values: list[Value] = []
        if op in ("IN", "NOT IN"):
            opening = need("(")
            if not (opening.kind == "punct" and opening.value == "("):
                raise QuerySyntaxError(f"expecting ( after {op} but got {opening.value!r}")
            i += 1
            while True:
                item, _ = value()
                values.append(item)
                separator = need(", or )")
                i += 1
                if separator.kind == "punct" and separator.value == ")":
                    end = separator.end
                    break
                if not (separator.kind == "punct" and separator.value == ","):
                    raise QuerySyntaxError(f"expecting , or ) but got {separator.value!r}")
        else:
            item, end = value()
            values.append(item)
        clauses.append(Clause(first.value, op, tuple(values), text[first.start : end]))
        joint = peek()
        if joint is None or joint.word("ORDER"):
            break
        if joint.word("OR"):
            raise Unsupported("OR")
        if not joint.word("AND"):
            raise QuerySyntaxError(f"expecting AND, OR or ORDER BY but got {joint.value!r}")
        i += 1
        if peek() is None:
            raise QuerySyntaxError("expecting a clause after AND but the query ended")

    if i < len(tokens):  # ORDER BY
        i += 1
        by = need("BY")
        if not by.word("BY"):
            raise QuerySyntaxError(f"expecting BY after ORDER but got {by.value!r}")
        i += 1
        while True:
            name = need("a field to order by")
            if name.kind not in ("word", "string"):
                raise QuerySyntaxError(f"expecting a field to order by but got {name.value!r}")
            i += 1
            descending, end = False, name.end
            direction = peek()
            if direction is not None and direction.word("ASC", "DESC"):
                descending, end = direction.value.upper() == "DESC", direction.end
                i += 1
            order.append(Order(name.value, descending, text[name.start : end]))
            separator = peek()
            if separator is None:
                break
            if not (separator.kind == "punct" and separator.value == ","):
                raise QuerySyntaxError(f"expecting , or the end but got {separator.value!r}")
            i += 1
    return Query(tuple(clauses), tuple(order))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def text_matches(query: str, *texts: str | None) -> bool:
    """Whether every word of ``query`` is in ``texts``: case-insensitive, light stemming
    (``rotating`` finds ``rotate``), ``word*`` as a prefix."""
    words = [w for text in texts if text for w in _words(text)]
    stems = {_stem(w) for w in words}
    terms = re.findall(r"[A-Za-z0-9]+\*?", query)
    for term in terms:
        if term.endswith("*"):
            prefix = term[:-1].lower()
            if not any(w.startswith(prefix) for w in words):
                return False
        elif _stem(term.lower()) not in stems:
            return False
    return bool(terms)
