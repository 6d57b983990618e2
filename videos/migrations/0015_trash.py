"""The trash: when a job was moved there and by whom, and the index of the trash page."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def put_back_search_triggers(apps, schema_editor) -> None:
    """Undoing this on SQLite copies the jobs table to drop trashed_by, and its search triggers
    go with the old table: put them back, so that undoing 0013 finds what it drops."""
    from videos.search import repair_sqlite_index

    repair_sqlite_index(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0014_unsaved_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # First, so that undoing runs it last.
        migrations.RunPython(migrations.RunPython.noop, put_back_search_triggers),
        migrations.AddField(
            model_name="videojob",
            name="trashed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="moved to the trash"),
        ),
        migrations.AddField(
            model_name="videojob",
            name="trashed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="moved to the trash by",
            ),
        ),
        migrations.AddIndex(
            model_name="videojob",
            index=models.Index(
                condition=models.Q(("trashed_at__isnull", False)),
                fields=["trashed_at", "id"],
                name="videojob_trashed",
            ),
        ),
    ]
