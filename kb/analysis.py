"""Text analysis for knowledge-base search (pure: no I/O besides loading Kiwi's model once).

Korean is agglutinative: "환불해주세요" is 환불 + 하 + 어 + 주 + 세요, and "카드결제를" is
카드 + 결제 + 를. Articles and queries go through the same analysis, so the store's
full-text engine (SQLite FTS5, PostgreSQL ``simple`` text search) only ever sees
*terms*: content morphemes (nouns, verb/adjective stems, roots, foreign words,
numbers), lower-cased; English words are stemmed (Snowball). Particles, endings and
suffixes never become terms, so spacing variants ("카드 결제" / "카드결제") and
inflections ("환불해 주세요" / "환불은") meet on the same terms.

* :class:`Analyzer` wraps ``kiwipiepy.Kiwi`` (model from ``kiwipiepy-model``, offline).
* :class:`Synonyms` expands query terms with the team's synonym groups (the
  ``kb_synonyms`` table): when every term of one member (after analysis) is in the
  query, the terms of the other members are added.
* :class:`Vocabulary` gives typo tolerance: a query word none of whose terms the
  index (or the synonym table) knows is replaced by the indexed term within a small
  edit distance, computed on Hangul *jamo* (``환뷸`` → ``환불`` is one jamo away) with
  ``rapidfuzz`` (:func:`analyse_query`).
"""

from __future__ import annotations

import functools
import html
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

#: Kiwi part-of-speech tags that carry meaning (the rest are particles, endings, affixes, symbols)
CONTENT_TAGS = frozenset(
    {"NNG", "NNP", "NR", "NP", "SL", "SH", "SN", "XR", "VV", "VA", "VV-I", "VA-I", "VV-R", "VA-R"}
)
#: tags of words Kiwi found in its dictionary (nouns, verb/adjective stems): a query word
#: analysed into one of them, two syllables or longer, is a real word, never a typo
WORD_TAGS = frozenset({"NNG", "NNP", "VV", "VA"})
#: stems so common they carry no meaning on their own ("하다", "되다", "있다" …)
STOP_TERMS = frozenset(
    {
        "하", "되", "있", "없", "않", "같", "이", "그", "저", "것", "수", "등", "좀", "너무", "많이", "어떻", "어떻게",
        "a", "an", "the", "i", "my", "me", "to", "for", "of", "and", "or", "is", "are", "be", "it", "in", "on",
        "do", "how", "can", "want", "pleas", "pls", "what", "your", "you", "we", "with", "at", "by", "this",
    }
)
#: analysed query strings kept (:meth:`Analyzer.query_tokens`)
QUERY_CACHE = 4096
_TERM_OK = re.compile(r"^[\w가-힣]+$")


@dataclass(frozen=True, slots=True)
class Token:
    term: str  # normalised index term
    start: int  # offset of the surface form in the analysed text
    length: int
    tag: str = ""  # Kiwi's part-of-speech tag
    morph: int = 0  # Kiwi's morpheme id (a placeholder id for a word it guessed, not in its dictionary)


def jamo(text: str) -> str:
    """Hangul syllables decomposed into jamo (NFD does exactly that); other text unchanged."""
    return unicodedata.normalize("NFD", text)


_KIWI_LOCK = threading.Lock()


@functools.cache
def _load_kiwi():
    from kiwipiepy import Kiwi

    # without the multi-word and typo dictionaries: 2.4× faster to load (1.2 s instead of 2.9 s
    # measured here), same morphemes for what we index; typos are ours (Vocabulary)
    return Kiwi(load_multi_dict=False, load_typo_dict=False)


def shared_kiwi():
    """Kiwi with its default model, loaded once per process (whichever thread asks first):
    the model is read-only data (~100 MB) that every :class:`Analyzer` can share."""
    with _KIWI_LOCK:
        return _load_kiwi()


@functools.lru_cache(maxsize=65536)
def _dictionary_form(kiwi, morph: int) -> str:
    return kiwi.morpheme(morph).form


def _in_dictionary(kiwi, morph: int) -> bool:
    # unknown words share placeholder ids whose morpheme has no form
    return bool(_dictionary_form(kiwi, morph))


class Analyzer:
    """Text → index terms. One per process (Kiwi's model takes ~1 s and ~100 MB to load)."""

    def __init__(self, kiwi: object | None = None) -> None:
        self._kiwi = kiwi
        self._lock = threading.Lock()
        self._qcache: OrderedDict[str, tuple[Token, ...]] = OrderedDict()
        import snowballstemmer

        self._stem = snowballstemmer.stemmer("english").stemWord

    @property
    def kiwi(self):  # loaded on first use so importing kb costs nothing
        if self._kiwi is None:
            with self._lock:
                if self._kiwi is None:
                    self._kiwi = shared_kiwi()
        return self._kiwi

    def warm(self) -> None:
        """Load the model now (~1 s; it holds the GIL, so a thread does not help the event loop)."""
        self.kiwi.tokenize("워밍업")

    def tokens(self, text: str) -> list[Token]:
        out: list[Token] = []
        if not text or not text.strip():
            return out
        for t in self.kiwi.tokenize(text):
            if t.tag not in CONTENT_TAGS:
                continue
            term = self._normalise(t.form, t.tag)
            if term and term not in STOP_TERMS and _TERM_OK.match(term):
                out.append(Token(term, t.start, t.len, t.tag, t.id))
        return out

    def query_tokens(self, text: str) -> tuple[Token, ...]:
        """:meth:`tokens` for a query string, cached (agents repeat the same few questions;
        Kiwi's analysis is most of a search's CPU time). Bounded LRU; the tokens depend on the
        text only, so the cache never goes stale."""
        with self._lock:
            hit = self._qcache.get(text)
            if hit is not None:
                self._qcache.move_to_end(text)
                return hit
        out = tuple(self.tokens(text))
        with self._lock:
            self._qcache[text] = out
            if len(self._qcache) > QUERY_CACHE:
                self._qcache.popitem(last=False)
        return out

    def in_dictionary(self, token: Token) -> bool:
        """Is the token a morpheme of Kiwi's dictionary (not an unknown word it guessed)?"""
        return _in_dictionary(self.kiwi, token.morph)

    def terms(self, text: str) -> list[str]:
        return [t.term for t in self.tokens(text)]

    def index_text(self, text: str) -> str:
        """The space-joined terms stored for the full-text engine."""
        return " ".join(self.terms(text))

    def _normalise(self, form: str, tag: str) -> str:
        form = unicodedata.normalize("NFC", form).lower()
        if tag == "SL":
            return self._stem(form)
        return form


class Synonyms:
    """Synonym groups (each a list of words/phrases), analysed once."""

    def __init__(self, analyzer: Analyzer, groups: Iterable[Sequence[str]] = ()) -> None:
        self._analyzer = analyzer
        self._groups: list[list[tuple[str, ...]]] = []
        self.replace(groups)

    def replace(self, groups: Iterable[Sequence[str]]) -> None:
        analysed = []
        for group in groups:
            members = [tuple(self._analyzer.terms(w)) for w in group]
            members = [m for m in members if m]
            if len(members) > 1:
                analysed.append(members)
        self._groups = analysed

    def knows(self, term: str) -> bool:
        return any(term in m for members in self._groups for m in members)

    def expand(self, terms: Sequence[str]) -> list[str]:
        """``terms`` plus the terms of every synonym of a member fully present in ``terms``."""
        have = set(terms)
        extra: list[str] = []
        for members in self._groups:
            if any(set(m) <= have for m in members):
                for m in members:
                    extra.extend(t for t in m if t not in have and t not in extra)
        return list(terms) + extra


class Vocabulary:
    """The set of indexed terms, for typo correction of query terms."""

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self._by_jamo: dict[str, str] = {}
        self._keys: list[str] = []
        self.add(terms)

    def __len__(self) -> int:
        return len(self._by_jamo)

    def __contains__(self, term: str) -> bool:
        return jamo(term) in self._by_jamo

    def add(self, terms: Iterable[str]) -> None:
        changed = False
        for t in terms:
            key = jamo(t)
            if key not in self._by_jamo:
                self._by_jamo[key] = t
                changed = True
        if changed:
            self._keys = list(self._by_jamo)

    def corrections(self, term: str, limit: int = 3) -> list[str]:
        """Indexed terms close to an unknown ``term``: ≤1 jamo edit for short terms, ≤2 for long ones."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        key = jamo(term)
        if len(key) < 3 or not self._keys:
            return []
        max_d = 1 if len(key) < 7 else 2
        hits = process.extract(key, self._keys, scorer=Levenshtein.distance, score_cutoff=max_d, limit=limit)
        return [self._by_jamo[k] for k, _d, _i in sorted(hits, key=lambda h: (h[1], h[0]))]


@dataclass(slots=True)
class Query:
    """An analysed query: what the user typed, the terms searched, and why each was added."""

    text: str
    terms: list[str]  # the analysed terms of the query text
    expanded: list[str] = field(default_factory=list)  # terms + synonyms + typo corrections
    corrected: dict[str, list[str]] = field(default_factory=dict)  # unknown term -> indexed terms used
    synonyms: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.expanded


_WORD = re.compile(r"\S+")
_HANGUL = re.compile(r"[가-힣]")


def analyse_query(text: str, analyzer: Analyzer, synonyms: Synonyms | None, vocabulary: Vocabulary | None) -> Query:
    """Analyse a query; typo tolerance works per word: a word none of whose terms the index (or
    the synonym table) knows is corrected as a whole — for Korean, the longest prefix of the
    word (the noun before its particle or ending) within one or two jamo edits of an indexed
    term (``환뷸해주세요`` → ``환불``); otherwise term by term (``pasword`` → ``password``)."""
    tokens = analyzer.query_tokens(text)
    q = Query(text=text, terms=list(dict.fromkeys(t.term for t in tokens)))
    expanded: list[str] = []
    known = (lambda t: t in vocabulary or (synonyms is not None and synonyms.knows(t))) if vocabulary is not None and len(vocabulary) else None
    for m in _WORD.finditer(text):
        word_tokens = [t for t in tokens if m.start() <= t.start < m.end()]
        word_terms = [t.term for t in word_tokens]
        if known is not None and not any(known(t) for t in word_terms) and not _real_word(word_tokens, analyzer):
            fixes = _correct_word(m.group(), word_terms, vocabulary)  # type: ignore[arg-type]
            if fixes:
                q.corrected[m.group()] = fixes
                word_terms = fixes
        expanded.extend(t for t in word_terms if t not in expanded)
    if synonyms is not None:
        with_syn = synonyms.expand(expanded)
        q.synonyms = with_syn[len(expanded):]
        expanded = with_syn
    q.expanded = expanded
    return q


def _real_word(tokens: Sequence[Token], analyzer: Analyzer) -> bool:
    """A Korean word Kiwi analysed into a dictionary noun or stem of two syllables or more
    (``신고``, ``분실``) is a real word: not in the index means no hit, not a typo of a
    neighbour (``신고`` is one jamo from ``신규``). ``환뷸`` is a word Kiwi guessed (or 환 + 뷰)."""
    return any(t.tag in WORD_TAGS and len(t.term) >= 2 and _HANGUL.match(t.term) and analyzer.in_dictionary(t)
               for t in tokens)


def _correct_word(word: str, terms: Sequence[str], vocabulary: Vocabulary) -> list[str]:
    if _HANGUL.match(word):
        syllables = [c for c in word if "가" <= c <= "힣"]
        for n in range(len(syllables), 1, -1):  # longest prefix first
            fixes = vocabulary.corrections("".join(syllables[:n]))
            if fixes:
                return fixes[:1]
        return []
    out: list[str] = []
    for t in terms:
        out.extend(f for f in vocabulary.corrections(t)[:1] if f not in out)
    return out


# ---------------------------------------------------------------- highlights
def highlight(text: str, terms: Iterable[str], *, width: int | None = None) -> str:
    """HTML-escaped ``text`` with every occurrence of a term wrapped in ``<mark>``; with
    ``width``, a window of about that many characters around the first hit."""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return html.escape(text[:width] if width else text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    src = text
    if width is not None:
        m = pattern.search(text)
        start = max(0, (m.start() if m else 0) - width // 3)
        end = min(len(text), start + width)
        src = ("…" if start > 0 else "") + text[start:end].replace("\n", " ") + ("…" if end < len(text) else "")
    out, last = [], 0
    for m in pattern.finditer(src):
        out.append(html.escape(src[last : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        last = m.end()
    out.append(html.escape(src[last:]))
    return "".join(out)
