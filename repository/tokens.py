"""Tokenisation for search: words, identifiers, and scripts written without spaces, the same on both backends.

- Words: runs of Unicode letters and digits, lowercased and diacritic-folded ('Café' == 'cafe'). A possessive 's
  is dropped ("Caroline's" -> "caroline"); other apostrophes join ("don't" -> "dont").
- Identifiers keep their shape as one more token beside their parts: a version, a code with dashes, an email or
  a URL (parts joined by . - @ / : with a digit or an @ among them: "v2.3.1" -> "v231" and "v2", "3", "1";
  "ada@example.com" -> "adaexamplecom" and its parts), and the language names that are mostly punctuation
  ("c++" -> "cpp", "c#" -> "csharp", ".net" -> "dotnet"). Plain hyphenated words stay their parts.
- Chinese, Japanese and Thai are written without spaces between words: each run of those scripts becomes its
  overlapping character bigrams (a lone character stays itself), so a word of two or more characters is found
  wherever it occurs, as people type it, and mixed-script text keeps its other words.
Every token is letters and digits only, so none can act as full-text query syntax.
"""

from __future__ import annotations

import re
import unicodedata

# Tokens longer than this are dropped (PostgreSQL silently drops words over 2047 bytes from a tsvector; capping
# here keeps both backends identical).
MAX_TOKEN_LEN = 64

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)  # runs of unicode letters/digits
_APOS_RE = re.compile(r"['\u2019\u2018\u02bc`]s\b", re.IGNORECASE)  # possessive 's
_APOS_ANY = re.compile(r"['\u2019\u2018\u02bc`]")
# Han (and its extensions and compatibility block), Hiragana, Katakana (full and half width), Thai.
_UNSPACED = re.compile(
    r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\u0e00-\u0e7f]+"
)
_COMPOUND = re.compile(r"[^\W_]+(?:[.\-@/:][^\W_]+)+")
_SYMBOL_SUFFIX = re.compile(r"([^\W_]+)(\+\+|#)(?![^\W_])")
_DOT_PREFIX = re.compile(r"(?<![^\W_.])\.([^\W_]+)")
_SUFFIX_WORD = {"++": "pp", "#": "sharp"}


def fold(text: str) -> str:
    """Lowercase + strip diacritics (NFKD) so 'Café' == 'cafe'."""
    if text.isascii():
        # Most text: nothing to decompose, and the per-character pass was most of text indexing (cProfile).
        return text.lower()
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def raw_tokens(text: str) -> list[str]:
    """The tokens of `text`, in order, identifiers' whole forms after the words (see the module docstring)."""
    if not text:
        return []
    t = _APOS_ANY.sub("", _APOS_RE.sub("", fold(text)))
    words = _WORD_RE.findall(t)
    if not t.isascii():
        words = [piece for word in words for piece in _split_unspaced(word)]
    words += _identifiers(t)
    return [w for w in words if len(w) <= MAX_TOKEN_LEN]


def _split_unspaced(word: str) -> list[str]:
    if word.isascii() or not _UNSPACED.search(word):
        return [word]
    pieces: list[str] = []
    at = 0
    for run in _UNSPACED.finditer(word):
        if run.start() > at:
            pieces.append(word[at : run.start()])
        chars = run.group()
        pieces += [chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)]
        at = run.end()
    if at < len(word):
        pieces.append(word[at:])
    return pieces


def _identifiers(t: str) -> list[str]:
    """Whole-form tokens of the identifiers in folded text `t`."""
    found = []
    if "." in t or "-" in t or "@" in t or "/" in t or ":" in t:
        for match in _COMPOUND.finditer(t):
            compound = match.group()
            if "@" in compound or any(ch.isdigit() for ch in compound):
                found.append("".join(_WORD_RE.findall(compound)))
    if "+" in t or "#" in t:
        found += [name + _SUFFIX_WORD[suffix] for name, suffix in _SYMBOL_SUFFIX.findall(t)]
    if "." in t:
        found += ["dot" + name for name in _DOT_PREFIX.findall(t)]
    return found
