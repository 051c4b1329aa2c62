r"""Reading ease of a report's text: Flesch–Douma (Dutch) and Flesch Reading Ease (English).

.. math::

    \text{Flesch–Douma} &= 206.835 - 0.93\,\frac{W}{S} - 77\,\frac{L}{W}, \\
    \text{Flesch Reading Ease} &= 206.835 - 1.015\,\frac{W}{S} - 84.6\,\frac{L}{W},

with :math:`W` words, :math:`S` sentences and :math:`L` syllables. Higher is easier: about 60–70
is plain text for a broad adult audience, below 30 is academic. Douma (1960) adapted Flesch's
formula to Dutch, whose words are longer.

Counting, deliberately simple:

- A *word* is a token with at least one letter; numbers, intervals and symbols ("0,83",
  "48–62", "95%") are not words here (they are read, but a syllable count means little for
  them). :func:`sentence_lengths` counts every token, numbers included, for a cap on sentence length.
- A *sentence* ends at ``.``, ``!`` or ``?`` followed by a space, or at the end of a text block
  (a paragraph, list item or heading: pass them separately).
- Dutch *syllables* are groups of consecutive vowels (``a e i o u y`` and accented forms), a
  vowel with a diaeresis (``ë``, ``ï``, ...) starting a new group: "thuiszitter" 3, "geïnteresseerd"
  5. It miscounts a few vowel sequences that span two syllables ("ongeoorloofd": 3 for 4), which
  makes long words look slightly easier, never harder.
- English syllables are vowel groups (``aeiouy``) less a silent final "e" (not "-le") and a
  silent "-ed" (not after t or d), at least one per word.

Where it holds: running text of some length (a summary of a few hundred words). It does not
measure whether the text is right, well ordered or free of jargon; the report's tests check those
separately.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["syllables", "words", "sentences", "sentence_lengths", "reading_ease"]

_VOWELS = set("aeiouy")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _base(ch: str) -> tuple[str, bool]:
    """The letter without accents, and whether it carried a diaeresis (ë, ï, ...)."""
    decomposed = unicodedata.normalize("NFD", ch)
    return decomposed[0], "\u0308" in decomposed


def syllables(word: str, lang: str = "nl") -> int:
    """The number of syllables of ``word`` (at least 1 for a word with a letter; 0 without one)."""
    letters = [_base(c) for c in word.lower() if c.isalpha()]
    if not letters:
        return 0
    n, previous = 0, False
    for ch, diaeresis in letters:
        vowel = ch in _VOWELS
        if vowel and (not previous or diaeresis):
            n += 1
        previous = vowel
    if lang == "en":
        w = "".join(ch for ch, _ in letters)
        if n > 1 and w.endswith("e") and not w.endswith(("le", "ee")):
            n -= 1
        elif n > 1 and w.endswith("ed") and not w.endswith(("ted", "ded")):
            n -= 1
    return max(n, 1)


def sentences(blocks: list[str] | str) -> list[str]:
    """The sentences of the text blocks ``blocks`` (each block ends a sentence)."""
    if isinstance(blocks, str):
        blocks = [blocks]
    out = []
    for block in blocks:
        out += [s.strip() for s in _SENTENCE_END.split(" ".join(block.split())) if s.strip()]
    return out


def words(sentence: str) -> list[str]:
    """The words of ``sentence``: tokens with at least one letter."""
    return [t for t in sentence.split() if any(c.isalpha() for c in t)]


def sentence_lengths(blocks: list[str] | str) -> list[tuple[int, str]]:
    """(number of tokens, sentence) for every sentence, counting numbers and symbols as tokens."""
    return [(len(s.split()), s) for s in sentences(blocks)]


def reading_ease(blocks: list[str] | str, lang: str = "nl") -> float:
    """Flesch–Douma (``lang="nl"``) or Flesch Reading Ease (``"en"``) of the text blocks."""
    if lang not in ("nl", "en"):
        raise ValueError(f"lang: got {lang!r}; expected 'nl' or 'en'")
    ss = sentences(blocks)
    ws = [w for s in ss for w in words(s)]
    if not ss or not ws:
        raise ValueError("reading_ease: expected some text with words")
    per_sentence = len(ws) / len(ss)
    per_word = sum(syllables(w, lang) for w in ws) / len(ws)
    a, b = (0.93, 77.0) if lang == "nl" else (1.015, 84.6)
    return 206.835 - a * per_sentence - b * per_word
