"""recording: the Asterisk server of each recording (issue 19, several named Asterisk servers)

``recording_recordings.server`` (the call's ``server``, as ``cti_calls.server`` of migration 0022),
filled by the recording service when the row is created and when the call ends; the index
``(server, started_at, id)`` makes ``GET /api/recordings?server=ast2`` (newest first) one ordered
index range, like the other equality filters (migration 0017). Rows written before this
migration take the server of their stored call, where it has one.

Revision ID: 0025
Revises: 0024
"""

from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recording_recordings') as batch:
        batch.add_column(sa.Column('server', sa.String(length=40), nullable=True))
        batch.create_index('ix_recording_recordings_server_started', ['server', 'started_at', 'id'])
    op.execute(
        "UPDATE recording_recordings SET server = (SELECT c.server FROM cti_calls c"
        " WHERE c.id = recording_recordings.call_id) WHERE server IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('recording_recordings') as batch:
        batch.drop_index('ix_recording_recordings_server_started')
        batch.drop_column('server')
