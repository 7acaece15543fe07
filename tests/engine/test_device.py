"""Free-core reading: what other work runs now decides how many threads a job gets."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from engine import device


def test_free_cores_subtracts_what_others_run_now(monkeypatch) -> None:
    monkeypatch.setattr(device, "available_cores", lambda: 4)
    monkeypatch.setattr(device, "_others_running", lambda: 1.0)
    assert device.free_cores() == 3
    monkeypatch.setattr(device, "_others_running", lambda: 9.0)
    assert device.free_cores() == 1  # never fewer than one


def test_free_cores_falls_back_to_the_load_average(monkeypatch) -> None:
    monkeypatch.setattr(device, "available_cores", lambda: 2)
    monkeypatch.setattr(device, "_others_running", lambda: None)
    monkeypatch.setattr(device.os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert device.free_cores() == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/loadavg")
def test_a_busy_process_is_seen() -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        # The spinner is runnable the whole time; the caller is left out.
        assert max(device._others_running() for _ in range(5)) >= 1
    finally:
        spinner.kill()
        spinner.wait()


def test_auto_device_on_a_cpu_only_torch_build_does_not_import_torch() -> None:
    """The pinned CPU wheel cannot see a GPU: "auto" answers "cpu" without the second-long torch import."""
    import importlib.metadata

    if not importlib.metadata.version("torch").endswith("+cpu"):
        pytest.skip("this torch build may see a GPU")
    code = "import sys; from engine.device import choose_device; print(choose_device('auto'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["cpu", "False"]


def test_cuda_is_possible_only_where_a_driver_and_a_cuda_build_could_be(monkeypatch) -> None:
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.13.0+cu128")
    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device.os.path, "exists", lambda p: p == "/dev/nvidiactl")
    assert device._cuda_possible()
    monkeypatch.setattr(device.os.path, "exists", lambda p: False)
    assert not device._cuda_possible()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.13.0+cpu")
    monkeypatch.setattr(device.os.path, "exists", lambda p: True)
    assert not device._cuda_possible()
    monkeypatch.setattr(device.sys, "platform", "darwin")
    assert not device._cuda_possible()
