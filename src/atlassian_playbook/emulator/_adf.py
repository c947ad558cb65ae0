"""Atlassian Document Format, as much of it as the emulator needs: Jira v3's and Confluence's
rich text, turned into plain text and back, and the check that a value is a document at all."""

from __future__ import annotations

import re


def text_to_adf(text: str) -> dict:
    """A plain-text description as ADF: a paragraph per blank-line-separated block, line breaks
    as ``hardBreak``."""
    content = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if not block:
            continue
        nodes: list[dict] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def adf_to_text(node: dict) -> str:
    """An ADF document as v2's plain string: the text of each block, blocks apart by a blank
    line."""

    def text_of(item) -> str:
        if not isinstance(item, dict):
            return ""
        if item.get("type") == "text":
            return str(item.get("text", ""))
        if item.get("type") == "hardBreak":
            return "\n"
        children = item.get("content") or []
        joiner = "" if item.get("type") in ("paragraph", "heading") else "\n"
        return joiner.join(text_of(child) for child in children)

    return "\n\n".join(text_of(block) for block in node.get("content") or [])


def adf_problem(value) -> bool:
    """Whether ``value`` is not an ADF document (``doc``, version 1, typed nodes)."""
    if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
        return True

    def bad(node) -> bool:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            return True
        if node["type"] == "text" and not isinstance(node.get("text"), str):
            return True
        children = node.get("content", [])
        return not isinstance(children, list) or any(bad(child) for child in children)

    content = value.get("content")
    return not isinstance(content, list) or any(bad(child) for child in content)
