"""The emulator's CQL: a subset (:data:`CQL_SUPPORTED`) of Confluence's query language over a
site's pages; anything else is a 400 naming the unsupported part."""

from __future__ import annotations

from ._query import Clause, QuerySyntaxError, Unsupported, parse, text_matches

CQL_SUPPORTED = (
    "type and space (or space.key) with = or IN; title with = or ~; text with ~; clauses "
    "joined by AND; ORDER BY title, created or lastmodified, ASC or DESC"
)


class CqlError(ValueError):
    """A CQL query the emulator refuses: a 400 with this message."""



def _unsupported(part: str) -> CqlError:
    return CqlError(f"Could not parse cql : the emulator does not support '{part}'. It supports "
                    f"{CQL_SUPPORTED}.")


def run_cql(site: dict, cql: str) -> list[dict]:
    """The site's pages matching ``cql``, in order; raises :class:`CqlError`."""
    try:
        query = parse(cql)
    except QuerySyntaxError as error:
        raise CqlError(f"Could not parse cql : {cql} ({error})") from None
    except Unsupported as error:
        raise _unsupported(error.part) from None
    pages = list(site["pages"])
    for clause in query.clauses:
        test = _clause_test(clause)
        pages = [p for p in pages if test(p)]
    pages.sort(key=lambda p: int(p["id"]))
    for order in reversed(query.order):
        field = order.field.lower()
        if field == "title":
            pages.sort(key=lambda p: p["title"].lower(), reverse=order.descending)
        elif field in ("created", "lastmodified"):
            pages.sort(key=lambda p: int(p["id"]), reverse=order.descending)
        else:
            raise _unsupported(f"ORDER BY {order.text}")
    return pages


def _clause_test(clause: Clause):
    field = clause.field.lower()
    if any(v.kind == "function" for v in clause.values):
        raise _unsupported(clause.text)
    values = [v.text for v in clause.values]
    if field in ("type", "space", "space.key") and clause.op in ("=", "IN"):
        if field == "type":
            return lambda page: "page" in values
        return lambda page: page["space"] in values
    if field == "title" and clause.op == "=":
        return lambda page: page["title"] == values[0]
    if field in ("title", "text") and clause.op == "~":
        if field == "title":
            return lambda page: text_matches(values[0], page["title"])
        return lambda page: text_matches(values[0], page["title"], page["body"])
    raise _unsupported(clause.text)
