"""The shared palette stays plain, valid hex strings, importable without Qt."""

from __future__ import annotations

import re

import gui.plots.palette as palette

_HEX = re.compile(r"^#[0-9A-F]{6}$")


def test_palette_is_plain_hex_data_importable_without_qt():
    import subprocess
    import sys

    code = "import sys, gui.plots.palette; print(any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
    for name in palette.__all__:
        value = getattr(palette, name)
        if callable(value):
            continue
        values = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else (value,)
        assert all(_HEX.match(v) for v in values), name
    assert palette.categorical(9) == palette.CATEGORICAL[1]
