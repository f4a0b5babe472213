"""cti: the Asterisk server a stored call lived on (issue 19, several named Asterisk servers)

Revision ID: 0022
Revises: 0019
"""

from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cti_calls') as batch:
        batch.add_column(sa.Column('server', sa.String(length=40), nullable=True))
        batch.create_index('ix_cti_calls_server', ['server'])


def downgrade() -> None:
    with op.batch_alter_table('cti_calls') as batch:
        batch.drop_index('ix_cti_calls_server')
        batch.drop_column('server')
