"""The installer's committed files, checked without building anything (the build is `make installer`).

- the PyInstaller spec makes two programs (``probity``: the CLI, console; ``probity-gui``: main.py,
  windowed) in one folder, and excludes nothing the app imports;
- the desktop entry validates, opens sessions with the type the MIME file registers for ``*.probity``;
- install.sh installs a stand-in bundle for one user and its uninstaller takes it all back;
- the NSIS script installs per user with the file association and an uninstaller (and compiles,
  where makensis is installed);
- main.py hands a ``.probity`` argument to the window and the rest to Qt; the build flavour is read back.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"
SPEC = INSTALLER / "probity.spec"


def _spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))


def _spec_list(name: str) -> list[str]:
    for node in _spec_tree().body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{SPEC.name} assigns no {name}")


def _calls(name: str) -> list[ast.Call]:
    return [n for n in ast.walk(_spec_tree()) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def _keywords(call: ast.Call) -> dict[str, object]:
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg and isinstance(k.value, ast.Constant)}


# -- the spec --------------------------------------------------------------------------------------------
def test_spec_builds_both_programs_into_one_folder():
    analyses = _calls("Analysis")
    scripts = sorted(ast.unparse(call.args[0]) for call in analyses)
    assert scripts == ["[str(ROOT / 'installer' / 'entry_cli.py')]", "[str(ROOT / 'main.py')]"]
    exes = {_keywords(call)["name"]: _keywords(call) for call in _calls("EXE")}
    assert set(exes) == {"probity", "probity-gui"}
    assert exes["probity"]["console"] is True and exes["probity-gui"]["console"] is False
    # One folder: the programs leave their libraries to COLLECT (one-file mode would embed them).
    shared = next(
        n for n in _spec_tree().body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "VERSION_KW"
    )
    assert {k.arg: ast.literal_eval(k.value) for k in shared.value.keywords if k.arg == "exclude_binaries"} == {
        "exclude_binaries": True
    }
    (collect,) = _calls("COLLECT")
    assert _keywords(collect)["name"] == "probity"
    assert {ast.unparse(a) for a in collect.args} >= {"cli_exe", "gui_exe", "cli.binaries", "gui.binaries"}


def test_cli_entry_script_runs_the_probity_command():
    tree = ast.parse((INSTALLER / "entry_cli.py").read_text(encoding="utf-8"))
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("engine.cli", "main") in imports
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'probity = "engine.cli:main"' in pyproject


def _imported_modules() -> set[str]:
    found: set[str] = set()
    files = [
        *(ROOT / "engine").rglob("*.py"),
        *(ROOT / "gui").rglob("*.py"),
        ROOT / "main.py",
        INSTALLER / "entry_cli.py",
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_spec_excludes_nothing_the_app_imports():
    excludes = _spec_list("EXCLUDES")
    assert {"tkinter", "IPython", "matplotlib", "pytest", "shap", "lime", "captum", "fairlearn"} <= set(excludes)
    imported = _imported_modules()
    clashes = sorted(m for m in imported for e in excludes if m == e or m.startswith(e + "."))
    assert clashes == [], f"the bundle would lack modules the app imports: {clashes}"
    # Every runtime dependency of the project stays in.
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {re.split(r"[=<>\[ ]", d)[0].lower().replace("-", "_") for d in deps}
    assert not names & {e.lower() for e in excludes}


def test_dropped_files_spare_the_libraries_qt_and_torch_load():
    patterns = _spec_list("DROP_PATTERNS")
    keep = _spec_list("KEEP_PATTERNS")
    import fnmatch

    def dropped(path: str) -> bool:
        return not any(fnmatch.fnmatch(path, k) for k in keep) and any(fnmatch.fnmatch(path, p) for p in patterns)

    needed = [
        "torch/lib/libtorch_cpu.so",
        "torch/lib/libc10.so",
        "torch/bin/torch_shm_manager",  # import torch stops without it (the bundle's torch models and IG)
        "torch/testing/_internal/logging_tensor.pyc",  # imported by torch.utils.checkpoint when torch imports
        "torch/testing/_internal/common_dtype.pyc",  # imported by torch._refs
        "PySide6/Qt/lib/libQt6Widgets.so.6",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
        "pyarrow/libarrow_substrait.so.2600",
        "pyarrow/libparquet.so.2600",
        "resources/fonts/DejaVuSans.ttf",
        "sklearn/tree/_tree.cpython-311.so",
    ]
    assert [p for p in needed if dropped(p)] == []
    assert dropped("torch/test/test_nn.py") and dropped("torch/bin/test_jit")
    assert dropped("torch/testing/_internal/common_utils.pyc")
    assert any(fnmatch.fnmatch("PySide6/Qt/plugins/platformthemes/libqgtk3.so", p) for p in patterns)


# -- Linux desktop integration ---------------------------------------------------------------------------
def _desktop_entry() -> dict[str, str]:
    lines = (INSTALLER / "linux" / "probity.desktop").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if "=" in line)


def test_desktop_entry_opens_sessions_of_the_registered_type():
    entry = _desktop_entry()
    assert entry["Exec"] == "probity-gui %f" and entry["Icon"] == "probity" and entry["Type"] == "Application"
    mime = (INSTALLER / "linux" / "probity-mime.xml").read_text(encoding="utf-8")
    types = re.findall(r'<mime-type type="([^"]+)"', mime)
    assert types == [entry["MimeType"].rstrip(";")]
    assert re.findall(r'<glob pattern="([^"]+)"', mime) == ["*.probity"]
    assert "*.probity" in (ROOT / "gui" / "sessionfile.py").read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
def test_desktop_entry_validates():
    result = subprocess.run(
        ["desktop-file-validate", str(INSTALLER / "linux" / "probity.desktop")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def test_deb_packaging_reads_the_xcb_packages_from_the_gui():
    # installer/linux/package.sh reads gui/app.py's XCB_LIBRARIES with ast.literal_eval for Depends.
    tree = ast.parse((ROOT / "gui" / "app.py").read_text(encoding="utf-8"))
    (value,) = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "XCB_LIBRARIES" for t in n.targets)
    ]
    packages = [package for _lib, package in ast.literal_eval(value)]
    assert "libxcb-cursor0" in packages and all(re.fullmatch(r"[a-z0-9.+-]+", p) for p in packages)
    assert "XCB_LIBRARIES" in (INSTALLER / "linux" / "package.sh").read_text(encoding="utf-8")


def _stand_in_release(folder: Path) -> Path:
    """A folder laid out like the .tar.gz (programs, _internal, share/), with stand-in programs."""
    release = folder / "probity-0.0.0-linux-x86_64-cpu"
    (release / "_internal").mkdir(parents=True)
    for name in ("probity", "probity-gui"):
        program = release / name
        program.write_text(f'#!/bin/sh\necho {name} "$@"\n', encoding="utf-8")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    share = release / "share"
    files = {
        "applications/probity.desktop": INSTALLER / "linux" / "probity.desktop",
        "mime/packages/probity.xml": INSTALLER / "linux" / "probity-mime.xml",
        "icons/hicolor/scalable/apps/probity.svg": ROOT / "resources" / "icons" / "probity.svg",
        "icons/hicolor/256x256/apps/probity.png": INSTALLER / "icons" / "probity-256.png",
        "icons/hicolor/scalable/mimetypes/application-x-probity-session.svg": ROOT / "resources/icons/probity.svg",
    }
    for relative, source in files.items():
        (share / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, share / relative)
    shutil.copy(INSTALLER / "linux" / "install.sh", release / "install.sh")
    return release


@pytest.mark.skipif(sys.platform != "linux", reason="install.sh is for Linux")
def test_install_sh_installs_for_one_user_and_uninstalls(tmp_path):
    release = _stand_in_release(tmp_path / "unpacked")
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    done = subprocess.run(
        ["sh", str(release / "install.sh"), "--user"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    app = home / ".local/opt/probity"
    assert (home / ".local/bin/probity").resolve() == (app / "probity").resolve()
    ran = subprocess.run([str(home / ".local/bin/probity"), "--version"], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "probity --version"
    desktop = (home / ".local/share/applications/probity.desktop").read_text(encoding="utf-8")
    assert f"Exec={app}/probity-gui %f" in desktop.splitlines()
    assert (home / ".local/share/mime/packages/probity.xml").is_file()
    assert not (app / "install.sh").exists() and (app / "uninstall.sh").is_file()
    # Installing again replaces the first install (through its own uninstaller).
    again = subprocess.run(
        ["sh", str(release / "install.sh"), "--user"], env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr
    removed = subprocess.run(["sh", str(app / "uninstall.sh")], env=env, capture_output=True, text=True, check=False)
    assert removed.returncode == 0, removed.stderr
    leftovers = [
        p for p in home.rglob("*") if p.is_file() and "probity" in str(p.relative_to(home)) and "/mime/" not in str(p)
    ]
    assert leftovers == [] and not app.exists()


def test_install_sh_refuses_a_folder_without_the_programs(tmp_path):
    script = tmp_path / "install.sh"
    shutil.copy(INSTALLER / "linux" / "install.sh", script)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    done = subprocess.run(["sh", str(script), "--user"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "has no probity program" in done.stderr


# -- Windows ---------------------------------------------------------------------------------------------
NSI = INSTALLER / "windows" / "probity.nsi"


def test_nsis_script_installs_per_user_with_association_and_uninstaller():
    text = NSI.read_text(encoding="utf-8")
    assert "RequestExecutionLevel user" in text and "HKLM" not in text
    assert '"$LOCALAPPDATA\\Programs\\Probity"' in text
    for needed in (
        'File "${BUNDLE_DIR}\\probity.exe"',
        'File "${BUNDLE_DIR}\\probity-gui.exe"',
        'File /r "${BUNDLE_DIR}\\_internal"',
        'WriteUninstaller "$INSTDIR\\uninstall.exe"',
        '"Software\\Classes\\.probity" "" "${PROG_ID}"',
        '"%1"',
        "$SMPROGRAMS\\Probity.lnk",
        'Section "Uninstall"',
        'DeleteRegKey HKCU "${PROG_ID}"'.replace('"${PROG_ID}"', '"Software\\Classes\\${PROG_ID}"'),
    ):
        assert needed in text, needed
    icon = re.search(r'!define ICON "([^"]+)"', text).group(1)
    assert (NSI.parent / icon).is_file()


@pytest.mark.skipif(shutil.which("makensis") is None, reason="NSIS (makensis) is not installed")
def test_nsis_script_compiles_against_a_stand_in_bundle(tmp_path):
    bundle = tmp_path / "probity"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    for name in ("probity.exe", "probity-gui.exe"):
        (bundle / name).write_bytes(b"MZ stand-in")
    (bundle / "_internal" / "resources" / "build-info.json").write_text("{}", encoding="utf-8")
    (bundle / "THIRD-PARTY-LICENSES.txt").write_text("stand-in", encoding="utf-8")
    out = tmp_path / "probity-0.0.0-windows-x86_64-cpu-setup.exe"
    done = subprocess.run(
        ["makensis", "-V2", "-WX", "-DVERSION=0.0.0", f"-DBUNDLE_DIR={bundle}", f"-DOUTFILE={out}", str(NSI)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes()[:2] == b"MZ" and out.stat().st_size > 50_000


# -- the app's side --------------------------------------------------------------------------------------
def test_main_hands_a_session_to_the_window_and_the_rest_to_qt():
    from gui.app import parse_args, split_session_argument

    session, rest = split_session_argument(["-platform", "xcb", "/home/a/Q3 audit.PROBITY", "--data", "x.csv"])
    assert session == Path("/home/a/Q3 audit.PROBITY") and rest == ["-platform", "xcb", "--data", "x.csv"]
    assert split_session_argument(["--demo"]) == (None, ["--demo"])
    first, rest = split_session_argument(["a.probity", "b.probity"])
    assert first == Path("a.probity") and rest == ["b.probity"]
    args, qt_args = parse_args(["-platform", "xcb", "saved.probity", "--demo"])
    assert args.session == Path("saved.probity") and args.demo and qt_args == ["-platform", "xcb"]


def test_build_info_reads_the_flavour_baked_into_a_bundle(tmp_path):
    from engine.build_info import build_info, describe_build

    baked = tmp_path / "build-info.json"
    baked.write_text(json.dumps({"flavour": "cuda", "torch": "2.13.0", "built": "2026-01-02"}), encoding="utf-8")
    info = build_info(baked)
    assert (info.flavour, info.torch, info.bundled) == ("cuda", "2.13.0", True)
    assert describe_build(info) == "Installer build: CUDA flavour (torch 2.13.0, built 2026-01-02)."
    baked.write_text(json.dumps({"flavour": "rocm"}), encoding="utf-8")
    assert build_info(baked).flavour == "source"
    assert build_info(tmp_path / "absent.json").flavour == "source"
    assert describe_build(build_info(tmp_path / "absent.json")).startswith("Running from a source checkout")
