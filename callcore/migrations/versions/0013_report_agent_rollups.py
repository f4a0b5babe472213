"""reports: agent day rollups (issue 16, the reports benchmark of issue 18)

Revision ID: 0013
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_agent_rollups',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('interval_start', sa.Float(), nullable=False),
        sa.Column('agent_id', sa.String(length=64), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('interval_start', 'agent_id', name='agent_day'),
    )
    op.create_index('ix_report_agent_rollups_interval_start', 'report_agent_rollups', ['interval_start'])


def downgrade() -> None:
    op.drop_index('ix_report_agent_rollups_interval_start', table_name='report_agent_rollups')
    op.drop_table('report_agent_rollups')
