"""Search: an index of the jobs' prompts on each database (see videos.search).

SQLite: an FTS5 table with the trigram tokenizer, a view of its vocabulary, and triggers on the
jobs table that keep it; the jobs already there are copied in. PostgreSQL: pg_trgm and two GIN
indexes over the prompt (one through a function of ours), built from the rows already there. The
SQL is this migration's own copy of videos.search's definitions as they were when it was written.
"""

from django.db import migrations

CREATE = {
    "sqlite": [
        # WHERE videos_search MATCH '"lantern" "dragon"': words of three characters or more.
        "CREATE VIRTUAL TABLE videos_search USING fts5(searchable, tokenize = 'trigram')",
        # WHERE term >= '猫咪' AND term < '猫咪\U0010ffff': shorter words, starting a trigram.
        "CREATE VIRTUAL TABLE videos_search_trigrams USING fts5vocab(videos_search, instance)",
        """CREATE TRIGGER videos_search_insert
            AFTER INSERT ON videos_videojob BEGIN
                INSERT OR REPLACE INTO videos_search (rowid, searchable)
                VALUES (new.id, new.prompt || '  ');
            END""",
        """CREATE TRIGGER videos_search_update
            AFTER UPDATE OF prompt ON videos_videojob WHEN new.prompt IS NOT old.prompt BEGIN
                INSERT OR REPLACE INTO videos_search (rowid, searchable)
                VALUES (new.id, new.prompt || '  ');
            END""",
        """CREATE TRIGGER videos_search_delete
            AFTER DELETE ON videos_videojob BEGIN
                DELETE FROM videos_search WHERE rowid = old.id;
            END""",
        """INSERT INTO videos_search (rowid, searchable)
            SELECT id, videos_videojob.prompt || '  ' FROM videos_videojob""",
    ],
    "postgresql": [
        # A trusted extension: the database's owner may create it (PostgreSQL 13 and later). Left
        # in place when this is undone: it may have been there before, or serve others.
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        # Both GIN indexes take a job's entries as it is written (fastupdate off): about 0.2 ms
        # more per job, and no search reads through a list of pending entries (up to 4 MB, kept
        # until the next vacuum) before it reads the index.
        # WHERE UPPER(prompt) LIKE UPPER('%lantern%'): words with 3 ASCII letters or digits in a row.
        """CREATE INDEX videojob_search_trigrams ON videos_videojob
            USING gin (UPPER(prompt) gin_trgm_ops) WITH (fastupdate = off)""",
        # The prompt's characters, upper-cased. A function rather than the bare expression so that
        # the planner knows its cost: an array built per row is no cheap filter to scan with.
        """CREATE OR REPLACE FUNCTION videos_search_characters(text) RETURNS text[]
            LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 100
            AS 'BEGIN RETURN string_to_array(upper($1), NULL); END'""",
        # WHERE videos_search_characters(prompt) @> videos_search_characters('猫咪'): other words
        # (short ones, Chinese); the LIKE above then keeps those with the characters together.
        """CREATE INDEX videojob_search_characters ON videos_videojob
            USING gin (videos_search_characters(prompt)) WITH (fastupdate = off)""",
    ],
}
DROP = {
    "sqlite": [
        "DROP TRIGGER videos_search_insert",
        "DROP TRIGGER videos_search_update",
        "DROP TRIGGER videos_search_delete",
        "DROP TABLE videos_search_trigrams",
        "DROP TABLE videos_search",
    ],
    "postgresql": [
        "DROP INDEX videojob_search_trigrams",
        "DROP INDEX videojob_search_characters",
        "DROP FUNCTION videos_search_characters(text)",
    ],
}


def create(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor == "sqlite" and connection.Database.sqlite_version_info < (3, 34):
        raise RuntimeError("Search needs SQLite 3.34 or later, for FTS5's trigram tokenizer.")
    for statement in CREATE.get(connection.vendor, []):
        schema_editor.execute(statement, params=None)


def drop(apps, schema_editor) -> None:
    for statement in DROP.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0012_gallery_indexes"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
