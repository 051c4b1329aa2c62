"""The report's glossary ("Begrippen"): every technical word that remains, in one or two plain sentences.

The terms are in ``[glossary.terms.*]`` of the message files, each with the words it explains
(``match``). The glossary lists a term only when one of its words occurs in the rest of the
report (its text outside the glossary), so that it explains what the reader meets and nothing
else. A word written in capitals (``PO``, ``RMSE``) matches as a whole word and case-sensitively;
any other word matches case-insensitively at the start of a word ("thuiszitter" also finds
"thuiszitters").
"""

from __future__ import annotations

import html
import re

from .text import Messages

__all__ = ["glossary", "used_terms", "visible_text"]


def _pattern(word: str) -> re.Pattern:
    if word.isupper():
        return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")
    return re.compile(rf"(?<!\w){re.escape(word)}", re.IGNORECASE)


def visible_text(page: str) -> str:
    """The text a reader sees in an HTML page (tags, styles and data URIs removed; alt texts kept)."""
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    alts = " ".join(re.findall(r'\balt="([^"]*)"', page))
    page = re.sub(r"<[^>]+>", " ", page)
    return " ".join(html.unescape(f"{page} {alts}").split())


def used_terms(m: Messages, text: str) -> list[str]:
    """The glossary terms (keys) whose words occur in ``text``."""
    return [key for key, t in m["glossary"]["terms"].items() if any(_pattern(w).search(text) for w in t["match"])]


def glossary(m: Messages, text: str) -> dict:
    """The glossary section's context: the terms used in ``text``, alphabetically."""
    terms = m["glossary"]["terms"]
    keys = sorted(used_terms(m, text), key=lambda k: terms[k]["term"].casefold())
    return {"terms": [(key.replace("_", "-"), terms[key]["term"], terms[key]["text"]) for key in keys]}
