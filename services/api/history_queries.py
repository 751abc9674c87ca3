"""Reads of the activity history and of the inbox: filtered, searched, keyset pages.

Pages go newest first and continue strictly after a position, the sort key
``(created_at, id)`` of a run or ``(received_at, id)`` of a message, so a page
costs the same however deep it is and rows that arrive meanwhile do not shift
it. Search is PostgreSQL full-text search over the ``search_document``
columns: a run's logs and error, and a message's body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from services.api import queries

Row = dict[str, Any]
Position = tuple[datetime, UUID]
"""Where a page starts: just after this sort key."""

RUN_COLUMNS = (
    "id",
    "job_id",
    "job_name",
    "trigger_kind",
    "origin",
    "attempt",
    "status",
    "exit_code",
    "started_at",
    "finished_at",
    "message_id",
    "created_at",
)

FEW_MESSAGES = 500
"""Up to this many messages matching a search, their runs are read by message id."""

_RUN_MATCHES = sql.SQL("r.search_document @@ websearch_to_tsquery('simple', %(q)s)")
_MESSAGE_MATCHES = sql.SQL("m.search_document @@ websearch_to_tsquery('simple', %(q)s)")


@dataclass(frozen=True)
class RunFilter:
    """Which runs of a project the activity history shows.

    Attributes:
        since: Runs created at or after this time.
        until: Runs created before this time.
        job: Only runs of the job with this name.
        statuses: Only runs with one of these statuses.
        trigger: Only runs whose trigger is of this kind.
        origin: Only runs that this asked for (a message, a re-run, …).
        search: Words that the run's logs or error, or its message's body,
            contain, in ``websearch_to_tsquery`` syntax.
    """

    since: datetime
    until: datetime
    job: str | None = None
    statuses: list[str] | None = None
    trigger: str | None = None
    origin: str | None = None
    search: str | None = None


@dataclass(frozen=True)
class MessageFilter:
    """Which messages of a project's inbox to show.

    Attributes:
        since: Messages received at or after this time.
        until: Messages received before this time.
        search: Words that the message's body contains.
    """

    since: datetime
    until: datetime
    search: str | None = None


def search_terms(q: str | None) -> str | None:
    """The search a ``q`` parameter asks for; None when it is absent or blank.

    In a plain list of words (no quotes, ``or`` or ``-``), a word given again
    is dropped: the search means the same, and PostgreSQL would plan a common
    word repeated as a rare one, reading every match across the history.
    """
    if q is None or not q.strip():
        return None
    q = q.strip()
    words = q.split()
    if '"' in q or any(w.startswith("-") or w.casefold() == "or" for w in words):
        return q
    kept: list[str] = []
    for word in words:
        if word.casefold() not in {k.casefold() for k in kept}:
            kept.append(word)
    return q if len(kept) == len(words) else " ".join(kept)


def run_position(
    conn: Connection[Any], project_id: UUID, run_id: UUID
) -> Position | None:
    """The sort key of a run of the project, where the page after it starts."""
    row = conn.execute(
        "SELECT created_at, id FROM runs WHERE id = %s AND project_id = %s",
        (run_id, project_id),
    ).fetchone()
    return None if row is None else (row["created_at"], row["id"])


def message_position(
    conn: Connection[Any], project_id: UUID, message_id: UUID
) -> Position | None:
    """The sort key of a message of the project, where the page after it starts."""
    row = conn.execute(
        "SELECT received_at, id FROM messages WHERE id = %s AND project_id = %s",
        (message_id, project_id),
    ).fetchone()
    return None if row is None else (row["received_at"], row["id"])


def run_page(
    conn: Connection[Any],
    project_id: UUID,
    filters: RunFilter,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """Up to ``limit`` runs that pass ``filters``, newest first, after ``after``.

    Args:
        conn: A connection whose rows are dicts.
        project_id: The project whose runs are read.
        filters: Which runs to take.
        limit: The most runs returned.
        after: The sort key of the last run of the previous page, if any.

    Returns:
        Rows with the columns in ``RUN_COLUMNS``.
    """
    matching = None
    if filters.search is not None:
        matching = messages_matching(conn, project_id, filters.search)
    query, params = run_page_query(project_id, filters, limit, after, matching)
    return conn.execute(query, params, prepare=_prepare(filters.search)).fetchall()


def messages_matching(
    conn: Connection[Any], project_id: UUID, search: str
) -> list[UUID] | None:
    """The project's messages whose body matches, if fewer than ``FEW_MESSAGES``.

    None when there are more, and the query then joins runs to their messages
    (for a common word, walking the newest runs). Left to itself the planner
    would walk for a rare word too: it guesses every word too rare for its
    statistics at one row in 200, and a patient id then costs a full walk.
    """
    rows = conn.execute(
        sql.SQL(
            "SELECT m.id FROM messages m WHERE m.project_id = %(project)s AND {}"
            " LIMIT %(few)s"
        ).format(_MESSAGE_MATCHES),
        {"project": project_id, "q": search, "few": FEW_MESSAGES},
        prepare=False,
    ).fetchall()
    return [row["id"] for row in rows] if len(rows) < FEW_MESSAGES else None


def run_page_query(
    project_id: UUID,
    filters: RunFilter,
    limit: int,
    after: Position | None,
    matching: list[UUID] | None = None,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement ``run_page`` runs, and its parameters.

    ``matching`` are the ids of every message whose body the search matches,
    or None when they are too many to list.
    """
    params: dict[str, Any] = {
        "project": project_id,
        "since": filters.since,
        "until": filters.until,
        "job": filters.job,
        "statuses": filters.statuses,
        "status": filters.statuses[0] if filters.statuses else None,
        "trigger": filters.trigger,
        "origin": filters.origin,
        "q": filters.search,
        "limit": limit,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "matching": matching,
    }
    where = _run_conditions(filters, after)
    if filters.search is None:
        return _newest_runs(sql.SQL("runs r"), where), params
    # A run matches through its own logs or through its message's body; the
    # union of the two newest-first pages holds the page of the whole. The logs
    # are planned on their own: the GIN index for a rare word, a walk of the
    # newest runs for a common one.
    by_logs = _newest_runs(sql.SQL("runs r"), [*where, _RUN_MATCHES])
    if matching is not None:
        by_body = _newest_runs(
            sql.SQL("runs r"), [*where, sql.SQL("r.message_id = ANY(%(matching)s)")]
        )
    else:
        by_body = _newest_runs(
            sql.SQL("runs r JOIN messages m ON m.id = r.message_id"),
            [*where, _MESSAGE_MATCHES],
        )
    union = sql.SQL(
        "SELECT * FROM (({}) UNION ({})) AS hits"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    ).format(by_logs, by_body)
    return union, params


def message_page(
    conn: Connection[Any],
    project_id: UUID,
    filters: MessageFilter,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """Up to ``limit`` inbox messages newest first, after ``after``, with job states.

    Args:
        conn: A connection whose rows are dicts.
        project_id: The project whose inbox is read.
        filters: Which messages to take.
        limit: The most messages returned.
        after: The sort key of the last message of the previous page, if any.

    Returns:
        Rows with ``id``, ``received_at``, ``content_type`` and ``job_states``.
    """
    conditions = [
        sql.SQL("m.project_id = %(project)s"),
        sql.SQL("m.received_at >= %(since)s"),
        sql.SQL("m.received_at < %(until)s"),
    ]
    if after is not None:
        conditions.append(
            sql.SQL("(m.received_at, m.id) < (%(after_at)s, %(after_id)s)")
        )
    matching = None
    if filters.search is not None:
        matching = messages_matching(conn, project_id, filters.search)
        conditions.append(
            _MESSAGE_MATCHES
            if matching is None
            else sql.SQL("m.id = ANY(%(matching)s)")
        )
    query = sql.SQL(
        "SELECT m.id, m.received_at, m.content_type FROM messages m WHERE {}"
        " ORDER BY m.received_at DESC, m.id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    rows = conn.execute(
        query,
        {
            "project": project_id,
            "since": filters.since,
            "until": filters.until,
            "q": filters.search,
            "matching": matching,
            "limit": limit,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
        },
        prepare=_prepare(filters.search),
    ).fetchall()
    states = queries.job_states(conn, [row["id"] for row in rows])
    return [{**row, "job_states": states.get(row["id"], [])} for row in rows]


def _prepare(search: str | None) -> bool | None:
    # A prepared statement soon runs on a generic plan, which cannot tell a word
    # in every other row (walk the newest rows) from one in a handful (read the
    # GIN index); a search is planned for its words each time instead.
    return False if search is not None else None


def _run_conditions(filters: RunFilter, after: Position | None) -> list[sql.SQL]:
    # Only the filters given become conditions: a "%(job)s IS NULL OR …" form
    # would keep the planner from choosing the index the filter needs.
    conditions = [
        sql.SQL("r.project_id = %(project)s"),
        sql.SQL("r.created_at >= %(since)s"),
        sql.SQL("r.created_at < %(until)s"),
    ]
    if after is not None:
        conditions.append(
            sql.SQL("(r.created_at, r.id) < (%(after_at)s, %(after_id)s)")
        )
    if filters.job is not None:
        conditions.append(sql.SQL("r.job_name = %(job)s"))
    if filters.statuses is not None and len(filters.statuses) == 1:
        # Equality, not ANY: an index scan keeps its order only for equality.
        conditions.append(sql.SQL("r.status = %(status)s"))
    elif filters.statuses is not None:
        conditions.append(sql.SQL("r.status = ANY(%(statuses)s)"))
    if filters.trigger is not None:
        conditions.append(sql.SQL("r.trigger_kind = %(trigger)s"))
    if filters.origin is not None:
        conditions.append(sql.SQL("r.origin = %(origin)s"))
    return conditions


def _newest_runs(source: sql.SQL, conditions: list[sql.SQL]) -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("r.{}").format(sql.Identifier(c)) for c in RUN_COLUMNS
    )
    return sql.SQL(
        "SELECT {} FROM {} WHERE {}"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT %(limit)s"
    ).format(columns, source, sql.SQL(" AND ").join(conditions))
