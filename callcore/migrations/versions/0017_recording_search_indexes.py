"""recording search at a million rows: (filter, started_at, id) indexes (issues 13 and 18)

Each equality filter of ``GET /api/recordings`` (caller, called, direction, disposition, muted,
QA sample) gets a composite index ending in the sort key, so "filter + newest first" is one
ordered index range that stops at the page size (benchmarks/recording_search.py measures it on
1,000,000 rows). They replace the single-column indexes of 0004, which they cover.

Revision ID: 0017
Revises: 0016
"""

from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

OLD = ('caller_num', 'called', 'direction', 'disposition', 'qa_sample')
NEW = {
    'ix_recording_recordings_caller_started': ['caller_num', 'started_at', 'id'],
    'ix_recording_recordings_called_started': ['called', 'started_at', 'id'],
    'ix_recording_recordings_direction_started': ['direction', 'started_at', 'id'],
    'ix_recording_recordings_disposition_started': ['disposition', 'started_at', 'id'],
    'ix_recording_recordings_muted_started': ['muted', 'started_at', 'id'],
    'ix_recording_recordings_qa_started': ['qa_sample', 'started_at', 'id'],
}


def upgrade() -> None:
    with op.batch_alter_table('recording_recordings', schema=None) as batch_op:
        for name, cols in NEW.items():
            batch_op.create_index(name, cols, unique=False)
        for col in OLD:
            batch_op.drop_index(f'ix_recording_recordings_{col}')


def downgrade() -> None:
    with op.batch_alter_table('recording_recordings', schema=None) as batch_op:
        for col in OLD:
            batch_op.create_index(f'ix_recording_recordings_{col}', [col], unique=False)
        for name in NEW:
            batch_op.drop_index(name)
