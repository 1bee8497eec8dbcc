"""Text processing and ranking for search, identical on SQLite and PostgreSQL.

All linguistics (tokenising, stopwords, stemming) happens here; the databases see only space-separated stems
(`search_body` / `search_ctx` columns) indexed without linguistics of their own (FTS5 `unicode61`, PostgreSQL
`simple`). The full-text index only generates a bounded set of candidates; the final order is a BM25F computed
here, so both backends rank the same candidates the same way.

User input is reduced to letter/digit tokens before it reaches FTS5 MATCH or to_tsquery, and every term is quoted
as well: no query can raise a syntax error. A query without usable terms yields no MATCH expression at all: the
caller returns no results without touching the database.

Design and measurements: docs/benchmarks.md (LoCoMo recall).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from repository.stemmer import stem
from repository.tokens import fold, raw_tokens

# ---------------------------------------------------------------------------
# Generic English function words (the usual IR list), including the fragments
# that apostrophe splitting leaves behind ("don't" -> "don" + "t").
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn
    doing don down during each few for from further had hadn has hasn have haven having he
    her here hers herself him himself his how i if in into is isn it its itself just let
    ll me more most mustn my myself no nor not now of off on once only or other ought our
    ours ourselves out over own re s same shan she should shouldn so some such t than that
    the their theirs them themselves then there these they this those through to too under
    until up ve very was wasn we were weren what when where which while who whom why will
    with won would wouldn you your yours yourself yourselves d m o y ma
    also yeah yes oh hey hi wow ok okay lol
    """.split()
)

# Extra words that are pure *question scaffolding* in natural-language queries
# ("What kind of ...", "Would X be likely to ...").  Applied to QUERIES only,
# never to stored text.  They are generic English question phrasing, not words
# picked from any evaluation set.
QUERY_STOPWORDS = STOPWORDS | frozenset(
    """
    kind kinds type types sort sorts
    likely might may must
    anything something someone somebody thing things
    """.split()
)

_CONTRACTIONS = frozenset(
    """
    im ive id ill youre youve youd youll hes shes its were theyre theyve theyd theyll
    dont doesnt didnt isnt arent wasnt werent havent hasnt hadnt wont wouldnt cant couldnt
    shouldnt thats whats wheres whos hows lets theres heres
    """.split()
)
# Contractions joined by raw_tokens ("dont", "im", "ive") are stopwords too; one set lookup per token.
_SKIP_STORED = STOPWORDS | _CONTRACTIONS
_SKIP_QUERY = QUERY_STOPWORDS | _CONTRACTIONS


class Analyzer:
    """The text pipeline: tokens -> stopword removal -> Porter stem, with a bounded cache of stems of its own.

    Stored text and queries go through the same pipeline (`query=True` only switches to the larger query stoplist).
    Single letters are dropped, digits are kept ("2023", "5k"). One analyzer belongs to each `Runtime` (see
    repository.runtime); its stem cache lives as long as that.
    """

    def __init__(self, stem_cache_size: int = 200_000) -> None:
        self._stem: Callable[[str], str] = functools.lru_cache(maxsize=stem_cache_size)(stem)

    def analyze(self, text: str, *, query: bool = False, stopwords: frozenset[str] | None = None) -> list[str]:
        skip = (_SKIP_QUERY if query else _SKIP_STORED) if stopwords is None else stopwords | _CONTRACTIONS
        stem_of = self._stem
        # Single letters say nothing, except a digit or a character of a script without spaces (a whole word).
        return [
            stem_of(token)
            for token in raw_tokens(text)
            if token not in skip and (len(token) > 1 or token.isdigit() or not token.isascii())
        ]

    def index_text(self, text: str) -> str:
        """The string stored in an indexed column: space-separated stems."""
        return " ".join(self.analyze(text))

    def query_terms(self, question: str, max_terms: int = 32) -> list[str]:
        """Distinct query stems in first-occurrence order (bounded)."""
        seen: dict[str, None] = {}
        for term in self.analyze(question, query=True):
            seen.setdefault(term, None)
            if len(seen) >= max_terms:
                break
        return list(seen)

    def word_stem(self, word: str) -> str:
        """The stem a single word of stored text is indexed under (for marking matches in snippets)."""
        return self._stem(fold(word))


# ---------------------------------------------------------------------------
# Backend query strings.  Terms come from Analyzer.query_terms(), i.e. they are already
# [^\W_]+ tokens; we still quote / validate defensively.
# ---------------------------------------------------------------------------
_SAFE_TERM = re.compile(r"^[^\W_]+$", re.UNICODE)


def _safe(terms: Iterable[str]) -> list[str]:
    return [t for t in terms if t and _SAFE_TERM.match(t)]


def fts5_match(terms: Sequence[str], *, every: bool = False) -> str | None:
    """FTS5 MATCH expression: '"t1" OR "t2" ...' (AND with `every`; each term a quoted string, so
    AND/OR/NOT/NEAR or '*' inside a term can never act as an operator).
    None -> caller returns no results."""
    terms = _safe(terms)
    if not terms:
        return None
    return (" AND " if every else " OR ").join('"' + t.replace('"', '""') + '"' for t in terms)


def pg_tsquery(terms: Sequence[str], *, every: bool = False) -> str | None:
    """to_tsquery('simple', ...) text: 't1' | 't2' ... (& with `every`; single-quoted lexemes,
    so & | ! ( ) : * <-> in user input can't be operators)."""
    terms = _safe(terms)
    if not terms:
        return None
    return (" & " if every else " | ").join("'" + t.replace("'", "''") + "'" for t in terms)


# ---------------------------------------------------------------------------
# Ranking: BM25F over a bounded candidate set.
# ---------------------------------------------------------------------------
# Tuned on LoCoMo-dev (curve is flat: k1 in [0.6, 1.6] and b in [0, 0.3] all
# within ~0.01 recall@5).  Chat turns are short and the informative ones are
# the longer ones, so length normalisation is kept weak (b = 0.2 << 0.75).
K1 = 0.9
B = 0.2
CTX_WEIGHT = 0.35  # weight of the neighbour-context field relative to the body
CTX_WINDOW = 2  # history: messages on each side that form the context field
# Stems each neighbour lends to the context at most (repository.search_index.lent_stems): no LoCoMo turn has more
# than 41, and a pasted document lends only its beginning. A context holds at most 2 * CTX_WINDOW * CTX_STEMS.
CTX_STEMS = 64
# Length normalisation saturates at this many times a field's average length (see bm25f_scores). No LoCoMo row
# comes near it (its longest memory body has 42 stems against a mean of 13.9), and its recall is unchanged.
LENGTH_CAP = 8.0
# Multipliers on the text score (never a filter, and never a score of their own: a row must match some words).
# LoCoMo-dev history, recall@5 in a scoring harness (docs/retrieval.md), message bodies without the speaker's name:
# 0.703 neither, 0.764 speaker x2, 0.722 date x2, 0.778 both; both x1.5 0.775, both x3 0.774.
SPEAKER_BOOST = 2.0  # a message said by someone the question names ("What did Nate say about ...")
DATE_BOOST = 2.0  # a row created within a day, month or year the question names (repository.query_dates)


def idf(df: int, n_docs: int) -> float:
    """BM25 (Robertson/Lucene) idf, always > 0."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def bm25f_scores(
    query_weights: Mapping[str, float],
    docs: Sequence[Sequence[str]],
    field_weights: Sequence[float],
    df: Mapping[str, int],
    n_docs: int,
    avg_len: Sequence[float],
    k1: float = K1,
    b: float = B,
) -> list[float]:
    """BM25F (Robertson et al. 2004 "simple BM25F"): per-field length-normalised
    term frequencies are combined with field weights, then saturated once.

    docs[i][f] is field f of candidate i as stored: stems joined by single spaces. avg_len[f] is the
    collection-wide average length of field f (from the stats table)."""
    # Term frequencies come from substring counts on the stored strings, not from splitting every candidate into
    # a Counter, which took almost twice as long per search (measured: docs/benchmarks.md, History).
    # " t " finds whole stems only; str.count misses back-to-back repeats (" t t "), so those count on a copy
    # with doubled spaces.
    terms = [(f" {t} ", f" {t} {t} ", idf(df.get(t, 0), n_docs) * w) for t, w in query_weights.items()]
    # The length normalisation of field f is base + per_token * length (1 when the field is empty everywhere).
    # A field is normalised as if it were at most LENGTH_CAP times the average long: a pasted document is then
    # still found first by its own words, instead of losing to the short rows it lends its first stems to.
    scale = [(1.0 - b, b / avg, LENGTH_CAP * avg) if avg > 0 else (1.0, 0.0, 0.0) for avg in avg_len]
    fields_of = list(zip(field_weights, scale, strict=True))
    out = []
    for fields in docs:
        # Empty fields hold no stem and are skipped; each other field is padded once and carries its weight, with
        # no per-term zip of fields and weights (that bookkeeping was most of the time per candidate).
        padded = []
        for (weight, (base, per_token, cap)), text in zip(fields_of, fields, strict=True):
            if text:
                padded.append((f" {text} ", weight / (base + per_token * min(text.count(" ") + 1, cap))))
        s = 0.0
        for single, double, term_weight in terms:
            tf = 0.0
            for text, weight in padded:
                if single in text:
                    tf += weight * (text.replace(" ", "  ").count(single) if double in text else text.count(single))
            if tf:
                s += term_weight * tf / (tf + k1)
        out.append(s)
    return out
