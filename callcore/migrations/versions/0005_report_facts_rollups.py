"""reports: append-only fact store and 15-minute rollups

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 04:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_facts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('anchor_at', sa.Float(), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=True),
        sa.Column('queue', sa.String(length=80), nullable=True),
        sa.Column('agent_id', sa.String(length=64), nullable=True),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_facts')),
        sa.UniqueConstraint('key', name=op.f('uq_report_facts_key')),
    )
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_facts_anchor_at'), ['anchor_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_facts_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_facts_kind'), ['kind'], unique=False)
    op.create_table(
        'report_rollups',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('span', sa.String(length=8), nullable=False),
        sa.Column('interval_start', sa.Float(), nullable=False),
        sa.Column('queue', sa.String(length=80), nullable=False),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_rollups')),
        sa.UniqueConstraint('span', 'interval_start', 'queue', name='span_interval_queue'),
    )
    with op.batch_alter_table('report_rollups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_rollups_interval_start'), ['interval_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('report_rollups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_rollups_interval_start'))
    op.drop_table('report_rollups')
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_facts_kind'))
        batch_op.drop_index(batch_op.f('ix_report_facts_call_id'))
        batch_op.drop_index(batch_op.f('ix_report_facts_anchor_at'))
    op.drop_table('report_facts')
