"""outbox: durable webhook deliveries (issue 12)

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox_webhook_deliveries',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('hook_url', sa.String(length=500), nullable=False),
        sa.Column('event', sa.String(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.Float(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('delivered_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('outbox_webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_webhook_deliveries_status_next', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_webhook_deliveries_status_next')
    op.drop_table('outbox_webhook_deliveries')
