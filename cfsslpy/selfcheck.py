"""What the single executable carries, and whether what it unpacked on this host is intact.

The pyz (see ``cfsslpy/launcher.py`` and ``build.py``) holds ``cfsslpy-manifest.json``: every file of every
(CPython version, machine) target with its sha256, and the wheels (file name and sha256) each target was
made from; and ``sbom.cdx.json``, a CycloneDX SBOM of those wheels. The launcher records where it unpacked
this host's target; :func:`check` hashes every unpacked file again and compares it with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.errors import PlainError

MANIFEST = "cfsslpy-manifest.json"
SBOM = "sbom.cdx.json"


@dataclass(frozen=True)
class Bundle:
    """The running executable: the pyz file, its build id, this host's target and where it was unpacked."""

    pyz: str
    tree: str
    pair: str
    build_id: str


def running_bundle() -> Bundle | None:
    """The executable this process was started from, or None when cfsslpy runs from an installed package."""
    info = getattr(sys.modules.get("__main__"), "CFSSLPY_BUNDLE", None)
    return Bundle(**info) if isinstance(info, dict) else None


def _require_bundle() -> Bundle:
    bundle = running_bundle()
    if bundle is None:
        raise PlainError("not running from the single executable (dist/cfsslpy.pyz): there is no bundle to check")
    return bundle


def _read(pyz: str, name: str) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(pyz) as archive:
            document: dict[str, Any] = json.loads(archive.read(name))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise PlainError(f"cannot read {name} from {pyz}: {exc}") from exc
    return document


def sbom_json() -> str:
    return json.dumps(_read(_require_bundle().pyz, SBOM), indent=2, sort_keys=True)


def distributions(manifest: dict[str, Any], pair: str) -> list[dict[str, str]]:
    """This target's wheels: name, version, wheel file and its sha256, sorted by name."""
    rows = []
    for filename, digest in manifest["wheels"][pair]:
        name, version = filename.split("-")[:2]
        rows.append({"name": name.replace("_", "-").lower(), "version": version, "wheel": filename, "sha256": digest})
    return sorted(rows, key=lambda row: row["name"])


def bundled_text() -> str:
    """``version -verbose``'s extra lines: the bundled distributions, or a note when not in the executable."""
    bundle = running_bundle()
    if bundle is None:
        return "Bundle: none (running from an installed package)\n"
    manifest = _read(bundle.pyz, MANIFEST)
    lines = [f"Bundle: {bundle.build_id[:16]} ({bundle.pair}, unpacked in {bundle.tree})"]
    lines += [f"  {d['name']} {d['version']}  {d['wheel']}  sha256:{d['sha256']}" for d in distributions(manifest, bundle.pair)]
    return "\n".join(lines) + "\n"


@dataclass
class Report:
    bundle: Bundle
    version: str
    pyz_sha256: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    distributions: list[dict[str, str]] = field(default_factory=list)

    def json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "build_id": self.bundle.build_id,
                "pyz": self.bundle.pyz,
                "pyz_sha256": self.pyz_sha256,
                "target": self.bundle.pair,
                "unpacked": self.bundle.tree,
                "files_checked": self.checked,
                "problems": self.problems,
                "distributions": self.distributions,
            },
            indent=2,
        )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check() -> Report:
    """Hash every unpacked file of this target and compare with the manifest; list extra files too
    (``__pycache__`` excepted: the interpreter writes those on first import)."""
    bundle = _require_bundle()
    manifest = _read(bundle.pyz, MANIFEST)
    report = Report(bundle, manifest.get("version", "?"), _sha256(bundle.pyz), distributions=distributions(manifest, bundle.pair))
    if manifest.get("build_id") != bundle.build_id:
        report.problems.append(f"{bundle.pyz}: its manifest is not the running build's ({bundle.build_id[:16]})")
        return report
    site = os.path.join(bundle.tree, "site-packages")
    expected = {rel: (digest, size) for rel, digest, size, _ in manifest["common"] + manifest["pairs"][bundle.pair]}
    for rel, (digest, _size) in sorted(expected.items()):
        path = os.path.join(site, *rel.split("/"))
        try:
            actual = _sha256(path)
        except OSError as exc:
            report.problems.append(f"missing: {rel} ({exc.strerror})")
            continue
        report.checked += 1
        if actual != digest:
            report.problems.append(f"modified: {rel} (sha256 {actual}, expected {digest})")
    for folder, dirs, files in os.walk(site):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), site).replace(os.sep, "/")
            if rel not in expected:
                report.problems.append(f"unexpected: {rel}")
    return report
