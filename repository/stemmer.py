"""The Porter (1980) stemmer, in pure Python: the same algorithm as SQLite FTS5's `porter` tokenizer.

Stemming happens in Python so SQLite and PostgreSQL index exactly the same terms (PostgreSQL's english snowball
stemmer and FTS5's porter disagree on many words, which made the two backends rank differently).
"""

from __future__ import annotations

from typing import ClassVar

# ---------------------------------------------------------------------------
# Porter stemmer (M.F. Porter, 1980, "An algorithm for suffix stripping"),
# transcribed from the reference C implementation (with its 'bli'->'ble' and
# 'logi'->'log' departures, as in SQLite / NLTK "ORIGINAL_ALGORITHM").
# ---------------------------------------------------------------------------


class _Porter:
    __slots__ = ("b", "j", "k")
    b: str
    j: int
    k: int

    def _cons(self, i: int) -> bool:
        ch = self.b[i]
        if ch in "aeiou":
            return False
        if ch == "y":
            return True if i == 0 else not self._cons(i - 1)
        return True

    def _m(self) -> int:
        """Number of VC sequences in b[0..j]."""
        n = 0
        i = 0
        j = self.j
        while True:
            if i > j:
                return n
            if not self._cons(i):
                break
            i += 1
        i += 1
        while True:
            while True:
                if i > j:
                    return n
                if self._cons(i):
                    break
                i += 1
            i += 1
            n += 1
            while True:
                if i > j:
                    return n
                if not self._cons(i):
                    break
                i += 1
            i += 1

    def _vowelinstem(self) -> bool:
        return any(not self._cons(i) for i in range(self.j + 1))

    def _doublec(self, j: int) -> bool:
        return j >= 1 and self.b[j] == self.b[j - 1] and self._cons(j)

    def _cvc(self, i: int) -> bool:
        if i < 2 or not self._cons(i) or self._cons(i - 1) or not self._cons(i - 2):
            return False
        return self.b[i] not in "wxy"

    def _ends(self, s: str) -> bool:
        ln = len(s)
        if ln > self.k + 1:
            return False
        if self.b[self.k - ln + 1 : self.k + 1] != s:
            return False
        self.j = self.k - ln
        return True

    def _setto(self, s: str) -> None:
        self.b = self.b[: self.j + 1] + s + self.b[self.k + 1 :]
        self.k = self.j + len(s)

    def _r(self, s: str) -> None:
        if self._m() > 0:
            self._setto(s)

    def _step1ab(self) -> None:
        if self.b[self.k] == "s":
            if self._ends("sses"):
                self.k -= 2
            elif self._ends("ies"):
                self._setto("i")
            elif self.k >= 1 and self.b[self.k - 1] != "s":
                self.k -= 1
        if self._ends("eed"):
            if self._m() > 0:
                self.k -= 1
        elif (self._ends("ed") or self._ends("ing")) and self._vowelinstem():
            self.k = self.j
            if self._ends("at"):
                self._setto("ate")
            elif self._ends("bl"):
                self._setto("ble")
            elif self._ends("iz"):
                self._setto("ize")
            elif self._doublec(self.k):
                self.k -= 1
                if self.b[self.k] in "lsz":
                    self.k += 1
            else:
                self.j = self.k
                if self._m() == 1 and self._cvc(self.k):
                    self._setto("e")

    def _step1c(self) -> None:
        if self._ends("y") and self._vowelinstem():
            self.b = self.b[: self.k] + "i" + self.b[self.k + 1 :]

    _STEP2: ClassVar[dict[str, tuple[tuple[str, str], ...]]] = {
        "a": (("ational", "ate"), ("tional", "tion")),
        "c": (("enci", "ence"), ("anci", "ance")),
        "e": (("izer", "ize"),),
        "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
        "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
        "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
        "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
        "g": (("logi", "log"),),
    }
    _STEP3: ClassVar[dict[str, tuple[tuple[str, str], ...]]] = {
        "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
        "i": (("iciti", "ic"),),
        "l": (("ical", "ic"), ("ful", "")),
        "s": (("ness", ""),),
    }
    _STEP4: ClassVar[dict[str, tuple[str, ...]]] = {
        "a": ("al",),
        "c": ("ance", "ence"),
        "e": ("er",),
        "i": ("ic",),
        "l": ("able", "ible"),
        "n": ("ant", "ement", "ment", "ent"),
        "o": ("ion", "ou"),
        "s": ("ism",),
        "t": ("ate", "iti"),
        "u": ("ous",),
        "v": ("ive",),
        "z": ("ize",),
    }

    def _step2(self) -> None:
        if self.k < 1:
            return
        for suf, rep in self._STEP2.get(self.b[self.k - 1], ()):
            if self._ends(suf):
                self._r(rep)
                return

    def _step3(self) -> None:
        for suf, rep in self._STEP3.get(self.b[self.k], ()):
            if self._ends(suf):
                self._r(rep)
                return

    def _step4(self) -> None:
        if self.k < 1:
            return
        for suf in self._STEP4.get(self.b[self.k - 1], ()):
            if self._ends(suf):
                if suf == "ion" and not (self.j >= 0 and self.b[self.j] in "st"):
                    return
                break
        else:
            return
        if self._m() > 1:
            self.k = self.j

    def _step5(self) -> None:
        self.j = self.k
        if self.b[self.k] == "e":
            a = self._m()
            if a > 1 or (a == 1 and not self._cvc(self.k - 1)):
                self.k -= 1
        if self.b[self.k] == "l" and self._doublec(self.k):
            self.j = self.k
            if self._m() > 1:
                self.k -= 1

    def stem(self, w: str) -> str:
        if len(w) <= 2:
            return w
        self.b = w
        self.k = len(w) - 1
        self.j = 0
        self._step1ab()
        if self.k > 0:
            self._step1c()
            self._step2()
            self._step3()
            self._step4()
            self._step5()
        return self.b[: self.k + 1]


_porter = _Porter()


def stem(word: str) -> str:
    """Porter-stem a lowercase token.  Tokens that are not pure a-z (numbers,
    non-latin scripts, mixed alnum) are returned unchanged. Uncached: `textsearch.Analyzer` caches it."""
    if not word.isascii() or not word.isalpha():
        return word
    return _porter.stem(word)
