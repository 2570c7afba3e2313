"""A database error in words an agency's IT can act on, without the database's own text.

A database's error message may quote the data it failed on (PostgreSQL: `invalid input
syntax for type integer: "9434765919"`), so it never reaches a log line or an answer. What
does: the error's class, a stable code (the SQLSTATE, SQLite's error name, or SQLAlchemy's
error code) and what that kind of error usually means. Used for every database the project
touches: an agent's SQL sources and the audit stores (SQLite and PostgreSQL) alike.
"""

from __future__ import annotations

# SQLSTATE classes (the first two characters), in words.
_SQLSTATE_CLASSES = {
    "08": "the connection to the database failed",
    "28": "the database refused the login",
    "3D": "the database does not exist",
    "3F": "the schema does not exist",
    "42": "the query is not valid here (a missing table or column, or no permission)",
    "22": "a value could not be converted or compared by the query",
    "23": "a constraint was violated",
    "25": "the transaction was in the wrong state",
    "40": "the database rolled the transaction back",
    "53": "the database is out of resources",
    "54": "the query exceeds a database limit",
    "55": "the database was not in a state to run the query",
    "57": "the database cancelled the query or is shutting down",
    "58": "the database had a system error",
    "XX": "the database had an internal error",
}
# Some SQLSTATEs are worth naming exactly.
_SQLSTATES = {
    "42P01": "a table in the query does not exist",
    "42703": "a column in the query does not exist",
    "42501": "the database user may not read the table",
    "57014": "the query was cancelled (a statement timeout?)",
    "57P01": "the database was shut down",
}

# SQLite's primary error names (the part before any "_" detail), in words.
_SQLITE = {
    "SQLITE_BUSY": "the database is locked by another connection",
    "SQLITE_LOCKED": "the database is locked by another connection",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_IOERR": "the database had an input/output error",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_NOTADB": "the file is not a database",
    "SQLITE_CANTOPEN": "the database file cannot be opened",
    "SQLITE_CONSTRAINT": "a constraint or trigger refused the write",
    "SQLITE_PERM": "the database may not be written here",
    "SQLITE_ERROR": "the query is not valid here (a missing table or column?)",
    "SQLITE_MISMATCH": "a value has the wrong type for its column",
    "SQLITE_TOOBIG": "a value is too large for the database",
}


def describe(exc: BaseException) -> str:
    """`(DataError, SQLSTATE 22P02): a value could not be converted...`, never the
    database's message."""
    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        words = _SQLSTATES.get(sqlstate) or _SQLSTATE_CLASSES.get(
            sqlstate[:2], "the database refused the query")
        return f"{words} ({kind}, SQLSTATE {sqlstate})"
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    if isinstance(sqlite_name, str) and sqlite_name:
        words = _SQLITE.get(sqlite_name) or _SQLITE.get(
            "_".join(sqlite_name.split("_")[:2]), "the database refused the query")
        return f"{words} ({kind}, {sqlite_name})"
    code = getattr(exc, "code", None)
    where = f"{kind}, SQLAlchemy code {code}" if isinstance(code, str) and code else kind
    if kind == "OperationalError":
        return f"the database could not be reached or refused the connection ({where})"
    return f"the database refused the query ({where})"
