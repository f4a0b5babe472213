"""Knowledge-base persistence: articles + versions, the full-text index on both stores,
feedback, script ticks, notices and acknowledgements, synonyms.

Every method opens its own short session from the injected sessionmaker.

Full text, over the *analysed* terms (kb.analysis) kept in ``search_title`` / ``search_body``:

* SQLite: an FTS5 table ``kb_fts(title, body)`` (``unicode61`` tokenizer: the terms are
  already space-separated), rowid = article id, ranked by ``bm25`` with the title
  weighted 5×. Written in the same transaction as the article; created (and rebuilt when
  its row count differs from the table's) by :meth:`KbRepository.ensure_search_index`.
* PostgreSQL: the stored ``tsvector`` column ``kb_articles.search_vector``
  (:data:`kb.models.SEARCH_VECTOR_SQL`: title A, body B, ``simple`` configuration — no
  stemming, the analysis did it) with its GIN index (migration 0018), written in the same
  transaction as the article; rows written around the repository (a bulk load) are
  back-filled by :meth:`KbRepository.ensure_search_index`. Ranked by ``ts_rank`` computed
  from ``kb_search_terms`` (migration 0023: each lexeme of the vector with its own
  ``ts_rank``, written with the vector): ``ts_rank`` of an OR query is the sum of its
  terms' own ranks / the number of terms, so the search sums the few index entries of
  the query's terms (a covering index: no article row read), sorts the matches, and
  reads the article rows of the best ones only, best first, until ``limit`` of them pass
  the filters (:meth:`KbRepository._per_term_stmt`). Evaluating ``ts_rank`` (and ``@@``)
  on the vector of every matching article was a scan of the wide article rows (common
  terms match a third of them): 30–50 ms of server time per query at 10,000 articles,
  against 2–4 ms now. Terms the PostgreSQL parser might not keep as one lexeme equal
  to themselves (anything but lower-case ASCII letters, digits and Hangul syllables)
  take the ``ts_rank``-over-the-vector statement, as before.

One query per search on both stores, direct and synonym terms together
(:meth:`KbRepository.search`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import (
    REAL, Float, Select, Text, and_, any_, bindparam, case, cast, column, delete, func, literal_column, not_, or_, select,
    table, text, true, update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kb.models import (
    SEARCH_TERMS_SQL,
    SEARCH_VECTOR_SQL,
    AcknowledgementRow,
    ArticleRow,
    ArticleVersionRow,
    AttachmentRow,
    FeedbackRow,
    NoticeRow,
    ProposalRow,
    ScriptTickRow,
    SearchTermRow,
    SynonymRow,
)

#: full-text candidates fetched before the usage re-ranking
CANDIDATES = 200
#: PostgreSQL: terms that ``to_tsquery('simple', …)`` keeps as exactly one lexeme equal to the
#: term (its parser splits at other characters; ``simple`` lower-cases), so that the term's
#: ``kb_search_terms`` rows are the term's full-text matches
_PG_LEXEME = re.compile(r"[0-9a-z가-힣]+")


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    relevance: float  # full-text relevance, higher is better (FTS5 -bm25, PostgreSQL ts_rank)
    helpful: int
    language: str


_FTS = table("kb_fts", column("rowid"), column("rank"))
_C = ArticleRow.__table__.c
#: what a search result page shows (summary fields + body for the snippet), by id
_PAGE_ROWS = select(_C.id, _C.slug, _C.title, _C.kind, _C.status, _C.language, _C.tags, _C.queues, _C.intents,
                    _C.helpful_count, _C.version, _C.body).where(_C.id.in_(bindparam("ids", expanding=True)))


@dataclass(slots=True)
class SearchFilters:
    status: str | None = "published"
    queue: str | None = None
    tag: str | None = None
    language: str | None = None
    kind: str | None = None


def _like_needle(value: str) -> str:
    """The LIKE pattern of "JSON list contains value": both stores keep the JSON text SQLAlchemy
    wrote (``json.dumps``), so the quoted element is a substring of it."""
    needle = json.dumps(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{needle}%"


def _json_contains(column: Any, value: str) -> Any:
    """Portable "JSON list contains value" (:func:`_like_needle`)."""
    return cast(column, Text).like(_like_needle(value), escape="\\")


class KbRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker
        self._dialect: str | None = None
        self._statements: dict[tuple, Any] = {}  # search statements by shape (_search_statement)

    def session(self) -> AsyncSession:
        return self._sm()

    async def _add(self, row: Any) -> Any:
        """Insert one row and return it with its generated id."""
        async with self._sm() as s:
            s.add(row)
            await s.commit()
            await s.refresh(row)
            return row

    async def _get(self, model: Any, key: int) -> Any:
        async with self._sm() as s:
            return await s.get(model, key)

    async def dialect(self) -> str:
        if self._dialect is None:
            async with self._sm() as s:
                self._dialect = (await s.connection()).dialect.name
        return self._dialect

    # ------------------------------------------------------------ full-text index
    async def ensure_search_index(self) -> None:
        dialect = await self.dialect()
        async with self._sm() as s:
            if dialect == "sqlite":
                await s.execute(
                    text("CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(title, body, tokenize='unicode61 remove_diacritics 0')")
                )
                await s.execute(text("INSERT INTO kb_fts(kb_fts, rank) VALUES ('rank', 'bm25(5.0, 1.0)')"))
                indexed = (await s.execute(text("SELECT count(*) FROM kb_fts"))).scalar_one()
                articles = (await s.execute(select(func.count()).select_from(ArticleRow))).scalar_one()
                if indexed != articles:
                    await s.execute(text("DELETE FROM kb_fts"))
                    await s.execute(
                        text("INSERT INTO kb_fts(rowid, title, body) SELECT id, search_title, search_body FROM kb_articles")
                    )
            else:
                # the stored vector (migration 0018) of rows written around the repository, and
                # their per-term ranks (migration 0023): of those just back-filled and of any
                # article that has none (an article without a term has none, and gets none again)
                await s.execute(text("DELETE FROM kb_search_terms WHERE article_id IN "
                                     "(SELECT id FROM kb_articles WHERE search_vector IS NULL)"))
                await s.execute(text(f"UPDATE kb_articles SET search_vector = {SEARCH_VECTOR_SQL} WHERE search_vector IS NULL"))
                await s.execute(text(SEARCH_TERMS_SQL + "WHERE NOT EXISTS "
                                     "(SELECT 1 FROM kb_search_terms AS t WHERE t.article_id = a.id)"))
            await s.commit()

    async def _index(self, s: AsyncSession, row: ArticleRow) -> None:
        if await self.dialect() == "sqlite":
            await s.execute(text("DELETE FROM kb_fts WHERE rowid = :id"), {"id": row.id})
            await s.execute(
                text("INSERT INTO kb_fts(rowid, title, body) VALUES (:id, :t, :b)"),
                {"id": row.id, "t": row.search_title, "b": row.search_body},
            )
        else:
            await s.execute(text(f"UPDATE kb_articles SET search_vector = {SEARCH_VECTOR_SQL} WHERE id = :id"), {"id": row.id})
            await s.execute(text("DELETE FROM kb_search_terms WHERE article_id = :id"), {"id": row.id})
            await s.execute(text(SEARCH_TERMS_SQL + "WHERE a.id = :id"), {"id": row.id})

    async def search(
        self, terms: Sequence[str], filters: SearchFilters, *, synonyms: Sequence[str] = (), synonym_weight: float = 0.5,
        now: datetime | None = None, limit: int = CANDIDATES,
    ) -> list[Hit]:
        """The ``limit`` best full-text matches of any of ``terms`` or ``synonyms`` (already
        analysed; only word characters, disjoint) that pass ``filters``, best first, in ONE
        query. Relevance = relevance of the direct terms + ``synonym_weight`` × relevance of
        the synonyms (``1/synonym_weight`` must be a whole number). Only ids and ranking inputs
        are read: the caller loads the rows of the page it shows."""
        hits, _rows = await self.search_page(terms, filters, None, synonyms=synonyms, synonym_weight=synonym_weight,
                                             now=now, limit=limit)
        return hits

    async def search_page(
        self, terms: Sequence[str], filters: SearchFilters, choose: Callable[[list[Hit]], Iterable[int]] | None, *,
        synonyms: Sequence[str] = (), synonym_weight: float = 0.5, now: datetime | None = None, limit: int = CANDIDATES,
    ) -> tuple[list[Hit], dict[int, Any]]:
        """:meth:`search`, then the :meth:`page_rows` of the ids ``choose(hits)`` picks (the
        caller's ranking), in the same session: one connection checkout per search."""
        terms, synonyms = list(terms), [t for t in synonyms if t not in terms]
        if not terms and not synonyms:
            return [], {}
        repeat = round(1 / synonym_weight)
        if repeat < 1 or abs(repeat * synonym_weight - 1) > 1e-9:
            raise ValueError("synonym_weight must be 1/k for a whole k")
        stmt, params = self._search_statement(await self.dialect(), terms, synonyms, repeat, filters, now, limit)
        async with self._sm() as s:
            hits = [Hit(i, float(rel), helpful or 0, lang) for i, helpful, lang, rel in (await s.execute(stmt, params)).all()]
            ids = list(choose(hits)) if choose is not None else []
            rows = {r.id: r for r in (await s.execute(_PAGE_ROWS, {"ids": ids})).all()} if ids else {}
        return hits, rows

    @staticmethod
    def fts5_match(terms: Sequence[str], synonyms: Sequence[str] = (), repeat: int = 2) -> str:
        """The FTS5 query of :meth:`search`: FTS5's bm25 is the sum of its phrases' scores, so a
        direct term written ``repeat`` times counts ``repeat`` × what a synonym counts, and
        bm25 / ``repeat`` is exactly direct + synonyms / ``repeat``."""
        return " OR ".join([f'"{t}"' for t in terms for _ in range(repeat)] + [f'"{t}"' for t in synonyms])

    @staticmethod
    def _tsquery(ts: Sequence[str]) -> str:
        return " | ".join("'" + t.replace("'", "''") + "'" for t in ts)

    def _search_statement(self, dialect: str, terms: Sequence[str], synonyms: Sequence[str], repeat: int,
                          f: SearchFilters, now: datetime | None, limit: int) -> tuple[Any, dict[str, Any]]:
        """The search statement and its parameters. The statement depends only on the *shape* of
        the search (which filters, direct terms and/or synonyms): it is built once per shape and
        kept, every value is a bound parameter — building SQLAlchemy statements was a large part
        of a search's own CPU time."""
        # the fast FTS5 path takes the best matches first and filters them after: only for the
        # usual search (published articles, no other filter), where few of them are filtered out
        narrow = any((f.queue, f.tag, f.language, f.kind)) or f.status != "published"
        validity = now is not None and f.status == "published"
        # PostgreSQL: ranked from the per-term ranks when every term is its own lexeme
        per_term = dialect != "sqlite" and all(_PG_LEXEME.fullmatch(t) for t in (*terms, *synonyms))
        key = (dialect, bool(terms), bool(synonyms), repeat, limit, narrow, bool(f.status), validity, bool(f.language),
               bool(f.kind), bool(f.queue), bool(f.tag), per_term)
        cached = self._statements.get(key)
        if cached is None:
            conds = self._filter_conds(f, validity)
            stmt = (self._per_term_stmt(bool(terms), bool(synonyms), repeat, conds, limit) if per_term
                    else self._search_stmt(dialect, bool(terms), bool(synonyms), repeat, conds, limit, narrow))
            cached = self._statements[key] = (stmt, frozenset(stmt.compile().params))
        stmt, used = cached
        params: dict[str, Any] = {"f_status": f.status, "f_language": f.language, "f_kind": f.kind, "f_now": now,
                                  "f_queue": _like_needle(f.queue) if f.queue else None,
                                  "f_tag": _like_needle(f.tag) if f.tag else None}
        if dialect == "sqlite":
            params["m"] = self.fts5_match(terms, synonyms, repeat)
        elif per_term:
            # to_tsquery keeps each distinct operand once: the rank divides by the distinct terms
            direct, syn = list(dict.fromkeys(terms)), list(dict.fromkeys(synonyms))
            params.update(t_all=direct + syn, t_d=direct, t_s=syn, n_d=len(direct), n_s=len(syn))
        else:
            params.update(tq_d=self._tsquery(terms), tq_s=self._tsquery(synonyms))
        return stmt, {k: v for k, v in params.items() if k in used}

    @staticmethod
    def _filter_conds(f: SearchFilters, validity: bool) -> list[Any]:
        """:meth:`_filters` with bound parameters instead of values (``f_status``, ``f_now``, …)."""
        conds: list[Any] = []
        if f.status:
            conds.append(ArticleRow.status == bindparam("f_status"))
        if f.language:
            conds.append(ArticleRow.language == bindparam("f_language"))
        if f.kind:
            conds.append(ArticleRow.kind == bindparam("f_kind"))
        if f.queue:
            conds.append(cast(ArticleRow.queues, Text).like(bindparam("f_queue", type_=Text), escape="\\"))
        if f.tag:
            conds.append(cast(ArticleRow.tags, Text).like(bindparam("f_tag", type_=Text), escape="\\"))
        if validity:
            conds.append(or_(ArticleRow.valid_from.is_(None), ArticleRow.valid_from <= bindparam("f_now")))
            conds.append(or_(ArticleRow.valid_until.is_(None), ArticleRow.valid_until > bindparam("f_now")))
        return conds

    @staticmethod
    def _search_stmt(dialect: str, terms: bool, synonyms: bool, repeat: int, conds: list[Any], limit: int, narrow: bool) -> Any:
        cols = (ArticleRow.id, ArticleRow.helpful_count, ArticleRow.language)
        if dialect == "sqlite":
            match = text("kb_fts MATCH :m").bindparams(bindparam("m", type_=Text))
            if not narrow:
                # the best 2 × limit matches from the FTS5 table alone (no article row read), then
                # the status/validity filters drop the few drafts/expired rows among them. Ordered
                # by an explicit bm25(kb_fts, 5, 1): the same order as FTS5's "ORDER BY rank"
                # (rank = bm25(5, 1), set by ensure_search_index) and ≈ 30 % less time at 10,000
                # articles, as FTS5 sorts by rank through a statement of its own
                best = (
                    select(_FTS.c.rowid, literal_column("bm25(kb_fts, 5.0, 1.0)").label("score"))
                    .select_from(_FTS)
                    .where(match)
                    .order_by(literal_column("score"))
                    .limit(2 * limit)
                    .subquery("best")
                )
                rank = (-best.c.score / repeat).label("rel")
                return (
                    select(*cols, rank).select_from(best).join(ArticleRow, ArticleRow.id == best.c.rowid)
                    .where(*conds).order_by(best.c.score, ArticleRow.id).limit(limit)
                )
            rank = literal_column(f"-bm25(kb_fts, 5.0, 1.0) / {repeat}").label("rel")
            stmt = select(*cols, rank).select_from(ArticleRow).join(_FTS, _FTS.c.rowid == ArticleRow.id).where(match, *conds)
        else:
            vector = ArticleRow.search_vector
            direct = func.to_tsquery("simple", bindparam("tq_d", type_=Text))
            syn = func.to_tsquery("simple", bindparam("tq_s", type_=Text))
            if terms and synonyms:
                match = vector.op("@@")(direct.op("||")(syn))
                rank = (func.ts_rank(vector, direct) + func.ts_rank(vector, syn) / repeat).label("rel")
            elif terms:
                match, rank = vector.op("@@")(direct), func.ts_rank(vector, direct).label("rel")
            else:
                match, rank = vector.op("@@")(syn), (func.ts_rank(vector, syn) / repeat).label("rel")
            stmt = select(*cols, rank).where(match, *conds)
        return stmt.order_by(rank.desc(), ArticleRow.id).limit(limit)

    @staticmethod
    def _per_term_stmt(terms: bool, synonyms: bool, repeat: int, conds: list[Any], limit: int) -> Any:
        """PostgreSQL: the ``_search_stmt`` ranking from ``kb_search_terms``. ``ts_rank(v, q)``
        of an OR query ``q`` (normalisation 0) is Σ over the operands of q found in v of their
        own rank / the number of distinct operands; each sum of one article is taken here over
        its index entries (an index-only scan of the covering index), in double precision,
        then rounded to ``real`` like ``ts_rank``'s result: equal to ``ts_rank``, or one unit
        in the last place of a ``real`` (≈ 6e-8 relative) off it, as ``ts_rank`` adds in single
        precision in its own term order — two articles whose ``ts_rank`` differ by that unit
        only may then tie here (and be ordered by id). Tested against ``ts_rank``. The matches
        are sorted by relevance (then id); each is then read by its id in that order (a
        ``LATERAL`` subquery: one primary-key lookup, with the filters) until ``limit`` pass,
        so a filter costs one lookup per match it drops, never a scan of the articles."""
        t = SearchTermRow.__table__.c
        score = cast(t.score, Float(precision=53))

        def part(name: str) -> Any:
            total = func.coalesce(func.sum(score).filter(t.term == any_(bindparam(f"t_{name}", type_=ARRAY(Text)))), 0.0)
            return cast(total / bindparam(f"n_{name}", type_=Float(precision=53)), REAL)

        if terms and synonyms:
            rel = part("d") + part("s") / repeat
        elif terms:
            rel = part("d")
        else:
            rel = part("s") / repeat
        ranked = (
            select(t.article_id.label("aid"), rel.label("rel"))
            .where(t.term == any_(bindparam("t_all", type_=ARRAY(Text))))
            .group_by(t.article_id)
            .order_by(literal_column("rel").desc(), t.article_id)
            .subquery("ranked")
        )
        # LIMIT 1 (one article per id) keeps the subquery a per-row lookup: the planner does not
        # turn it into a join that reads every article to filter them first
        art = (
            select(ArticleRow.id, ArticleRow.helpful_count, ArticleRow.language)
            .where(ArticleRow.id == ranked.c.aid, *conds)
            .limit(1)
            .lateral("art")
        )
        return (
            select(art.c.id, art.c.helpful_count, art.c.language, ranked.c.rel)
            .select_from(ranked.join(art, true()))
            .order_by(ranked.c.rel.desc(), ranked.c.aid)
            .limit(limit)
        )

    @staticmethod
    def _filters(f: SearchFilters, now: datetime | None) -> list[Any]:
        conds: list[Any] = []
        if f.status:
            conds.append(ArticleRow.status == f.status)
        if f.language:
            conds.append(ArticleRow.language == f.language)
        if f.kind:
            conds.append(ArticleRow.kind == f.kind)
        if f.queue:
            conds.append(_json_contains(ArticleRow.queues, f.queue))
        if f.tag:
            conds.append(_json_contains(ArticleRow.tags, f.tag))
        if now is not None and f.status == "published":
            conds.append(or_(ArticleRow.valid_from.is_(None), ArticleRow.valid_from <= now))
            conds.append(or_(ArticleRow.valid_until.is_(None), ArticleRow.valid_until > now))
        return conds

    async def browse(self, filters: SearchFilters, *, now: datetime | None = None, limit: int = 50, offset: int = 0) -> list[ArticleRow]:
        async with self._sm() as s:
            stmt = (
                select(ArticleRow)
                .where(*self._filters(filters, now))
                .order_by(ArticleRow.helpful_count.desc(), ArticleRow.updated_at.desc(), ArticleRow.id)
                .limit(limit)
                .offset(offset)
            )
            return list((await s.scalars(stmt)).all())

    async def all_search_terms(self) -> set[str]:
        terms: set[str] = set()
        async with self._sm() as s:
            for title, body in (await s.execute(select(ArticleRow.search_title, ArticleRow.search_body))).all():
                terms.update((title or "").split())
                terms.update((body or "").split())
        return terms

    # ------------------------------------------------------------ articles
    async def get(self, article_id: int) -> ArticleRow | None:
        return await self._get(ArticleRow, article_id)

    async def by_slug(self, slug: str) -> ArticleRow | None:
        async with self._sm() as s:
            return (await s.scalars(select(ArticleRow).where(ArticleRow.slug == slug))).first()

    async def by_ids(self, ids: Iterable[int]) -> dict[int, ArticleRow]:
        ids = list(ids)
        if not ids:
            return {}
        async with self._sm() as s:
            return {r.id: r for r in (await s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids)))).all()}

    async def page_rows(self, ids: Iterable[int]) -> dict[int, Any]:
        """What a search result page shows (summary fields + body for the snippet), read as plain
        rows (no ORM objects to build, track and expire), by id."""
        ids = list(ids)
        if not ids:
            return {}
        async with self._sm() as s:
            return {r.id: r for r in (await s.execute(_PAGE_ROWS, {"ids": ids})).all()}

    async def linked(self, *, intents: Sequence[str] = (), queues: Sequence[str] = (), tags: Sequence[str] = (),
                     slugs: Sequence[str] = (), notices_since: datetime | None = None, now: datetime | None = None,
                     broad_limit: int | None = None) -> list[Any]:
        """Published, valid articles linked to any of the given intents/queues/tags/slugs (or recent
        notices), as plain rows of what the ranking reads (id, slug, language, intents, queues,
        tags, helpful_count, notice, published_at); the caller loads the few it shows.

        ``broad_limit``: a queue (or a tier/disposition tag) can link thousands of articles to
        every call. The articles linked *only* that way are then read as at most
        ``broad_limit`` per combination of (which queues/tags they carry, language), the most
        helpful first (then by id) — within one combination the ranking's score only grows with
        the helpful count, so the best ``broad_limit`` articles of the ranking are still among
        them (kb.rules.score; proved by tests/unit/kb/test_service.py)."""
        c = ArticleRow.__table__.c
        cols = (c.id, c.slug, c.language, c.intents, c.queues, c.tags, c.helpful_count, c.notice, c.published_at)
        valid = self._filters(SearchFilters(status="published"), now)
        specific: list[Any] = [_json_contains(ArticleRow.intents, i) for i in intents]
        if slugs:
            specific.append(ArticleRow.slug.in_(list(slugs)))
        if notices_since is not None:
            specific.append(and_(ArticleRow.notice.is_(True), ArticleRow.published_at >= notices_since))
        broad = [_json_contains(ArticleRow.queues, q) for q in queues] + [_json_contains(ArticleRow.tags, t) for t in tags]
        if not specific and not broad:
            return []
        async with self._sm() as s:
            if broad_limit is None or not broad:
                return list((await s.execute(select(*cols).where(or_(*specific, *broad), *valid))).all())
            rows = list((await s.execute(select(*cols).where(or_(*specific), *valid))).all()) if specific else []
            flags = [case((b, 1), else_=0) for b in broad]
            ranked = (
                select(*cols, func.row_number().over(partition_by=[*flags, c.language],
                                                     order_by=(c.helpful_count.desc(), c.id)).label("nth"))
                .where(or_(*broad), *([not_(func.coalesce(or_(*specific), False))] if specific else []), *valid)
                .subquery("broad")
            )
            best = select(*(ranked.c[col.name] for col in cols)).where(ranked.c.nth <= broad_limit)
            rows += (await s.execute(best)).all()
            return rows

    async def save(self, row: ArticleRow, version: ArticleVersionRow | None, notice: NoticeRow | None = None) -> ArticleRow:
        """Insert or update ``row`` with its new version (and notice), re-indexing it, in one transaction."""
        async with self._sm() as s:
            try:
                row = await s.merge(row)
                await s.flush()
                if version is not None:
                    version.article_id = row.id
                    s.add(version)
                if notice is not None:
                    notice.article_id = row.id
                    s.add(notice)
                await self._index(s, row)
                await s.commit()
            except IntegrityError as exc:
                await s.rollback()
                raise Duplicate(str(exc.orig)) from None
            await s.refresh(row)
            return row

    async def versions(self, article_id: int) -> list[ArticleVersionRow]:
        async with self._sm() as s:
            stmt = select(ArticleVersionRow).where(ArticleVersionRow.article_id == article_id).order_by(ArticleVersionRow.version)
            return list((await s.scalars(stmt)).all())

    async def version(self, article_id: int, version: int) -> ArticleVersionRow | None:
        async with self._sm() as s:
            stmt = select(ArticleVersionRow).where(ArticleVersionRow.article_id == article_id, ArticleVersionRow.version == version)
            return (await s.scalars(stmt)).first()

    async def list_articles(self, *, status: str | None = None, expired_before: datetime | None = None) -> list[ArticleRow]:
        async with self._sm() as s:
            stmt = select(ArticleRow).order_by(ArticleRow.id)
            if status:
                stmt = stmt.where(ArticleRow.status == status)
            if expired_before is not None:
                stmt = stmt.where(ArticleRow.valid_until.is_not(None), ArticleRow.valid_until <= expired_before)
            return list((await s.scalars(stmt)).all())

    async def count(self) -> int:
        async with self._sm() as s:
            return (await s.execute(select(func.count()).select_from(ArticleRow))).scalar_one()

    # ------------------------------------------------------------ proposals
    async def add_proposal(self, row: ProposalRow) -> ProposalRow:
        return await self._add(row)

    async def proposal(self, proposal_id: int) -> ProposalRow | None:
        return await self._get(ProposalRow, proposal_id)

    async def proposals(self, *, article_id: int | None = None, status: str | None = None) -> list[ProposalRow]:
        async with self._sm() as s:
            stmt = select(ProposalRow).order_by(ProposalRow.created_at, ProposalRow.id)
            if article_id is not None:
                stmt = stmt.where(ProposalRow.article_id == article_id)
            if status is not None:
                stmt = stmt.where(ProposalRow.status == status)
            return list((await s.scalars(stmt)).all())

    async def decide_proposal(self, proposal_id: int, status: str, by: str, at: datetime) -> bool:
        """Close an open proposal; False if it was no longer open (decided concurrently)."""
        async with self._sm() as s:
            res = await s.execute(
                update(ProposalRow).where(ProposalRow.id == proposal_id, ProposalRow.status == "open")
                .values(status=status, decided_by=by, decided_at=at)
            )
            await s.commit()
            return bool(res.rowcount)

    # ------------------------------------------------------------ attachments
    async def add_attachment(self, row: AttachmentRow) -> AttachmentRow:
        return await self._add(row)

    async def attachments(self, article_id: int) -> list[AttachmentRow]:
        async with self._sm() as s:
            stmt = select(AttachmentRow).where(AttachmentRow.article_id == article_id).order_by(AttachmentRow.id)
            return list((await s.scalars(stmt)).all())

    async def attachment(self, attachment_id: int) -> AttachmentRow | None:
        return await self._get(AttachmentRow, attachment_id)

    # ------------------------------------------------------------ synonyms
    async def synonyms(self) -> list[SynonymRow]:
        async with self._sm() as s:
            return list((await s.scalars(select(SynonymRow).order_by(SynonymRow.id))).all())

    async def add_synonyms(self, terms: list[str]) -> SynonymRow:
        return await self._add(SynonymRow(terms=terms))

    async def update_synonyms(self, group_id: int, terms: list[str]) -> SynonymRow | None:
        async with self._sm() as s:
            row = await s.get(SynonymRow, group_id)
            if row is None:
                return None
            row.terms = terms
            await s.commit()
            return row

    async def delete_synonyms(self, group_id: int) -> bool:
        async with self._sm() as s:
            res = await s.execute(delete(SynonymRow).where(SynonymRow.id == group_id))
            await s.commit()
            return bool(res.rowcount)

    # ------------------------------------------------------------ feedback, ticks
    async def add_feedback(self, row: FeedbackRow) -> bool:
        """Record it once per (call, article, kind); bumps the article's counter. False if already there."""
        counter = ArticleRow.helpful_count if row.kind == "helpful" else ArticleRow.used_count
        async with self._sm() as s:
            try:
                s.add(row)
                await s.flush()
            except IntegrityError:
                await s.rollback()
                return False
            await s.execute(update(ArticleRow).where(ArticleRow.id == row.article_id).values({counter: counter + 1}))
            await s.commit()
            return True

    async def feedback_for_call(self, call_id: str) -> list[FeedbackRow]:
        async with self._sm() as s:
            stmt = select(FeedbackRow).where(FeedbackRow.call_id == call_id).order_by(FeedbackRow.id)
            return list((await s.scalars(stmt)).all())

    async def tick(self, row: ScriptTickRow) -> bool:
        async with self._sm() as s:
            try:
                s.add(row)
                await s.commit()
                return True
            except IntegrityError:
                await s.rollback()
                return False

    async def untick(self, call_id: str, article_id: int, step: str) -> bool:
        async with self._sm() as s:
            res = await s.execute(
                delete(ScriptTickRow).where(
                    ScriptTickRow.call_id == call_id, ScriptTickRow.article_id == article_id, ScriptTickRow.step == step
                )
            )
            await s.commit()
            return bool(res.rowcount)

    async def ticks(self, call_id: str) -> list[ScriptTickRow]:
        async with self._sm() as s:
            stmt = select(ScriptTickRow).where(ScriptTickRow.call_id == call_id).order_by(ScriptTickRow.ticked_at, ScriptTickRow.id)
            return list((await s.scalars(stmt)).all())

    # ------------------------------------------------------------ notices
    async def notices(self, *, since: datetime | None = None) -> list[NoticeRow]:
        async with self._sm() as s:
            stmt = select(NoticeRow).order_by(NoticeRow.created_at.desc(), NoticeRow.id.desc())
            if since is not None:
                stmt = stmt.where(NoticeRow.created_at >= since)
            return list((await s.scalars(stmt)).all())

    async def notice(self, notice_id: int) -> NoticeRow | None:
        return await self._get(NoticeRow, notice_id)

    async def acknowledgements(self, notice_ids: Sequence[int]) -> list[AcknowledgementRow]:
        if not notice_ids:
            return []
        async with self._sm() as s:
            stmt = select(AcknowledgementRow).where(AcknowledgementRow.notice_id.in_(list(notice_ids)))
            return list((await s.scalars(stmt)).all())

    async def acknowledge(self, notice_id: int, agent_id: str) -> AcknowledgementRow:
        """Record the acknowledgement once; the first one stands (also against a concurrent one)."""
        mine = select(AcknowledgementRow).where(AcknowledgementRow.notice_id == notice_id, AcknowledgementRow.agent_id == agent_id)
        async with self._sm() as s:
            existing = (await s.scalars(mine)).first()
            if existing is not None:
                return existing
            row = AcknowledgementRow(notice_id=notice_id, agent_id=agent_id)
            s.add(row)
            try:
                await s.commit()
            except IntegrityError:
                await s.rollback()
                return (await s.scalars(mine)).one()
            await s.refresh(row)
            return row

    # ------------------------------------------------------------ reports
    async def usage(self) -> list[ArticleRow]:
        async with self._sm() as s:
            stmt = select(ArticleRow).order_by(ArticleRow.helpful_count.desc(), ArticleRow.used_count.desc(), ArticleRow.id)
            return list((await s.scalars(stmt)).all())

    async def gaps(self, *, since: datetime | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Ended calls with a disposition and no article marked helpful (cti_calls × kb_feedback)."""
        from cti.models import CallRow

        helpful = select(FeedbackRow.call_id).where(FeedbackRow.kind == "helpful")
        stmt: Select[Any] = (
            select(CallRow.id, CallRow.queue, CallRow.disposition, CallRow.agent_id, CallRow.started_at, CallRow.ivr_context)
            .where(CallRow.disposition.is_not(None), CallRow.disposition != "", CallRow.id.not_in(helpful))
            .order_by(CallRow.started_at.desc())
            .limit(limit)
        )
        if since is not None:
            stmt = stmt.where(CallRow.started_at >= since)
        async with self._sm() as s:
            rows = (await s.execute(stmt)).all()
        out = []
        for cid, queue, disposition, agent_id, started, ivr in rows:
            agent_vars = (ivr or {}).get("agent") if isinstance(ivr, dict) else None
            out.append(
                {
                    "call_id": cid,
                    "queue": queue,
                    "disposition": disposition,
                    "agent_id": agent_id,
                    "started_at": started.isoformat() if started else None,
                    "intent": (agent_vars or {}).get("intent") if isinstance(agent_vars, dict) else None,
                }
            )
        return out

    async def calls_with_disposition(self, *, since: datetime | None = None) -> int:
        from cti.models import CallRow

        stmt = select(func.count()).select_from(CallRow).where(CallRow.disposition.is_not(None), CallRow.disposition != "")
        if since is not None:
            stmt = stmt.where(CallRow.started_at >= since)
        async with self._sm() as s:
            return (await s.execute(stmt)).scalar_one()


class Duplicate(Exception):
    pass
