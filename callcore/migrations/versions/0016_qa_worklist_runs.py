"""qa: scheduled work-list builds, one row per period (issue 15)

Revision ID: 0016
Revises: 0014
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'qa_worklist_runs',
        sa.Column('run_key', sa.String(length=40), nullable=False),
        sa.Column('picked', sa.Integer(), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('run_key'),
    )


def downgrade() -> None:
    op.drop_table('qa_worklist_runs')
