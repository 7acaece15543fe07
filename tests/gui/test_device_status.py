"""The status bar names the GPU and its free memory when CUDA is seen, refreshed after each job; the CPU otherwise."""

from __future__ import annotations

import pytest

from gui import tasks
from gui.main_window import MainWindow
from gui.runner import JobSpec

WAIT_MS = 10_000


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings=settings)
    yield win
    win.close()
    win.deleteLater()


def _probe(monkeypatch: pytest.MonkeyPatch, description: str) -> None:
    def probe(*, ctx) -> str:
        return description

    monkeypatch.setattr(tasks, "probe_compute_device", probe)


def _nothing(*, ctx) -> int:
    return 0


def test_a_gpu_is_shown_with_its_name_and_free_memory_and_refreshed_after_each_job(
    qtbot, window, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = {"now": "CUDA: NVIDIA H100 80GB HBM3, 79.1 GB free"}
    monkeypatch.setattr(tasks, "device_if_torch_loaded", lambda: None)  # torch not imported yet: the probe runs
    _probe(monkeypatch, free["now"])
    window.start_device_probe()
    qtbot.waitUntil(lambda: window.device_status.text() != "Compute: CPU", timeout=WAIT_MS)
    assert window.device_status.text() == "Compute: CUDA: NVIDIA H100 80GB HBM3, 79.1 GB free"

    # An analysis used some of the GPU's memory: the label says so when it ends.
    monkeypatch.setattr(tasks, "device_if_torch_loaded", lambda: "CUDA: NVIDIA H100 80GB HBM3, 41.5 GB free")
    with qtbot.waitSignal(window.runner.sig_job_finished, timeout=WAIT_MS):
        window.runner.submit(JobSpec(kind="test", fn=_nothing, listed=False))
    assert window.device_status.text() == "Compute: CUDA: NVIDIA H100 80GB HBM3, 41.5 GB free"


def test_the_cpu_is_shown_without_a_gpu_and_jobs_leave_it_alone(qtbot, window, monkeypatch) -> None:
    monkeypatch.setattr(tasks, "device_if_torch_loaded", lambda: None)
    _probe(monkeypatch, "CPU (2 threads)")
    window.start_device_probe()
    qtbot.waitUntil(lambda: window.device_status.text() != "Compute: CPU", timeout=WAIT_MS)
    assert window.device_status.text() == "Compute: CPU (2 threads)"
    asked: list[int] = []
    monkeypatch.setattr(tasks, "device_if_torch_loaded", lambda: asked.append(1) or "CPU (2 threads)")
    with qtbot.waitSignal(window.runner.sig_job_finished, timeout=WAIT_MS):
        window.runner.submit(JobSpec(kind="test", fn=_nothing, listed=False))
    assert window.device_status.text() == "Compute: CPU (2 threads)" and asked == []
