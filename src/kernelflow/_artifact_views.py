"""Artifacts as markdown: how a notebook (or a run's display) shows one."""

from __future__ import annotations

from typing import Any


def as_markdown(artifact: Any) -> str:
    title = f"**{artifact.key}**" if artifact.key else ""
    if artifact.description:
        title = f"{title} {artifact.description}".strip()
    body = _BODIES.get(artifact.type, _text)(artifact)
    return f"{title}\n\n{body}" if title else body


def _text(artifact: Any) -> str:
    return str(artifact.data)


def _link(artifact: Any) -> str:
    return f"[{artifact.link_text or artifact.data}]({artifact.data})"


def _image(artifact: Any) -> str:
    return f"![{artifact.key or 'image'}]({artifact.data})"


def _progress(artifact: Any) -> str:
    return f"Progress: {artifact.data:g}%"


def _table(artifact: Any) -> str:
    columns, rows = table_rows(artifact.data)
    if not columns:
        return "(empty table)"
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def table_rows(table: Any) -> tuple[list[Any], list[list[Any]]]:
    """(columns, rows) of a table given as Prefect takes one: a list of dicts, a dict
    of columns, or a list of lists (columns numbered)."""
    if isinstance(table, dict):
        columns = list(table)
        length = max((len(values) for values in table.values()), default=0)
        rows = [
            [table[c][i] if i < len(table[c]) else None for c in columns] for i in range(length)
        ]
        return columns, rows
    table = list(table)
    if table and all(isinstance(row, dict) for row in table):
        columns = list(dict.fromkeys(key for row in table for key in row))
        return columns, [[row.get(c) for c in columns] for row in table]
    width = max((len(row) for row in table), default=0)
    return list(range(width)), [list(row) + [None] * (width - len(row)) for row in table]


_BODIES = {"link": _link, "image": _image, "progress": _progress, "table": _table}
