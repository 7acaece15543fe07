"""What the PyInstaller bundle carries, for IT: licence list, SBOM and size table.

Run with the build venv's Python after PyInstaller (``make installer`` does)::

    python installer/bundle_report.py --dist dist/probity --contents build/pyinstaller/bundle-contents.json \
        --env-sbom build/installer/env-sbom.json --sbom OUT/probity-...-sbom.cdx.json --sizes OUT/sizes.md

- ``THIRD-PARTY-LICENSES.txt`` is written into the bundle: every bundled component (Python packages,
  CPython, the system libraries the build copied in, fonts and colour profile) with its version,
  licence and licence text, and the statement of how the bundle meets the LGPL for Qt/PySide6.
- The SBOM is cyclonedx-py's description of the build venv cut down to the packages actually bundled,
  plus CPython and the copied system libraries, validated against the CycloneDX 1.6 schema.
- The size table lists the largest contributors to the installed folder.

A bundled file that no component accounts for stops the run: the lists must be complete.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import sysconfig
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LICENCE_FILE = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*$", re.IGNORECASE)
# Bundle-own files that are not third-party components.
OWN_PREFIXES = (
    "engine/",
    "gui/",
    "resources/demo/",
    "resources/icons/",
    "resources/style/",
    "resources/build-info.json",
    "THIRD-PARTY-LICENSES.txt",
    "base_library.zip",
)

LGPL_STATEMENT = """\
Qt and PySide6 (LGPL-3.0) in this bundle
========================================
Probity uses Qt 6 through PySide6/Shiboken6 (PySide6-Essentials), which The Qt Company and the Qt
Project license under the GNU Lesser General Public License version 3 (LGPL-3.0-only; the full text
follows in this file, with the GPL-3.0 it builds on).  The bundle meets the LGPL as follows:

- Dynamic linking only.  Probity is a one-folder bundle: the Qt libraries (libQt6*.so / Qt6*.dll /
  QtCore.framework...), their plugins and the PySide6/Shiboken6 modules are separate, unmodified
  shared-library files in the _internal/ folder, loaded at run time.  Nothing of Qt is linked
  statically or merged into the probity programs.
- Unmodified.  They are the files of the PySide6-Essentials and shiboken6 wheels named below, exactly
  as published on PyPI; their versions are listed in this file and in the SBOM shipped beside the
  installer (CycloneDX JSON, with SHA-256 digests in SHA256SUMS).
- Replaceable.  A user may replace them with their own build of the same Qt/PySide6 version (or a
  compatible one): overwrite the files in _internal/PySide6/ (and _internal/shiboken6/) or, on
  Linux, put other libQt6*.so first on LD_LIBRARY_PATH.  Probity does not check or sign these files,
  so a replacement is used as it is.
- Source.  The source code of Qt is at https://download.qt.io/official_releases/qt/ and
  https://code.qt.io/ (tag v{qt_version}); of PySide6/Shiboken6 at https://code.qt.io/pyside/pyside-setup
  (tag v{pyside_version}) and as the PySide6 source distribution on PyPI.  On request the distributor of
  this bundle provides the exact sources on a physical medium for three years, at no more than the cost
  of providing them.
- No restriction.  Nothing in Probity's licence forbids reverse engineering for debugging such
  modifications, as LGPL-3.0 section 4 requires.
"""


@dataclass
class Component:
    name: str
    version: str
    licence: str
    kind: str  # "python", "runtime", "system", "data"
    purl: str = ""
    texts: list[tuple[str, str]] = field(default_factory=list)  # (file name, text)
    bytes: int = 0
    files: int = 0
    url: str = ""


# -- Python distributions ---------------------------------------------------------------------------------
def _licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80 and text.upper() != "UNKNOWN":
        return text
    if classifiers:
        return " / ".join(dict.fromkeys(classifiers))
    return "see licence text below" if text else "UNKNOWN"


def _licence_texts(dist: metadata.Distribution) -> list[tuple[str, str]]:
    texts = []
    for file in dist.files or []:
        if LICENCE_FILE.search(str(file)) and ".dist-info" in str(file):
            try:
                texts.append(
                    (Path(str(file)).name, Path(dist.locate_file(file)).read_text(encoding="utf-8", errors="replace"))
                )
            except OSError:
                continue
    text = (dist.metadata.get("License") or "").strip()
    if not texts and text and ("\n" in text or len(text) > 80):
        texts.append(("License (from the package metadata)", text))
    if not texts and "LGPL-3.0" in _licence_of(dist):  # the Qt for Python wheels ship no licence file
        texts += [
            (name, (ROOT / "installer" / "licences" / name).read_text(encoding="utf-8"))
            for name in ("LGPL-3.0.txt", "GPL-3.0.txt")
        ]
    return texts


def _distribution_index() -> tuple[dict[str, metadata.Distribution], dict[str, list[str]]]:
    by_file: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        for file in dist.files or []:
            by_file[os.path.realpath(dist.locate_file(file))] = dist
    return by_file, metadata.packages_distributions()


# -- system files ---------------------------------------------------------------------------------------
@functools.cache
def _debian_package(path: str) -> tuple[str, str] | None:
    real = os.path.realpath(path)
    for candidate in dict.fromkeys((path, real, "/usr" + real if not real.startswith("/usr/") else real)):
        try:
            out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False).stdout
        except OSError:
            return None
        if out:
            package = out.split(":", 1)[0].strip()
            version = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
            ).stdout.strip()
            return package, version
    return None


def _debian_licence(package: str) -> tuple[str, str]:
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    try:
        text = copyright_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "see the Debian package's copyright file", ""
    names = re.findall(r"^License:\s*(\S[^\n]*)", text, flags=re.MULTILINE)
    return (" AND ".join(dict.fromkeys(n.strip() for n in names)) or "see text below"), text


def _python_runtime() -> Component:
    version = ".".join(map(str, sys.version_info[:3]))
    texts = []
    for candidate in (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt", Path(sys.base_prefix) / "LICENSE.txt"):
        if candidate.is_file():
            texts.append(("LICENSE.txt", candidate.read_text(encoding="utf-8", errors="replace")))
            break
    return Component(
        "CPython",
        version,
        "PSF-2.0",
        "runtime",
        purl=f"pkg:generic/cpython@{version}",
        texts=texts,
        url="https://www.python.org/downloads/source/",
    )


# -- the report -----------------------------------------------------------------------------------------
def collect(dist_dir: Path, contents: dict) -> tuple[dict[str, Component], dict[str, int]]:
    by_file, top_level = _distribution_index()
    components: dict[str, Component] = {}
    unaccounted: list[str] = []
    internal = dist_dir / "_internal"
    runtime = _python_runtime()
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    libpython_dir = os.path.realpath(sysconfig.get_config_var("LIBDIR") or "")

    def add_python(dist: metadata.Distribution) -> Component:
        name = dist.metadata["Name"]
        key = name.lower().replace("_", "-")
        if key not in components:
            version = dist.version
            components[key] = Component(
                name,
                version,
                _licence_of(dist),
                "python",
                purl=f"pkg:pypi/{key}@{version}",
                texts=_licence_texts(dist),
                url=(dist.metadata.get("Home-page") or ""),
            )
        return components[key]

    sizes: dict[str, int] = defaultdict(int)
    for dest, src in contents["files"]:
        path = internal / dest
        size = path.stat().st_size if path.is_file() and not path.is_symlink() else 0
        top = dest.split("/", 1)[0] if "/" in dest else dest
        sizes[top] += size
        if dest.startswith(OWN_PREFIXES) or dest.endswith(".dist-info") or ".dist-info/" in dest:
            continue
        if not os.path.isabs(src):  # a link PyInstaller made to a file listed on its own
            continue
        real = os.path.realpath(src)
        dist = by_file.get(real)
        top_name = dest.split("/", 1)[0].removesuffix(".pyc")
        if dist is None and dest.endswith(".pyc") and top_name in top_level:  # compiled by PyInstaller
            dist = metadata.distribution(top_level[top_name][0])
        if dist is not None:
            component = add_python(dist)
        elif dest.endswith(".pyc") and top_name in sys.stdlib_module_names:
            component = components.setdefault("cpython", runtime)
        elif real.startswith(stdlib) or (libpython_dir and real.startswith(libpython_dir) and "libpython" in real):
            component = components.setdefault("cpython", runtime)
        elif dest.startswith("resources/fonts/"):
            component = components.setdefault(
                "dejavu-fonts",
                Component(
                    "DejaVu fonts",
                    "2.37",
                    "Bitstream-Vera AND LicenseRef-DejaVu-public-domain",
                    "data",
                    purl="pkg:generic/dejavu-fonts@2.37",
                    texts=[("LICENSE", (ROOT / "resources/fonts/LICENSE").read_text(encoding="utf-8"))],
                    url="https://dejavu-fonts.github.io/",
                ),
            )
        elif dest.startswith("resources/icc/"):
            component = components.setdefault(
                "srgb-icc",
                Component(
                    "sRGB colour profile",
                    "1",
                    "see licence text",
                    "data",
                    purl="pkg:generic/srgb-icc@1",
                    texts=[("LICENSE", (ROOT / "resources/icc/LICENSE").read_text(encoding="utf-8"))],
                ),
            )
        else:
            found = _debian_package(src)
            if found is None:
                unaccounted.append(f"{dest} (from {src})")
                continue
            package, version = found
            key = f"deb:{package}"
            if key not in components:
                licence, text = _debian_licence(package)
                components[key] = Component(
                    package,
                    version,
                    licence,
                    "system",
                    purl=f"pkg:deb/debian/{package}@{version}?arch=amd64",
                    texts=[("copyright", text)] if text else [],
                )
            component = components[key]
        component.bytes += size
        component.files += 1
    # Modules in the programs' own archives (the standard library) and in _internal as .pyc files.
    for module in contents["modules"]:
        root_name = module.split(".", 1)[0]
        if root_name in ("engine", "gui", "main", "entry_cli"):
            continue
        names = top_level.get(root_name)
        if names:
            add_python(metadata.distribution(names[0]))
        else:
            components.setdefault("cpython", runtime)
    if unaccounted:
        raise SystemExit("bundle_report: no component accounts for these bundled files:\n  " + "\n  ".join(unaccounted))
    for exe in ("probity", "probity-gui", "probity.exe", "probity-gui.exe"):
        if (dist_dir / exe).is_file():
            sizes[f"({exe} program)"] += (dist_dir / exe).stat().st_size
    return components, sizes


def write_licences(path: Path, components: dict[str, Component], flavour: str) -> None:
    ordered = sorted(components.values(), key=lambda c: (c.kind != "runtime", c.kind, c.name.lower()))
    pyside = components.get("pyside6-essentials")
    lines = [
        "Probity: third-party components in this bundle",
        "===============================================",
        f"Build flavour: {flavour}.  Every component the installer carries is listed with its version and",
        "licence; the licence texts follow the list.  Probity itself is proprietary (see its own terms).",
        "",
        f"{'component':40} {'version':24} {'kind':8} licence",
        f"{'-' * 40} {'-' * 24} {'-' * 8} {'-' * 40}",
    ]
    for c in ordered:
        lines.append(f"{c.name[:40]:40} {c.version[:24]:24} {c.kind:8} {c.licence}")
    lines += [
        "",
        LGPL_STATEMENT.format(
            qt_version=pyside.version if pyside else "6", pyside_version=pyside.version if pyside else "6"
        ),
        "",
    ]
    for c in ordered:
        lines += ["", "=" * 100, f"{c.name} {c.version} ({c.licence})", "=" * 100]
        if c.url:
            lines.append(f"Home: {c.url}")
        if not c.texts:
            lines.append("(The package ships no licence file; its metadata states the licence above.)")
        for name, text in c.texts:
            lines += [f"--- {name} ---", text.rstrip(), ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_sbom(env_sbom: Path, out: Path, components: dict[str, Component], flavour: str) -> int:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    document = json.loads(env_sbom.read_text(encoding="utf-8"))
    bundled = {c.purl.split("@")[0] for c in components.values() if c.kind == "python"}
    kept, kept_refs = [], set()
    for entry in document.get("components", []):
        purl = str(entry.get("purl", "")).split("@")[0].split("?")[0].lower().replace("_", "-")
        if purl in bundled:
            kept.append(entry)
            kept_refs.add(entry.get("bom-ref"))
    for c in components.values():
        if c.kind == "python":
            continue
        kept.append(
            {
                "type": "library" if c.kind != "data" else "data",
                "bom-ref": c.purl,
                "name": c.name,
                "version": c.version,
                "purl": c.purl,
                "licenses": [{"license": {"name": c.licence[:200]}}],
            }
            if c.kind != "data"
            else {
                "type": "data",
                "bom-ref": c.purl,
                "name": c.name,
                "version": c.version,
                "licenses": [{"license": {"name": c.licence[:200]}}],
            }
        )
        kept_refs.add(c.purl)
    document["components"] = kept
    root_ref = document.get("metadata", {}).get("component", {}).get("bom-ref")
    dependencies = []
    for dep in document.get("dependencies", []):
        if dep.get("ref") in kept_refs or dep.get("ref") == root_ref:
            dep = dict(dep)
            dep["dependsOn"] = [r for r in dep.get("dependsOn", []) if r in kept_refs]
            dependencies.append(dep)
    document["dependencies"] = dependencies
    root = document.setdefault("metadata", {}).setdefault("component", {})
    root.setdefault("properties", []).append({"name": "probity:flavour", "value": flavour})
    root.setdefault("properties", []).append({"name": "probity:packaging", "value": "PyInstaller one-folder bundle"})
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    error = JsonStrictValidator(SchemaVersion.from_version(document.get("specVersion", "1.6"))).validate_str(text)
    if error is not None:
        raise SystemExit(f"bundle_report: the SBOM does not validate against CycloneDX: {error}")
    out.write_text(text, encoding="utf-8")
    return len(kept)


def write_sizes(path: Path, dist_dir: Path, sizes: dict[str, int], components: dict[str, Component]) -> None:
    total = sum(p.stat().st_size for p in dist_dir.rglob("*") if p.is_file() and not p.is_symlink())
    rows = sorted(sizes.items(), key=lambda kv: -kv[1])[:15]
    lines = [f"Installed folder: {total / 1e6:,.0f} MB in all.", "", "| part of `_internal/` | MB |", "| --- | ---: |"]
    lines += [f"| `{name}` | {size / 1e6:,.1f} |" for name, size in rows]
    lines += ["", "| component | files | MB |", "| --- | ---: | ---: |"]
    top = sorted(components.values(), key=lambda c: -c.bytes)[:12]
    lines += [f"| {c.name} {c.version} | {c.files} | {c.bytes / 1e6:,.1f} |" for c in top]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, required=True, help="the one-folder bundle (dist/probity)")
    parser.add_argument("--contents", type=Path, required=True, help="bundle-contents.json from the spec")
    parser.add_argument("--env-sbom", type=Path, help="cyclonedx-py's SBOM of the build venv")
    parser.add_argument("--sbom", type=Path, help="where to write the bundle's SBOM")
    parser.add_argument("--sizes", type=Path, help="where to write the size table (Markdown)")
    args = parser.parse_args(argv)
    contents = json.loads(args.contents.read_text(encoding="utf-8"))
    components, sizes = collect(args.dist, contents)
    write_licences(args.dist / "THIRD-PARTY-LICENSES.txt", components, contents["flavour"])
    print(f"bundle_report: {len(components)} components in {args.dist / 'THIRD-PARTY-LICENSES.txt'}")
    if args.sbom and args.env_sbom:
        count = write_sbom(args.env_sbom, args.sbom, components, contents["flavour"])
        print(f"bundle_report: SBOM with {count} components in {args.sbom}")
    if args.sizes:
        write_sizes(args.sizes, args.dist, sizes, components)
        print(f"bundle_report: size table in {args.sizes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
