"""`make wheelhouse`: every wheel Probity needs, at its pinned version, for offline `pip install`.

    python installer/wheelhouse.py [--out wheelhouse] [--targets linux-cp311 linux-cp312 windows-cp311 windows-cp312]

Writes one flat folder (pip picks each machine's own wheels from it) with Probity's own wheel, the wheel
of every runtime dependency at the version pinned in requirements/constraints.txt, and SHA256SUMS.  On
the offline machine::

    python3 -m venv probity-env && probity-env/bin/pip install --no-index --find-links wheelhouse probity

The dependency closure is walked here, wheel by wheel, with each target's own environment markers
(``pip download --platform`` would judge markers by the machine it runs on, so a Windows wheelhouse made
on Linux would ask for torch's Linux-only CUDA wheels and miss Windows-only dependencies).  Every wheel
is fetched with ``pip download --no-deps --only-binary=:all:`` for the target's platform and Python.

torch must be the CPU build.  Windows: PyPI's torch wheels are CPU builds.  Linux: PyPI's are CUDA
builds (several GB with their nvidia-* wheels), so the CPU wheel comes from a local wheel folder
(``$PIP_FIND_LINKS``) or ``$TORCH_INDEX_CPU`` (https://download.pytorch.org/whl/cpu), never from PyPI;
a wheel that asks for nvidia-* packages is refused.  A target whose CPU torch cannot be had here is
written to ``MISSING.txt`` with the command that fetches it elsewhere, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "constraints.txt"
TARGETS = ("linux-cp311", "linux-cp312", "windows-cp311", "windows-cp312")
TORCH_INDEX_CPU = os.environ.get("TORCH_INDEX_CPU", "https://download.pytorch.org/whl/cpu")
# glibc 2.17 to 2.36 (Debian 12): some pins (PySide6 6.12) ship only manylinux_2_34 wheels.
LINUX_PLATFORMS = ["manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1))]


@dataclass(frozen=True)
class Target:
    name: str
    system: str  # "linux" or "windows"
    python: tuple[int, int]

    @classmethod
    def parse(cls, text: str) -> Target:
        system, _, cp = text.partition("-cp")
        if system not in ("linux", "windows") or len(cp) < 3 or not cp.isdigit():
            raise SystemExit(f"wheelhouse: unknown target {text!r}; choose from {', '.join(TARGETS)}.")
        return cls(text, system, (int(cp[0]), int(cp[1:])))

    @property
    def platforms(self) -> list[str]:
        return LINUX_PLATFORMS if self.system == "linux" else ["win_amd64"]

    @property
    def pip_args(self) -> list[str]:
        args = [
            "--only-binary=:all:",
            "--python-version",
            f"{self.python[0]}.{self.python[1]}",
            "--implementation",
            "cp",
        ]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args

    def markers(self) -> dict[str, str]:
        env = dict(default_environment())
        version = f"{self.python[0]}.{self.python[1]}"
        env.update(
            python_version=version,
            python_full_version=f"{version}.0",
            implementation_name="cpython",
            platform_python_implementation="CPython",
            extra="",
        )
        if self.system == "linux":
            env.update(sys_platform="linux", platform_system="Linux", os_name="posix", platform_machine="x86_64")
        else:
            env.update(sys_platform="win32", platform_system="Windows", os_name="nt", platform_machine="AMD64")
        return env

    def tags(self) -> set[Tag]:
        return set(cpython_tags(self.python, platforms=self.platforms)) | set(
            compatible_tags(self.python, interpreter=f"cp{self.python[0]}{self.python[1]}", platforms=self.platforms)
        )


def read_pins(path: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        metadata = email.parser.BytesParser().parsebytes(archive.read(name))
    return [Requirement(text) for text in metadata.get_all("Requires-Dist") or []]


def find_wheel(out: Path, name: str, version: str | None, target: Target) -> Path | None:
    wanted = canonicalize_name(name)
    supported = target.tags()
    best = None
    for path in sorted(out.glob("*.whl")):
        dist, dist_version, _build, tags = parse_wheel_filename(path.name)
        if dist != wanted or not tags & supported:
            continue
        if version is not None and str(dist_version) != version and str(dist_version).split("+")[0] != version:
            continue
        best = path
    return best


def pip_download(spec: str, target: Target, out: Path, *extra: str) -> bool:
    command = [
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        "download",
        "--quiet",
        "--no-deps",
        *target.pip_args,
        "-d",
        str(out),
        *extra,
        spec,
    ]
    return subprocess.run(command, check=False, stdout=subprocess.DEVNULL).returncode == 0


def is_cuda_build(wheel: Path, target: Target) -> bool:
    env = target.markers()
    return any(
        r.name.startswith("nvidia-") and (r.marker is None or r.marker.evaluate(env)) for r in wheel_requirements(wheel)
    )


def fetch_torch(spec: str, version: str, target: Target, out: Path) -> Path | None:
    """torch's CPU build for ``target``, or ``None`` where it cannot be had from here."""
    if target.system == "windows":  # PyPI's Windows wheels are the CPU build
        pip_download(spec, target, out)
    else:  # a local wheel folder first, then the CPU index; PyPI (CUDA builds) never
        pip_download(spec, target, out, "--no-index") or pip_download(
            spec, target, out, "--index-url", TORCH_INDEX_CPU, "--retries", "1", "--timeout", "20"
        )
    wheel = find_wheel(out, "torch", version, target)
    if wheel is not None and is_cuda_build(wheel, target):
        wheel.unlink()
        return None
    return wheel


def fill(target: Target, out: Path, probity_wheel: Path, pins: dict[str, str]) -> tuple[list[Path], str | None]:
    """Download the closure of ``probity_wheel`` for ``target``; returns the wheels and a missing-torch note."""
    env = target.markers()
    queue: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset()) for r in wheel_requirements(probity_wheel)]
    done: dict[str, Path] = {}
    missing = None
    while queue:
        requirement, extras = queue.pop(0)
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({**env, "extra": extra}) for extra in (extras or {""})
        ):
            continue
        name = canonicalize_name(requirement.name)
        version = pins.get(name)
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            raise SystemExit(
                f"wheelhouse: {requirement} (needed for {target.name}) excludes the pin {name}=={version}."
            )
        if name in done:
            continue
        spec = f"{requirement.name}=={version}" if version else f"{requirement.name}{requirement.specifier}"
        if name == "torch":
            wheel = fetch_torch(spec, version or "", target, out)
            if wheel is None:
                missing = (
                    f"{target.name}: no CPU build of {spec} could be fetched here (no local wheel, "
                    f"{TORCH_INDEX_CPU} unreachable); where that index is reachable run: pip download "
                    "--only-binary=:all: --platform manylinux_2_28_x86_64 "
                    f"--python-version {target.python[0]}.{target.python[1]} --index-url "
                    "https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple "
                    f"-d wheelhouse {spec}"
                )
                done[name] = Path()
                continue
        else:
            if find_wheel(out, name, version, target) is None and not pip_download(spec, target, out):
                raise SystemExit(f"wheelhouse: no {target.name} wheel of {spec} could be downloaded.")
            wheel = find_wheel(out, name, version, target)
            if wheel is None:
                raise SystemExit(f"wheelhouse: pip downloaded no {target.name} wheel for {spec}.")
        done[name] = wheel
        queue += [(r, frozenset(requirement.extras)) for r in wheel_requirements(wheel)]
    return [w for w in done.values() if w != Path()], missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "wheelhouse")
    parser.add_argument("--targets", nargs="+", default=os.environ.get("WHEELHOUSE_TARGETS", " ".join(TARGETS)).split())
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    targets = [Target.parse(t) for t in args.targets]
    pins = read_pins()
    for old in out.glob("probity-*.whl"):
        old.unlink()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (probity_wheel,) = out.glob("probity-*.whl")
    notes = []
    for target in targets:
        wheels, missing = fill(target, out, probity_wheel, pins)
        print(
            f"wheelhouse: {target.name}: {len(wheels) + 1} wheels"
            + (" (torch missing: see MISSING.txt)" if missing else ""),
            flush=True,
        )
        if missing:
            notes.append(missing)
    stray = sorted(p.name for p in out.glob("*.whl") if p.name.startswith(("nvidia_", "triton-")))
    if stray:
        raise SystemExit(f"wheelhouse: CUDA wheels ended up in {out}: {', '.join(stray)}.")
    with open(out / "SHA256SUMS", "w", encoding="utf-8") as sums:
        for wheel in sorted(out.glob("*.whl")):
            sums.write(f"{hashlib.sha256(wheel.read_bytes()).hexdigest()}  {wheel.name}\n")
    (out / "MISSING.txt").unlink(missing_ok=True)
    total = sum(p.stat().st_size for p in out.glob("*.whl"))
    print(
        f"wheelhouse: {len(list(out.glob('*.whl')))} wheels, {total / 1e6:,.0f} MB, in {out} (SHA256SUMS beside them)"
    )
    if notes:
        (out / "MISSING.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
        print("wheelhouse: incomplete:\n  " + "\n  ".join(notes), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
