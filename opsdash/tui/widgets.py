"""The dashboard's table: a Line-API view over keyed rows that renders only what is visible.

Why not ``DataTable``: any ``update_cell`` bumps its update counter, which every render cache is
keyed on, so one changed latency re-renders every visible cell through rich's console (about
0.2 ms a cell), and ``remove_row`` costs a layout pass. With 1,000 checks a round changed
hundreds of cells and a frame took longer than the 50 ms budget. Here each row's line is a
:class:`~textual.strip.Strip` built from its ``(text, style)`` cells on first display and
cached until that row's cells change; a refresh repaints only the lines of rows that changed
and are on screen. The look (header, cursor, hover, focus tint) follows ``DataTable``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from opsdash.tui.rows import Cell, Row

PADDING = 1
"""Blank cells either side of a column's text."""
_HEADER = 1
"""Lines taken by the column titles (always on screen: rows scroll under them)."""


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its title and fixed width (fixed widths spare a re-measure per update).

    ``gives_way``: in a panel too narrow for every column, columns with the highest value go
    first (0: never); ``flex``: the one column that takes the width left over (the summary or
    reason), never narrower than ``width``.
    """

    title: str
    width: int
    gives_way: int = 0
    flex: bool = False

    def __post_init__(self) -> None:
        # a title is never cut mid-word: its column is at least as wide as the title
        if cell_len(self.title) > self.width:
            raise ValueError(f"column {self.title!r} is narrower than its title")


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns shown at one width: their indexes and widths."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def width(self) -> int:
        """Cells the table takes, padding included."""
        return sum(width + 2 * PADDING for width in self.widths)


def fit_columns(columns: Sequence[Column], width: int) -> Layout:
    """The columns that fit ``width`` cells: those that give way first are dropped until the
    rest fit; the flex column then takes what is left."""
    shown = list(range(len(columns)))
    need = sum(column.width + 2 * PADDING for column in columns)
    for index in sorted(
        (i for i, column in enumerate(columns) if column.gives_way),
        key=lambda i: (-columns[i].gives_way, -i),
    ):
        if need <= width:
            break
        shown.remove(index)
        need -= columns[index].width + 2 * PADDING
    widths = [columns[i].width for i in shown]
    for position, index in enumerate(shown):
        if columns[index].flex:
            widths[position] += max(width - need, 0)
    return Layout(tuple(shown), tuple(widths))


@lru_cache(maxsize=256)
def _style(spec: str) -> Style:
    """A parsed rich style (cells carry a handful of distinct style strings)."""
    return Style.parse(spec) if spec else Style.null()


@lru_cache(maxsize=4096)
def _fit(text: str, width: int) -> str:
    """``text`` on exactly ``width`` cells: padded, or cut with an ellipsis."""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…" if width > 0 else ""


def _line(cells: Sequence[Cell], layout: Layout, base: Style, post: Style) -> list[Segment]:
    """One table line: each shown cell padded, its text in its style between ``base`` and
    ``post``."""
    pad = " " * PADDING
    segments: list[Segment] = []
    for index, width in zip(layout.shown, layout.widths, strict=True):
        text, spec = cells[index]
        fitted = _fit(text, width)
        body = fitted.rstrip(" ")
        segments.append(Segment(pad, base))
        segments.append(Segment(body, base + _style(spec) + post))
        # the trailing blanks take the row's style only (as in DataTable: no bold underline)
        segments.append(Segment(" " * (cell_len(fitted) - cell_len(body)) + pad, base))
    return segments


class KeyedTable(ScrollView, can_focus=True):
    """A table kept in step with a list of :class:`Row` by key.

    :meth:`sync` stores the rows, remembers which keys' cells changed and repaints only those
    lines (when visible); the cursor stays on its row by key when the order changes (on the first
    row it stays first).
    """

    ALLOW_MAXIMIZE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter", "select_cursor", "Select", show=False, tooltip="detail of the selected row"
        ),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "cursor_home", "Top", show=False),
        Binding("end", "cursor_end", "Bottom", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header",
        "keyed-table--cursor",
        "keyed-table--hover",
    }
    # DataTable's look, so that the panels read the same as before
    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .keyed-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .keyed-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .keyed-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .keyed-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .keyed-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .keyed-table--hover {
            background: $block-hover-background;
        }
    }
    """

    @dataclass
    class RowSelected(Message):
        """Enter on a row, or a click on the row under the cursor."""

        table: KeyedTable
        key: str

        @property
        def control(self) -> KeyedTable:
            """The table (for ``@on`` selectors)."""
            return self.table

    def __init__(self, columns: Sequence[Column], *, id: str, title: str) -> None:
        super().__init__(id=id)
        self._columns = tuple(columns)
        self._layout = fit_columns(self._columns, sum(c.width + 2 * PADDING for c in columns))
        """The columns shown at the current width (all of them until the first resize)."""
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._checks: dict[str, tuple[str, ...]] = {}
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._strips: dict[str, Strip] = {}
        """Rendered lines of rows in the plain (no cursor, no hover) style."""
        self._base = Style()
        """The widget's rich style for the paint under way (see :meth:`render_lines`)."""
        self._strips_key: tuple[Style, int] | None = None
        """The base style and width the cached lines were drawn for."""
        self._cursor = 0
        self._hover: int | None = None
        self.panel_title = title
        self.border_title = title
        self.virtual_size = Size(self._table_width, _HEADER)

    # --- data -----------------------------------------------------------------------

    @property
    def _table_width(self) -> int:
        return self._layout.width

    @property
    def columns_shown(self) -> list[str]:
        """The titles of the columns shown at the current width (for tests)."""
        return [self._columns[index].title for index in self._layout.shown]

    def on_resize(self, event: events.Resize) -> None:
        """Fit the columns to the new width: the least important give way first."""
        self._fit_layout()

    def _fit_layout(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:
            return
        layout = fit_columns(self._columns, width)
        if layout != self._layout:
            self._layout = layout
            self._strips.clear()
            self.virtual_size = Size(layout.width, len(self._order) + _HEADER)
            self.refresh()

    @property
    def keys(self) -> list[str]:
        """The row keys shown, in order."""
        return list(self._order)

    @property
    def row_count(self) -> int:
        """How many rows are shown."""
        return len(self._order)

    def checks_of(self, key: str) -> tuple[str, ...]:
        """The check ids behind a row (for the detail screen)."""
        return self._checks.get(key, ())

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        return self._order[self._cursor] if 0 <= self._cursor < len(self._order) else None

    def cell_text(self, key: str, column: int) -> str:
        """The text shown in one cell (for tests and the detail screen)."""
        return self._cells[key][column][0]

    def sync(self, rows: Sequence[Row]) -> int:
        """Show exactly ``rows``, in their order; how many cells were written."""
        written = 0
        changed: list[str] = []
        cells = self._cells
        for row in rows:
            old = cells.get(row.key)
            if old is None:
                written += len(row.cells)
            elif old != row.cells:
                written += sum(
                    before != after for before, after in zip(old, row.cells, strict=True)
                )
            else:
                continue
            cells[row.key] = row.cells
            self._strips.pop(row.key, None)
            changed.append(row.key)
        for row in rows:
            self._checks[row.key] = row.checks
        order = [row.key for row in rows]
        if order != self._order:
            self._reorder(order)
        elif changed:
            self._repaint(changed)
        return written

    def _reorder(self, order: list[str]) -> None:
        """New rows, removed rows or a new order: the cursor follows its row's key, except on
        the first row, where it stays (on the newest event, the worst incident)."""
        keep = self.cursor_key() if self._cursor > 0 else None
        wanted = set(order)
        for key in [key for key in self._cells if key not in wanted]:
            del self._cells[key]
            self._strips.pop(key, None)
            self._checks.pop(key, None)
        self._order = order
        self._index = {key: index for index, key in enumerate(order)}
        if keep is not None and keep in self._index:
            self._cursor = self._index[keep]
        else:
            self._cursor = max(0, min(self._cursor, len(order) - 1))
        size = Size(self._table_width, len(order) + _HEADER)
        if size != self.virtual_size:
            self.virtual_size = size  # a layout pass only when the row count changed
        self.refresh()

    def _repaint(self, keys: Sequence[str]) -> None:
        """Repaint the lines of ``keys`` that are on screen."""
        top = round(self.scroll_y)
        height = self.size.height
        width = max(self.size.width, self._table_width)
        for key in keys:
            y = self._index[key] + _HEADER - top
            if _HEADER <= y < height:
                self.refresh(Region(0, y, width, 1))

    # --- drawing --------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        """Resolve the widget's style once per paint, not once per line (it walks the DOM)."""
        self._base = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """The header on the first line; below it, the rows from the scroll offset."""
        width = self.size.width
        base = self._base
        if (base, width) != self._strips_key:
            self._strips.clear()  # focus tint, theme or width changed: every cached line is stale
            self._strips_key = (base, width)
        scroll_x = round(self.scroll_x)
        if y < _HEADER:
            header = self.get_component_rich_style("keyed-table--header")
            titles = [(column.title, "") for column in self._columns]
            return self._fit(_line(titles, self._layout, header, Style()), header, scroll_x)
        index = y - _HEADER + round(self.scroll_y)
        if not 0 <= index < len(self._order):
            return Strip.blank(width, base)
        key = self._order[index]
        if index == self._cursor or index == self._hover:
            return self._highlighted(key, index, base, scroll_x)
        if scroll_x:
            return self._plain(key, base, scroll_x)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._plain(key, base, 0)
        return strip

    def _fit(self, segments: list[Segment], extend: Style, scroll_x: int) -> Strip:
        """One strip exactly the widget's width (so textual's crop and adjust return it as is:
        each Strip carries five caches, and fewer objects make garbage collection quicker)."""
        width = self.size.width
        if scroll_x:
            segments = Strip(segments).crop(scroll_x, scroll_x + width)._segments
        return Strip(Segment.adjust_line_length(segments, width, style=extend), width)

    def _plain(self, key: str, base: Style, scroll_x: int) -> Strip:
        return self._fit(_line(self._cells[key], self._layout, base, Style()), base, scroll_x)

    def _highlighted(self, key: str, index: int, base: Style, scroll_x: int) -> Strip:
        """The cursor (and hover) row: its colour wins over the cells' (as in DataTable)."""
        component = Style()
        if index == self._hover:
            component += self.get_component_rich_style("keyed-table--hover")
        if index == self._cursor:
            component += self.get_component_rich_style("keyed-table--cursor")
        style = base + component
        segments = _line(self._cells[key], self._layout, style, Style(color=component.color))
        return self._fit(segments, style, scroll_x)

    # --- cursor ---------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        """Put the cursor on row ``row`` (clamped) and, with ``scroll``, bring it into view."""
        row = max(0, min(row, len(self._order) - 1))
        if row != self._cursor:
            old, self._cursor = self._cursor, row
            self._refresh_row(old)
            self._refresh_row(row)
        if scroll and self._order:
            self.scroll_to_region(
                Region(0, row + _HEADER, self.size.width, 1),
                spacing=Spacing(top=_HEADER),
                animate=False,
                force=True,
                immediate=True,
            )

    def _refresh_row(self, index: int | None) -> None:
        if index is None:
            return
        y = index + _HEADER - round(self.scroll_y)
        if _HEADER <= y < self.size.height:
            self.refresh(Region(0, y, max(self.size.width, self._table_width), 1))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - _HEADER)

    def action_cursor_up(self) -> None:
        """One row up."""
        self._keyboard()
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        """One row down."""
        self._keyboard()
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        """One screen up."""
        self._keyboard()
        self.move_cursor(row=self._cursor - self._page())

    def action_page_down(self) -> None:
        """One screen down."""
        self._keyboard()
        self.move_cursor(row=self._cursor + self._page())

    def action_cursor_home(self) -> None:
        """The first row."""
        self._keyboard()
        self.move_cursor(row=0)

    def action_cursor_end(self) -> None:
        """The last row."""
        self._keyboard()
        self.move_cursor(row=len(self._order) - 1)

    def action_select_cursor(self) -> None:
        """Enter: open the row under the cursor."""
        self._keyboard()
        key = self.cursor_key()
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def _keyboard(self) -> None:
        """The keyboard drives: hide the mouse's hover highlight (as DataTable does)."""
        self._set_hover(None)

    # --- mouse ----------------------------------------------------------------------

    def _row_at(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < _HEADER:
            return None
        index = offset.y - _HEADER + round(self.scroll_y)
        return index if 0 <= index < len(self._order) else None

    def _set_hover(self, index: int | None) -> None:
        if index != self._hover:
            old, self._hover = self._hover, index
            self._refresh_row(old)
            self._refresh_row(index)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Highlight the row under the mouse."""
        self._set_hover(self._row_at(event))

    def on_leave(self, event: events.Leave) -> None:
        """No hover highlight once the mouse has left."""
        self._set_hover(None)

    async def _on_click(self, event: events.Click) -> None:
        """A click selects a row; a click on the selected row opens it."""
        index = self._row_at(event)
        if index is None:
            return
        event.stop()
        if index == self._cursor:
            self.post_message(self.RowSelected(self, self._order[index]))
        else:
            self.move_cursor(row=index)
