"""The dashboard's widgets: keyed tables that update only changed cells, and the header."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from opsdash.tui.rows import Cell, Row

REBUILD_OVER = 40
"""Removing more rows than this at once rebuilds the table: each removal costs a layout pass."""


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its title and fixed width (fixed widths spare a re-measure per update)."""

    title: str
    width: int


class _Ranked(Text):
    """A first-column cell that knows its row's position, so that ``sort`` can restore order."""

    rank: int = 0


class KeyedTable(DataTable[Text]):
    """A table kept in step with a list of :class:`Row` by key.

    :meth:`sync` adds new keys, updates only the cells whose text or style changed, removes
    vanished keys and re-sorts only when the order changed. The cursor stays on its row.
    """

    def __init__(self, columns: Sequence[Column], *, id: str, title: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=1)
        self._column_specs = tuple(columns)
        self._column_keys: list[ColumnKey] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._checks: dict[str, tuple[str, ...]] = {}
        self._order: list[str] = []
        self.panel_title = title
        self.border_title = title

    def on_mount(self) -> None:
        """Create the columns once."""
        self._column_keys = [
            self.add_column(column.title, width=column.width, key=column.title)
            for column in self._column_specs
        ]

    @property
    def keys(self) -> list[str]:
        """The row keys shown, in order."""
        return list(self._order)

    def checks_of(self, key: str) -> tuple[str, ...]:
        """The check ids behind a row (for the detail screen)."""
        return self._checks.get(key, ())

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self._order or not 0 <= self.cursor_row < self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else str(row_key.value)

    def cell_text(self, key: str, column: int) -> str:
        """The text shown in one cell (for tests and the detail screen)."""
        return self._cells[key][column][0]

    def sync(self, rows: Sequence[Row]) -> int:
        """Show exactly ``rows``, in their order; how many cells were written."""
        wanted = {row.key for row in rows}
        gone = [key for key in self._order if key not in wanted]
        if len(gone) > REBUILD_OVER:
            return self._rebuild(rows)
        for key in gone:
            self.remove_row(key)
            del self._cells[key]
        if gone:
            self._order = [key for key in self._order if key in wanted]
        written = 0
        rank = {row.key: index for index, row in enumerate(rows)}
        for row in rows:
            old = self._cells.get(row.key)
            self._checks[row.key] = row.checks
            if old is None:
                self.add_row(*self._texts(row.cells, rank[row.key]), key=row.key)
                self._order.append(row.key)
                written += len(row.cells)
            elif old != row.cells:
                for index, (before, after) in enumerate(zip(old, row.cells, strict=True)):
                    if before != after:
                        text = self._text(after, index, rank[row.key])
                        self.update_cell(row.key, self._column_keys[index], text)
                        written += 1
            self._cells[row.key] = row.cells
        order = [row.key for row in rows]
        if order != self._order:
            self._rerank(rank)
            self.sort(self._column_keys[0], key=lambda cell: cell.rank)
            self._order = order
        return written

    def _rebuild(self, rows: Sequence[Row]) -> int:
        """Start over (a filter hid many rows at once), keeping the cursor on its row."""
        keep = self.cursor_key()
        self.clear()
        self._cells.clear()
        self._order = []
        for index, row in enumerate(rows):
            self.add_row(*self._texts(row.cells, index), key=row.key)
            self._cells[row.key] = row.cells
            self._checks[row.key] = row.checks
            self._order.append(row.key)
        if keep in self._cells:
            self.move_cursor(row=self._order.index(keep))
        return sum(len(row.cells) for row in rows)

    def _rerank(self, rank: dict[str, int]) -> None:
        """Give every first-column cell its new position before a sort."""
        for key in self._order:
            cell = self.get_cell(key, self._column_keys[0])
            if isinstance(cell, _Ranked):
                cell.rank = rank[key]

    def _texts(self, cells: Sequence[Cell], rank: int) -> list[Text]:
        return [self._text(cell, index, rank) for index, cell in enumerate(cells)]

    @staticmethod
    def _text(cell: Cell, column: int, rank: int) -> Text:
        text, style = cell
        if column == 0:
            ranked = _Ranked(text, style=style, no_wrap=True, overflow="ellipsis")
            ranked.rank = rank
            return ranked
        return Text(text, style=style, no_wrap=True, overflow="ellipsis")
