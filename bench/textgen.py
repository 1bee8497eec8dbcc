"""Deterministic, realistic-looking memory text: 10-60 words over a Zipf-distributed long-tail vocabulary.

No downloaded data: the head of the vocabulary is a list of common English words (so sentences and questions read
naturally and the stopword handling is exercised), the long tail is made of generated pronounceable words.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect_left

HEAD = """the user a to and of in is for on with that prefers likes wants project meeting team work code data
time week morning evening email call report plan travel trip city family friend food coffee tea book music
language python rust server database memory note idea question answer problem bug fix release deadline budget
client customer order price phone address birthday doctor appointment school class garden dog cat car house
weather summer winter holiday flight hotel train ticket restaurant dinner lunch breakfast movie song game sport
running hiking cooking reading writing learning design review test deploy account password invoice payment""".split()

_ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch",
           "cl", "dr", "fl", "gr", "kr", "pl", "pr", "sh", "sk", "sl", "st", "str", "th", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
_CODAS = ["", "n", "r", "s", "t", "l", "m", "nd", "rk", "st", "x", "ng"]


class TextGen:
    """Sentences of 10-60 words, word ranks Zipf(s) over `vocab` words. Same seed, same text."""

    def __init__(self, seed: int = 42, vocab: int = 50_000, s: float = 1.07) -> None:
        rng = random.Random(seed)
        syllables = [o + v + c for o, v, c in itertools.product(_ONSETS, _VOWELS, _CODAS)]
        rng.shuffle(syllables)
        words: list[str] = list(HEAD)
        seen = set(words)
        while len(words) < vocab:
            w = "".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 2, 3, 3))))
            if len(w) >= 3 and w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        total = 0.0
        self._cum = []
        for rank in range(1, vocab + 1):
            total += 1.0 / rank**s
            self._cum.append(total)
        self._total = total
        self.seed = seed

    def rank_probability(self, rank: int) -> float:
        return (1.0 / rank ** 1.07) / self._total

    def sentences(self, n: int, *, stream: int = 0) -> list[str]:
        """n sentences; different `stream`s give independent sequences."""
        rng = random.Random(self.seed * 1_000_003 + stream)
        words, cum, total = self.words, self._cum, self._total
        out = []
        for _ in range(n):
            k = rng.randint(10, 60)
            picks = [words[min(bisect_left(cum, rng.random() * total), len(words) - 1)] for _ in range(k)]
            picks[0] = picks[0].capitalize()
            out.append(" ".join(picks) + ".")
        return out

    def rare_words(self, count: int, *, low: int = 5_000, high: int = 20_000, seed: int = 7) -> list[str]:
        rng = random.Random(seed)
        return [self.words[rng.randrange(low, high)] for _ in range(count)]

    def common_words(self) -> list[str]:
        # content words near the head (ranks ~5-60): each matches a large share of all memories
        return [w for w in HEAD[4:60] if w not in {"that", "with", "for", "on", "in", "is", "of", "to", "and", "a"}]


def queries(gen: TextGen) -> dict[str, list[str]]:
    """The benchmark questions, 20 of each kind: rare (two long-tail words), common (head words), mixed, one word."""
    rare = gen.rare_words(40)
    common = gen.common_words()
    return {
        "rare": [f"What did I note about {rare[i]} and {rare[i + 1]}?" for i in range(0, 40, 2)],
        "common": [f"Which {common[i % len(common)]} does the user prefer for the {common[(i * 7 + 3) % len(common)]}?"
                   for i in range(20)],
        "mixed": [f"When is the {common[i % len(common)]} about {rare[i]}?" for i in range(20)],
        "word": rare[:20],
    }
