"""recording: the holds of a recorded call on the file's timeline (issue 15, the QA player's markers)

Revision ID: 0021
Revises: 0018
"""

from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recording_recordings') as batch:
        batch.add_column(sa.Column('hold_spans', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recording_recordings') as batch:
        batch.drop_column('hold_spans')
