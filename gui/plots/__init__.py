"""Plots drawn with pyqtgraph from frozen results; colours come from :mod:`gui.plots.palette`."""
