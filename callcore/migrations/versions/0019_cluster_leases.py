"""scale-out: cluster leases, one row per leased duty (the AMI consumer of an endpoint) (issue 19)

Revision ID: 0019
Revises: 0021
"""

from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cluster_leases',
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=True),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('heartbeat_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('cluster_leases')
