"""kb: per-term ranks for PostgreSQL search (issue 17)

``kb_search_terms``: one row per (article, lexeme of its stored ``search_vector``) with the
lexeme's own ``ts_rank``, and a covering index (term, article_id) INCLUDE (score). The
``ts_rank`` of an OR query is the sum of its terms' own ranks over the number of terms, so
the search ranks from the index alone instead of evaluating the vector of every matching
article (a seq scan of the wide ``kb_articles`` rows). Written by the repository with the
vector; back-filled here for the existing rows. On SQLite the table stays empty.

Revision ID: 0023
Revises: 0022
"""

from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

# a copy of kb.models.SEARCH_TERMS_SQL as of this revision (a migration does not import app code)
_TERMS = (
    "INSERT INTO kb_search_terms (article_id, term, score) "
    "SELECT a.id, u.lexeme, ts_rank(a.search_vector, ("
    + "''''"
    + r" || replace(replace(u.lexeme, '\', '\\'), '''', '''''') || "
    + "''''"
    + ")::tsquery) FROM kb_articles AS a CROSS JOIN LATERAL unnest(a.search_vector) AS u "
)


def upgrade() -> None:
    op.create_table(
        'kb_search_terms',
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('term', sa.Text(), nullable=False),
        sa.Column('score', sa.REAL(), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], name=op.f('fk_kb_search_terms_article_id_kb_articles'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('article_id', 'term', name=op.f('pk_kb_search_terms')),
    )
    with op.batch_alter_table('kb_search_terms', schema=None) as batch_op:
        batch_op.create_index('ix_kb_search_terms_term', ['term', 'article_id'], unique=False, postgresql_include=['score'])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_TERMS + "WHERE a.search_vector IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('kb_search_terms', schema=None) as batch_op:
        batch_op.drop_index('ix_kb_search_terms_term')
    op.drop_table('kb_search_terms')
