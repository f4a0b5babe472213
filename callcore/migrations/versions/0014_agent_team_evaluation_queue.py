"""security (issue 11): an agent's team (supervisors' team scopes), an evaluation's queue (QA
users' queue scopes), and the login throttle shared by every instance

Revision ID: 0014
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'auth_login_throttle',
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('failures', sa.JSON(), nullable=False),
        sa.Column('locked_until', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'key'),
    )
    with op.batch_alter_table('auth_login_throttle') as batch:
        batch.create_index('ix_auth_login_throttle_updated_at', ['updated_at'])
    with op.batch_alter_table('cti_agents') as batch:
        batch.add_column(sa.Column('team', sa.String(length=64), nullable=True))
    with op.batch_alter_table('qa_evaluations') as batch:
        batch.add_column(sa.Column('queue', sa.String(length=80), nullable=True))
        batch.create_index('ix_qa_evaluations_queue', ['queue'])
    # evaluations made before: the queue of their call (recordings and QA share the call id)
    op.execute(
        "UPDATE qa_evaluations SET queue = (SELECT cti_calls.queue FROM cti_calls WHERE cti_calls.id = qa_evaluations.call_id)"
    )


def downgrade() -> None:
    op.drop_table('auth_login_throttle')
    with op.batch_alter_table('qa_evaluations') as batch:
        batch.drop_index('ix_qa_evaluations_queue')
        batch.drop_column('queue')
    with op.batch_alter_table('cti_agents') as batch:
        batch.drop_column('team')
