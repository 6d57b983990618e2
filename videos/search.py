"""Finding jobs by the words of their prompts, titles and notes, through an index on both databases.

Each word of a search (split on whitespace, at most MAX_TERMS) must appear in the job's searchable
text (its prompt, title and note: `searchable_text_sql`), in any case, as a word or a part of one:
"light" finds "lighthouse", 猫咪 finds "一只猫咪在睡觉". A search that is exactly a provider id
also finds that job.

SQLite: an FTS5 table `videos_search` with the trigram tokenizer holds each job's searchable text
(see `searchable_text_sql`) under the job's id. Triggers on the jobs table keep it (migrations
0013 and 0018), so every write is covered: the ORM, bulk_create, imports, the admin, raw SQL. A
word of three characters or more is a phrase of its trigrams. A shorter word (猫咪, a lone 猫,
"4k") has no trigram of its own: it is found in the index's vocabulary (`videos_search_trigrams`)
as the start of a trigram, which is why each part of the text is stored with two spaces after it.
SQLite has no statistics on these tables, so each subquery is first asked whether it finds more
than FEW_MATCHES jobs: if not, they are fetched and sorted; if so, the gallery walks its own order,
newest first, keeping the jobs among the matches, and soon has its page.

PostgreSQL: two GIN indexes over the searchable text (migration 0018), expressions of the row, so
nothing has to be kept in sync. pg_trgm's index answers `UPPER(text) LIKE '%word%'` for a word
with three ASCII letters or digits in a row, in any locale. pg_trgm cannot narrow other words:
short ones have no trigram, and it drops Chinese characters when the database's locale does not know
them as letters. For those an index of the text's characters finds the texts holding all of the
word's characters, and the LIKE keeps those where they stand together.
"""

import re

from django.contrib.postgres.fields import ArrayField
from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Func, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.lookups import IContains, In, PostgresOperatorLookup

from muxweb.text import without_control_characters

MAX_TERMS = 8
# The columns of a job that search reads, in the order of its searchable text.
SEARCHED_COLUMNS = ("prompt", "title", "note")


def searchable_text_sql(row: str = "", columns: tuple[str, ...] | None = None) -> str:
    """The text a job is found by, as SQL over `row` (the jobs table, or `new` in a trigger; none
    in an index's expression): its prompt, title and note, each followed by two spaces so that
    its last characters start a trigram too, and no word runs from one into the next.

    Changing it takes a migration that recreates SQLite's triggers and refills its table (as
    `repair_sqlite_index` does) and rebuilds PostgreSQL's indexes over the new text (as 0018
    does), and the same change to `Searchable`."""
    prefix = f"{row}." if row else ""
    return " || ".join(f"{prefix}{column} || '  '" for column in columns or SEARCHED_COLUMNS)


class Searchable(Func):
    """`searchable_text_sql` as an ORM expression (the jobs' table under the query's alias), the
    exact expression of PostgreSQL's indexes so that the planner uses them."""

    template = "(%(expressions)s || '  ')"
    arg_joiner = " || '  ' || "
    output_field = models.TextField()

    def __init__(self) -> None:
        super().__init__(*(F(column) for column in SEARCHED_COLUMNS))


def search_terms(text: str) -> list[str]:
    """The words of a search, each once, in the order typed."""
    terms = without_control_characters(text).split()
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def matching_text(jobs: QuerySet, text: str) -> QuerySet:
    """The jobs whose searchable text holds every word of `text`, and the job whose provider id
    it is.

    Asks the database a question or two now, each answered by an index: whether a provider id is
    `text` and, on SQLite, how many jobs each part of the search finds."""
    terms = search_terms(text)
    if not terms:
        return jobs
    if connections[jobs.db].vendor == "postgresql":
        found = _postgresql_condition(terms)
    else:
        found = _sqlite_condition(jobs.db, terms)
    if len(terms) == 1:
        # Looked up first rather than OR-ed into the query: PostgreSQL would then check each
        # candidate row against the whole OR, recomputing the indexed expressions as it goes.
        with_id = list(
            jobs.model._default_manager.using(jobs.db)
            .filter(upstream_id=terms[0])
            .values_list("pk", flat=True)[:1]
        )
        if with_id:
            found |= Q(pk=with_id[0])
    return jobs.filter(found)


# Up to this many matches SQLite fetches them by id and sorts them. Past it, the gallery walks its
# own order, newest first, checking each job, and stops once its page is full.
FEW_MATCHES = 1000


class _Unindexed(Func):
    """SQLite's `+column`: no index looks the value up, so `+id IN (matches)` is checked job by
    job along another index, here the gallery's order."""

    template = "+%(expressions)s"


def _sqlite_condition(db: str, terms: list[str]) -> Q:
    """The longer words are one MATCH, a phrase each. A shorter word is looked up in the
    vocabulary, as the start of a trigram; if more than FEW_MATCHES jobs hold it, their prompts
    are read instead: the vocabulary lists every place the word is, which costs more to collect
    than reading prompts until the page is full (a lone "a" is in nearly all of them)."""
    found = Q()
    phrases = ['"' + term.replace('"', '""') + '"' for term in terms if len(term) >= 3]
    if phrases:
        matching = RawSQL(
            "SELECT rowid FROM videos_search WHERE videos_search MATCH %s", [" ".join(phrases)]
        )
        pk = F("pk") if _few(db, matching) else _Unindexed(F("pk"))
        found &= Q(In(pk, matching))
    for term in terms:
        if len(term) < 3:
            # The tokenizer folds case the same way for the letters that have one.
            start = term.lower()
            starting = RawSQL(
                "SELECT DISTINCT doc FROM videos_search_trigrams WHERE term >= %s AND term < %s",
                [start, start + "\U0010ffff"],
            )
            found &= Q(In(F("pk"), starting)) if _few(db, starting) else _holds_text(term)
    return found


def _holds_text(term: str) -> Q:
    """Whether the prompt, the title or the note holds `term`, in any case, read row by row."""
    found = Q()
    for column in SEARCHED_COLUMNS:
        found |= Q(**{f"{column}__icontains": term})
    return found


def _few(db: str, subquery: RawSQL) -> bool:
    """Whether `subquery` finds at most FEW_MATCHES jobs. SQLite has no statistics on the
    search tables to tell how best to use them, so it is asked, looking no further."""
    with connections[db].cursor() as cursor:
        count = f"SELECT count(*) FROM ({subquery.sql} LIMIT %s)"  # noqa: S608  (constant SQL)
        cursor.execute(count, [*subquery.params, FEW_MATCHES + 1])
        return cursor.fetchone()[0] <= FEW_MATCHES


# pg_trgm makes trigrams of ASCII letters and digits in every locale.
_TRIGRAM_WORD = re.compile(r"[0-9A-Za-z]{3}")


class _Characters(Func):
    """PostgreSQL: the upper-cased text's characters, the expression of the characters index. A
    function of ours (migration 0013) so that the planner knows it is no free filter: with the
    bare builtins it would rather build the array for every row than read the index."""

    function = "videos_search_characters"
    output_field = ArrayField(models.TextField())


class _Holds(PostgresOperatorLookup):
    postgres_operator = "@>"


def _postgresql_condition(terms: list[str]) -> Q:
    found = Q()
    for term in terms:
        found &= Q(IContains(Searchable(), term))
        if not _TRIGRAM_WORD.search(term):
            found &= Q(_Holds(_Characters(Searchable()), _Characters(Value(term))))
    return found


def sqlite_triggers(columns: tuple[str, ...] = SEARCHED_COLUMNS) -> dict[str, str]:
    """The triggers that keep SQLite's search table, as migration 0018 made them, over `columns`
    (fewer while a migration is undone to before the jobs had them)."""
    text = searchable_text_sql("new", columns)
    changed = " OR ".join(f"new.{column} IS NOT old.{column}" for column in columns)
    return {
        "videos_search_insert": f"""
            AFTER INSERT ON videos_videojob BEGIN
                INSERT OR REPLACE INTO videos_search (rowid, searchable) VALUES (new.id, {text});
            END""",  # noqa: S608  (constant SQL)
        "videos_search_update": f"""
            AFTER UPDATE OF {", ".join(columns)} ON videos_videojob WHEN {changed} BEGIN
                INSERT OR REPLACE INTO videos_search (rowid, searchable) VALUES (new.id, {text});
            END""",  # noqa: S608  (constant SQL)
        "videos_search_delete": """
            AFTER DELETE ON videos_videojob BEGIN
                DELETE FROM videos_search WHERE rowid = old.id;
            END""",
    }


def repair_sqlite_index(connection: BaseDatabaseWrapper) -> bool:
    """Put back SQLite's search triggers if any is missing, and refill the search table; True if
    it had to. Django changes most fields on SQLite by copying the table into a new one and
    dropping the old, which drops its triggers with it: jobs written after that would never be
    found. Run after every migrate (videos.apps), and by migrations undone (0015)."""
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'videos_videojob'"
        )
        present = {name for (name,) in cursor.fetchall()}
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'videos_search'")
        if cursor.fetchone() is None or present >= set(sqlite_triggers()):
            return False
        table = connection.introspection.get_table_description(cursor, "videos_videojob")
        have = {column.name for column in table}
        columns = tuple(column for column in SEARCHED_COLUMNS if column in have)
        with transaction.atomic(using=connection.alias):
            for name, definition in sqlite_triggers(columns).items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                cursor.execute(f"CREATE TRIGGER {name} {definition}")
            cursor.execute("DELETE FROM videos_search")
            searchable = searchable_text_sql("videos_videojob", columns)
            cursor.execute(
                "INSERT INTO videos_search (rowid, searchable) "  # noqa: S608  (constant SQL)
                f"SELECT id, {searchable} FROM videos_videojob"
            )
    return True
