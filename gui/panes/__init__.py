"""The main window's panes: dataset, model, analyses and the job list."""
