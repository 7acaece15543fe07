"""Text that comes from files, shown by Qt literally.

Qt renders the text of a ``QLabel``, a tooltip or a message box as HTML when it
"might be rich text" (``Qt.mightBeRichText``: a tag or an entity before the first
line break), and pyqtgraph draws plot titles, axis labels and legend entries as
HTML always.  File names, column names, class labels, pickle globals, session
fields and the error messages that quote them are written by whoever made the
file, so a column named ``<img src=x>`` would be rendered (an image fetched, a
link drawn, the text around it hidden) instead of shown.  The rules the panes
follow:

* a label whose text needs no markup is plain text (:func:`plain_label`,
  :func:`set_plain`), so no value can turn into markup;
* every value put into markup goes through :func:`escape`;
* tooltips, and message boxes opened by ``QMessageBox``'s static functions, whose format
  cannot be chosen, go through :func:`literal`.

``tests/gui/test_issue10_trust.py`` feeds hostile names through the window and
checks every label, tooltip and plot title shows them literally.
"""

from __future__ import annotations

import html

from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

__all__ = ["escape", "literal", "plain_label", "set_plain"]


def escape(value: object) -> str:
    """``value`` as text safe to put inside Qt or pyqtgraph markup (``<``, ``>``, ``&`` and quotes escaped)."""
    return html.escape(str(value), quote=True)


def set_plain(*labels: QLabel) -> None:
    """Show each label's text as written, whatever it contains."""
    for label in labels:
        label.setTextFormat(Qt.TextFormat.PlainText)


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A ``QLabel`` that shows ``text`` (and any text set later) as written, never as markup."""
    label = QLabel(parent)
    set_plain(label)
    label.setText(text)
    return label


def literal(text: str) -> str:
    """``text`` in a form Qt's automatic text format shows literally (tooltips, message boxes).

    Qt renders such text as HTML when it looks like markup; such text is escaped
    and kept on its lines (``white-space: pre-wrap``).  Text that does not look
    like markup is returned unchanged, so ordinary tooltips keep Qt's plain layout.
    """
    if "<" not in text and "&" not in text and not QtGui.Qt.mightBeRichText(text):
        return text
    return f"<p style='white-space:pre-wrap'>{escape(text)}</p>"
