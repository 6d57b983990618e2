"""Search finds titles and notes too: each job's searchable text becomes its prompt, title and note
(see videos.search.searchable_text_sql).

SQLite: the triggers write the new text, and the update trigger fires when any of the three
changes; the search table is refilled from the jobs already there. PostgreSQL: both GIN indexes
are rebuilt over the new text. The SQL is this migration's own copy of videos.search's definitions
as they were when it was written; undoing it puts back those of 0013.
"""

from django.db import migrations

OLD_TEXT = "{row}prompt || '  '"
NEW_TEXT = "{row}prompt || '  ' || {row}title || '  ' || {row}note || '  '"


def sqlite_statements(text: str, updated: str) -> list[str]:
    new = text.format(row="new.")
    return [
        "DROP TRIGGER IF EXISTS videos_search_insert",
        "DROP TRIGGER IF EXISTS videos_search_update",
        f"""CREATE TRIGGER videos_search_insert
            AFTER INSERT ON videos_videojob BEGIN
                INSERT OR REPLACE INTO videos_search (rowid, searchable)
                VALUES (new.id, {new});
            END""",
        f"""CREATE TRIGGER videos_search_update
            {updated} BEGIN
                INSERT OR REPLACE INTO videos_search (rowid, searchable)
                VALUES (new.id, {new});
            END""",
        "DELETE FROM videos_search",
        f"""INSERT INTO videos_search (rowid, searchable)
            SELECT id, {text.format(row="videos_videojob.")} FROM videos_videojob""",
    ]


def postgresql_statements(text: str) -> list[str]:
    bare = text.format(row="")
    return [
        "DROP INDEX IF EXISTS videojob_search_trigrams",
        "DROP INDEX IF EXISTS videojob_search_characters",
        # WHERE UPPER((prompt || '  ' || title ...)) LIKE UPPER('%lantern%')
        f"""CREATE INDEX videojob_search_trigrams ON videos_videojob
            USING gin (UPPER(({bare})) gin_trgm_ops) WITH (fastupdate = off)""",
        # WHERE videos_search_characters((prompt || ...)) @> videos_search_characters('猫咪')
        f"""CREATE INDEX videojob_search_characters ON videos_videojob
            USING gin (videos_search_characters(({bare}))) WITH (fastupdate = off)""",
    ]


FORWARD = {
    "sqlite": sqlite_statements(
        NEW_TEXT,
        "AFTER UPDATE OF prompt, title, note ON videos_videojob "
        "WHEN new.prompt IS NOT old.prompt OR new.title IS NOT old.title "
        "OR new.note IS NOT old.note",
    ),
    "postgresql": postgresql_statements(NEW_TEXT),
}
BACKWARD = {
    "sqlite": sqlite_statements(
        OLD_TEXT,
        "AFTER UPDATE OF prompt ON videos_videojob WHEN new.prompt IS NOT old.prompt",
    ),
    "postgresql": [
        "DROP INDEX IF EXISTS videojob_search_trigrams",
        "DROP INDEX IF EXISTS videojob_search_characters",
        """CREATE INDEX videojob_search_trigrams ON videos_videojob
            USING gin (UPPER(prompt) gin_trgm_ops) WITH (fastupdate = off)""",
        """CREATE INDEX videojob_search_characters ON videos_videojob
            USING gin (videos_search_characters(prompt)) WITH (fastupdate = off)""",
    ],
}


def forward(apps, schema_editor) -> None:
    for statement in FORWARD.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def backward(apps, schema_editor) -> None:
    for statement in BACKWARD.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0017_review_fields"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
