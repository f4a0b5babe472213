"""kb: stored tsvector column for PostgreSQL full-text search (issue 17)

``kb_articles.search_vector``: on PostgreSQL the ``tsvector`` of the analysed terms
(title and tags weight A, body B, the ``simple`` configuration), written by the
repository on every save, with a GIN index; back-filled here for the existing rows.
It replaces the expression index ``ix_kb_articles_fulltext`` that callcore created at
start-up before (the search computed ``to_tsvector`` per candidate row per query).
On SQLite the column is TEXT and stays NULL (SQLite searches its FTS5 table ``kb_fts``).

Revision ID: 0018
Revises: 0017
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# a copy of kb.models.SEARCH_VECTOR_SQL as of this revision (a migration does not import app code)
_VECTOR = (
    "setweight(to_tsvector('simple', coalesce(search_title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(search_body, '')), 'B')"
)


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_vector', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True))
    if pg:
        op.execute(f"UPDATE kb_articles SET search_vector = {_VECTOR}")
        op.execute("DROP INDEX IF EXISTS ix_kb_articles_fulltext")
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.create_index('ix_kb_articles_search_vector', ['search_vector'], unique=False, postgresql_using='gin')


def downgrade() -> None:
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.drop_index('ix_kb_articles_search_vector', postgresql_using='gin')
        batch_op.drop_column('search_vector')
