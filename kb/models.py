"""Knowledge-base tables (portable types only; every table name starts with ``kb_``).

Full text is built over the analysed columns ``search_title`` / ``search_body``:

* PostgreSQL: the stored ``tsvector`` column ``search_vector`` (:data:`SEARCH_VECTOR_SQL`,
  written by the repository in the transaction that saves the article, back-filled at
  start-up for rows written around it) with the GIN index ``ix_kb_articles_search_vector``
  (migration 0018). On SQLite the column is a TEXT column that stays NULL.
* PostgreSQL, for ranking: ``kb_search_terms`` (migration 0023), one row per (article,
  lexeme of its stored vector) with that lexeme's own ``ts_rank`` (:data:`SEARCH_TERMS_SQL`),
  written with the vector. ``ts_rank`` of an OR query (normalisation 0) is the sum of its
  terms' own ranks / the number of terms, so the search ranks from these narrow rows
  (kb.repository) instead of evaluating the vector of every matching article. On SQLite
  the table stays empty.
* SQLite: the FTS5 table ``kb_fts``, derived data the repository creates on start and
  rebuilds from ``search_title`` / ``search_body`` when it is missing (not declared here:
  SQLAlchemy has no type for a virtual table).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, REAL, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base, utcnow

STATUSES = ("draft", "review", "published", "archived")
KINDS = ("article", "script")
LANGUAGES = ("ko", "en")

#: PostgreSQL: the stored search vector of a ``kb_articles`` row, from its analysed terms (the
#: title and tags weigh A, the body B; ``simple`` does no stemming: Kiwi's analysis did)
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('simple', coalesce(search_title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(search_body, '')), 'B')"
)

#: PostgreSQL: the ``kb_search_terms`` rows of the articles ``a`` that a ``WHERE`` clause
#: appended to it picks: every lexeme of the stored vector with its own ``ts_rank`` (the rank
#: of the one-lexeme query; the lexeme quoted as ``tsquery`` input, so never re-parsed)
SEARCH_TERMS_SQL = (
    "INSERT INTO kb_search_terms (article_id, term, score) "
    "SELECT a.id, u.lexeme, ts_rank(a.search_vector, ("
    + "''''"  # tsquery input: the lexeme in single quotes, with ' and \ escaped
    + r" || replace(replace(u.lexeme, '\', '\\'), '''', '''''') || "
    + "''''"
    + ")::tsquery) FROM kb_articles AS a CROSS JOIN LATERAL unnest(a.search_vector) AS u "
)


class ArticleRow(Base):
    __tablename__ = "kb_articles"
    # GIN over the stored vector on PostgreSQL; on SQLite a plain index over a column that stays NULL
    __table_args__ = (Index("ix_kb_articles_search_vector", "search_vector", postgresql_using="gin"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="article")  # article | script
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)  # script steps [{id, title, text}]
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    language: Mapped[str] = mapped_column(String(8), default="ko")
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    intents: Mapped[list[str]] = mapped_column(JSON, default=list)
    notice: Mapped[bool] = mapped_column(Boolean, default=False)  # also shown on the notice board
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # analysed terms (kb.analysis), what the full-text index is built over
    search_title: Mapped[str] = mapped_column(Text, default="")
    search_body: Mapped[str] = mapped_column(Text, default="")
    # PostgreSQL: SEARCH_VECTOR_SQL of the two above, stored (the repository writes it); SQLite: NULL
    search_vector: Mapped[str | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"), nullable=True)
    # usage counters (denormalised from kb_feedback for ranking)
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)


class SearchTermRow(Base):
    """PostgreSQL: one lexeme of an article's stored search vector with its own ``ts_rank``
    (derived data, :data:`SEARCH_TERMS_SQL`, written by the repository with the vector); the
    search reads only the covering index (term, article → score). SQLite: stays empty."""

    __tablename__ = "kb_search_terms"
    __table_args__ = (Index("ix_kb_search_terms_term", "term", "article_id", postgresql_include=["score"]),)

    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True)
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    score: Mapped[float] = mapped_column(REAL)


class ArticleVersionRow(Base):
    """Every edit is a version: the full content as it was saved, so diff and rollback are exact."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version", name="article_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # title, body, steps, tags, links, validity, …
    status: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(64), nullable=True)
    comment: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AttachmentRow(Base):
    __tablename__ = "kb_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SynonymRow(Base):
    """One synonym group the team edits, e.g. ``["환불", "환급", "refund"]``."""

    __tablename__ = "kb_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    terms: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackRow(Base):
    """An agent marked an article as used / helpful on a call (once per kind per call)."""

    __tablename__ = "kb_feedback"
    __table_args__ = (UniqueConstraint("call_id", "article_id", "kind", name="call_article_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # used | helpful
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    suggested: Mapped[bool] = mapped_column(Boolean, default=False)  # it was in the pop's suggestions
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScriptTickRow(Base):
    """A script step ticked during a call (kept with the call id: the call record's script ticks)."""

    __tablename__ = "kb_script_ticks"
    __table_args__ = (UniqueConstraint("call_id", "article_id", "step", name="call_script_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ticked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NoticeRow(Base):
    """A new or changed article on the notice board (one per published version)."""

    __tablename__ = "kb_notices"
    __table_args__ = (UniqueConstraint("article_id", "version", name="notice_article_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    change: Mapped[str] = mapped_column(String(16))  # new | changed
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AcknowledgementRow(Base):
    __tablename__ = "kb_acknowledgements"
    __table_args__ = (UniqueConstraint("notice_id", "agent_id", name="notice_agent"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("kb_notices.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    acked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProposalRow(Base):
    """An agent's proposed change to a published article, applied only when a reviewer accepts it."""

    __tablename__ = "kb_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    base_version: Mapped[int] = mapped_column(Integer)  # the version the author saw
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | accepted | rejected
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
