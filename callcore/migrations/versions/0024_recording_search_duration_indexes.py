"""recording search at a million rows: duration filters and the duration sort (issue 18)

Two composite indexes for the slow server plans of benchmarks/recording_search.py:

* ``(started_at, id, duration)``: "newest first" with a duration filter (long calls of a month)
  walks the time order and checks the duration in the index entry — no heap fetch for each
  of the ~17,000 entries a page of the 0.3 % of calls over an hour skips;
* ``(duration, id, started_at)``: "longest first" within a day or a week walks the duration
  order and checks the time range in the index entry.

Revision ID: 0024
Revises: 0023
"""

from alembic import op


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

NEW = {
    'ix_recording_recordings_started_duration': ['started_at', 'id', 'duration'],
    'ix_recording_recordings_duration_started': ['duration', 'id', 'started_at'],
}


def upgrade() -> None:
    with op.batch_alter_table('recording_recordings', schema=None) as batch_op:
        for name, cols in NEW.items():
            batch_op.create_index(name, cols, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recording_recordings', schema=None) as batch_op:
        for name in NEW:
            batch_op.drop_index(name)
