#!/usr/bin/env python3
"""Build cfsslpy as one self-contained executable: ``dist/cfsslpy.pyz``, for every supported host at once.

    python3 build.py                    # build dist/cfsslpy.pyz, then smoke-test it
    python3 build.py --demo demo        # build, then issue a CA and a server certificate into ./demo
    python3 build.py --serve data       # build, then serve the API on 127.0.0.1:8888 with its CA in ./data
    python3 build.py --serve data --port 9000   # ... on another port (checked to be free before anything is made)
    python3 build.py --venv .venv       # make the locked test environment (README's test command)

Needs only a CPython >= 3.10 (Debian's bare python3 will do: no pip, no python3-venv needed) and access to
the package index for the first build. The result runs on CPython 3.10-3.14, Linux x86_64 and aarch64,
glibc >= 2.28, and needs neither the network nor a writable HOME.

What goes in comes from ``requirements.lock`` alone: its [runtime] section, each wheel checked against the
lock's sha256 (pip's hash-checking mode, and again here). For every (CPython version, machine) pair the
wheels for manylinux_2_28 or older are fetched (cryptography's abi3 wheel once per machine, cffi's and
python-pkcs11's per version), installed with ``pip install --target`` into a staging tree, and all trees
are stored together with every file once, by content (``blobs/<sha256>``). ``cfsslpy-manifest.json``
says which files make up which pair; ``sbom.cdx.json`` is a CycloneDX SBOM of the wheels; the launcher
(``cfsslpy/launcher.py``, as ``__main__.py``) unpacks just the host's pair. See that file for where.

Builds are reproducible: the same lock and source give a byte-identical pyz (file times come from
SOURCE_DATE_EPOCH, default the HEAD commit's time; entries are sorted; modes fixed; ``--verify-reproducible``
builds twice and compares). The build tools (pip and packaging, from the lock's [tools] section) live in a
venv under ``build/``; downloaded wheels are kept in ``build/wheels/`` and reused after their hash is checked.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
LOCK = ROOT / "requirements.lock"
WHEELS = BUILD / "wheels"

SHEBANG = b"#!/usr/bin/env python3\n"
ENTRY = "cfsslpy.cli.entry:entry"
VERSIONS = ((3, 10), (3, 11), (3, 12), (3, 13), (3, 14))
MACHINES = ("x86_64", "aarch64")
GLIBC = (2, 28)  # manylinux_2_28: RHEL 8, Debian 10, Ubuntu 18.10 and newer
# What python-pkcs11's optional absence must not break is tested; its presence in the pyz is required.
REQUIRED = ("cryptography", "cffi", "bottle", "httptools", "pg8000", "python-pkcs11")
# The source tree as it is laid out in site-packages (pyproject's package-dir).
SOURCES = (("cfsslpy", "cfsslpy"), ("assets", "cfsslpy_assets"))
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can hold
MANIFEST = "cfsslpy-manifest.json"
SBOM = "sbom.cdx.json"


class BuildError(Exception):
    pass


def log(message: str) -> None:
    print(f"build.py: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, quiet: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a build step; on failure show its output and stop."""
    if "input" not in kwargs:
        kwargs["stdin"] = subprocess.DEVNULL
    result = subprocess.run(cmd, text=True, capture_output=quiet, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout + result.stderr)
        raise BuildError(f"step failed (exit {result.returncode}): {' '.join(cmd)}")
    return result  # type: ignore[no-any-return]


# -- the lock ----------------------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]
    section: str

    @property
    def line(self) -> str:
        """The pin as a hash-checking requirement line (no marker: the caller has evaluated it)."""
        return f"{self.name}=={self.version} " + " ".join(f"--hash=sha256:{h}" for h in self.hashes)


def read_lock(path: Path = LOCK) -> list[Pin]:
    """The pins of requirements.lock, in order, each with its section ([runtime] or [tools])."""
    pins = []
    section = ""
    logical = ""
    for raw in path.read_text().splitlines():
        heading = re.fullmatch(r"#\s*\[(\w+)\]\s*", raw)
        if heading:
            section = heading.group(1)
            continue
        line = "" if raw.lstrip().startswith("#") else raw.rstrip()
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        if logical.strip():
            match = re.match(
                r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.*?))?\s*((?:--hash=sha256:[0-9a-f]{64}\s*)+)$", logical
            )
            if not match or not section:
                raise BuildError(
                    f"{path.name}: cannot read this entry (expected name==version [; marker] --hash=sha256:...): {logical.strip()[:120]}"
                )
            hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", match.group(4)))
            pins.append(Pin(normalise_name(match.group(1)), match.group(2), (match.group(3) or "").strip(), hashes, section))
        logical = ""
    if not any(p.section == "runtime" for p in pins):
        raise BuildError(f"{path.name} has no [runtime] section")
    return pins


# -- targets -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One (CPython version, machine) the pyz carries, e.g. cp312-aarch64."""

    major: int
    minor: int
    machine: str

    @property
    def name(self) -> str:
        return f"cp{self.major}{self.minor}-{self.machine}"

    @property
    def platforms(self) -> list[str]:
        """pip --platform values: manylinux_2_28 and every older glibc, legacy aliases included."""
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(GLIBC[1], 16, -1)] + [f"manylinux2014_{self.machine}"]
        if self.machine == "x86_64":
            tags += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
        return tags

    def pip_target(self) -> list[str]:
        abi = f"cp{self.major}{self.minor}"
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", f"{self.major}.{self.minor}"]
        for value in (abi, "abi3", "none"):
            args += ["--abi", value]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args

    def marker_environment(self) -> dict[str, str]:
        version = f"{self.major}.{self.minor}"
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{version}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{version}.0",
            "python_version": version,
            "sys_platform": "linux",
        }


PAIRS = [Pair(major, minor, machine) for machine in MACHINES for major, minor in VERSIONS]


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str

    @property
    def tags(self) -> tuple[str, str, str]:
        python, abi, platform = self.path.name[:-4].split("-")[-3:]
        return python, abi, platform

    @property
    def shared(self) -> bool:
        """One file serves every CPython version of its machine: pure Python, or the stable ABI."""
        _, abi, _ = self.tags
        return abi in ("none", "abi3")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the build tools: pip and packaging from the lock, bootstrapped without ensurepip if need be --------------


@contextlib.contextmanager
def tools_python(pins: list[Pin]) -> Iterator[str]:
    """A venv of this interpreter with the lock's pip and packaging, reused between builds.

    Set up under an exclusive lock, used under a shared one, so concurrent builds (a test session and a
    developer) never pull it from under each other. Debian's python3 without python3-venv has no
    ensurepip: then the venv is made without pip and the locked pip wheel is fetched, hash-checked, and
    run from the wheel itself to install pip into the venv.
    """
    import fcntl

    tools = [p for p in pins if p.section == "tools" and p.name in ("pip", "packaging")]
    if len(tools) != 2:
        raise BuildError(f"{LOCK.name} must pin pip and packaging in its [tools] section")
    identity = [os.path.realpath(sys.executable), *(p.line for p in tools)]
    env_dir = BUILD / f"tools-py{sys.version_info[0]}{sys.version_info[1]}-{hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]}"
    BUILD.mkdir(exist_ok=True)
    with (BUILD / f".{env_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = env_dir / "bin" / "python"
        stamp = env_dir / "cfsslpy-tools.json"
        if not (python.exists() and stamp.exists() and json.loads(stamp.read_text()) == identity):
            _make_tools(env_dir, tools)
            stamp.write_text(json.dumps(identity))
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield str(python)


def _make_tools(env_dir: Path, tools: list[Pin]) -> None:
    shutil.rmtree(env_dir, ignore_errors=True)
    log(f"creating the build tools venv {env_dir.relative_to(ROOT)} ({', '.join(f'{p.name}=={p.version}' for p in tools)})")
    python = str(env_dir / "bin" / "python")
    requirements = env_dir / "tools.txt"
    create_venv(env_dir)
    requirements.write_text("\n".join(p.line for p in tools) + "\n")
    installer = (
        [python, "-m", "pip"] if has_ensurepip() else [python, str(fetch_pip_wheel(next(p for p in tools if p.name == "pip"))) + "/pip"]
    )
    run([*installer, "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--require-hashes", "-r", str(requirements)])


def has_ensurepip() -> bool:
    """Debian splits ensurepip out of python3 (package python3-venv); without it, venv cannot install pip."""
    import importlib.util

    return importlib.util.find_spec("ensurepip") is not None


def create_venv(directory: Path) -> None:
    """A venv of this interpreter, with pip when ensurepip can provide it (else the caller bootstraps pip)."""
    try:
        venv.EnvBuilder(with_pip=has_ensurepip(), symlinks=True).create(directory)
    except (subprocess.CalledProcessError, OSError) as exc:
        raise BuildError(f"cannot create a virtual environment in {directory}: {exc}") from exc


def fetch_pip_wheel(pin: Pin) -> Path:
    """The locked pip wheel, from the index's JSON simple API (PEP 691), checked against the lock's sha256."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    wanted = f"pip-{pin.version}-py3-none-any.whl"
    BUILD.mkdir(exist_ok=True)
    out = BUILD / wanted
    if out.exists() and sha256_file(out) in pin.hashes:
        return out
    log(f"no ensurepip here: fetching {wanted} from {index}")
    try:
        request = urllib.request.Request(f"{index}/pip/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
        url = next(f["url"] for f in files if f["filename"] == wanted)
        url = urllib.parse.urljoin(f"{index}/pip/", url)
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise BuildError(f"cannot fetch {wanted} from {index} ({exc}); install pip or python3-venv, or set PIP_INDEX_URL") from exc
    if hashlib.sha256(data).hexdigest() not in pin.hashes:
        raise BuildError(f"{wanted} from {index} does not match the sha256 in {LOCK.name}")
    out.write_bytes(data)
    return out


# -- wheels and staging ------------------------------------------------------------------------------------


def runtime_pins(python: str, pins: list[Pin]) -> dict[str, list[Pin]]:
    """Pair name -> the [runtime] pins whose markers hold for it (evaluated by packaging, in the tools venv)."""
    runtime = [p for p in pins if p.section == "runtime"]
    code = (
        "import json, sys\nfrom packaging.markers import Marker\nq = json.load(sys.stdin)\n"
        "print(json.dumps([[not m or Marker(m).evaluate(env) for m in q['markers']] for env in q['envs']]))"
    )
    query = json.dumps({"markers": [p.marker for p in runtime], "envs": [pair.marker_environment() for pair in PAIRS]})
    answers = json.loads(run([python, "-c", code], input=query).stdout)
    chosen = {pair.name: [pin for pin, keep in zip(runtime, row, strict=True) if keep] for pair, row in zip(PAIRS, answers, strict=True)}
    for pair, selected in chosen.items():
        missing = set(REQUIRED) - {p.name for p in selected}
        if missing:
            raise BuildError(f"{LOCK.name}'s [runtime] section lacks {', '.join(sorted(missing))} for {pair}")
    return chosen


def wheel_for(directory: Path, pin: Pin) -> Wheel | None:
    """The already downloaded wheel of ``pin`` in ``directory``, if one is there with a locked hash."""
    for path in sorted(directory.glob("*.whl")):
        dist, version = path.name.split("-")[:2]
        if normalise_name(dist) == pin.name and version == pin.version:
            digest = sha256_file(path)
            if digest in pin.hashes:
                return Wheel(path, digest)
    return None


def fetch_wheels(python: str, chosen: dict[str, list[Pin]]) -> dict[str, list[Wheel]]:
    """Pair name -> its wheels. Pure and abi3 wheels are fetched once per machine, for its oldest version."""
    wheels: dict[str, list[Wheel]] = {}
    shared: dict[tuple[str, str], Wheel] = {}  # (machine, distribution) -> a wheel that serves every version
    for pair in PAIRS:
        directory = WHEELS / pair.name
        directory.mkdir(parents=True, exist_ok=True)
        have: dict[str, Wheel] = {}
        wanted = []
        for pin in chosen[pair.name]:
            found = shared.get((pair.machine, pin.name)) or wheel_for(directory, pin)
            if found:
                have[pin.name] = found
            else:
                wanted.append(pin)
        if wanted:
            log(f"fetching {len(wanted)} wheel(s) for {pair.name}: {', '.join(f'{p.name}=={p.version}' for p in wanted)}")
            requirements = directory / "requirements.txt"
            requirements.write_text("\n".join(p.line for p in wanted) + "\n")
            run(
                [
                    python,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--require-hashes",
                    "--dest",
                    str(directory),
                    *pair.pip_target(),
                    "-r",
                    str(requirements),
                ]
            )
            requirements.unlink()
            for pin in wanted:
                found = wheel_for(directory, pin)
                if not found:
                    raise BuildError(f"pip fetched no wheel of {pin.name}=={pin.version} for {pair.name} matching {LOCK.name}")
                have[pin.name] = found
        for name, wheel in have.items():
            if wheel.shared:
                shared.setdefault((pair.machine, name), wheel)
        wheels[pair.name] = [have[p.name] for p in chosen[pair.name]]
    return wheels


def install(python: str, pair: Pair, wheels: list[Wheel], site: Path) -> None:
    """pip install --target of exactly these wheels (no index, no dependencies, no .pyc: compiled on first use)."""
    run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--target",
            str(site),
            *pair.pip_target(),
            *(str(w.path) for w in wheels),
        ]
    )
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with this machine's shebang
    for info in site.glob("*.dist-info"):
        (info / "direct_url.json").unlink(missing_ok=True)  # the absolute path of build/wheels
        record = info / "RECORD"
        if record.exists():  # drop what was removed (bin/ scripts, direct_url.json)
            kept = [line for line in record.read_text().splitlines() if _recorded(site, line.rsplit(",", 2)[0])]
            record.write_text("\n".join(kept) + "\n")
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)


def _recorded(site: Path, name: str) -> bool:
    path = os.path.normpath(site / name)
    return path.startswith(str(site) + os.sep) and os.path.exists(path)


def source_files() -> dict[str, Path]:
    """cfsslpy's own files as they sit in site-packages (relative path -> file in the checkout)."""
    files = {}
    for checkout, package in SOURCES:
        for path in sorted((ROOT / checkout).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                files[f"{package}/{path.relative_to(ROOT / checkout).as_posix()}"] = path
    return files


@dataclass
class Layout:
    """Every file of every pair, stored once by content."""

    blobs: dict[str, Path] = field(default_factory=dict)  # sha256 -> a file with that content
    trees: dict[str, dict[str, tuple[str, int, int]]] = field(default_factory=dict)  # pair -> rel -> (sha, size, x)

    def add(self, pair: str, rel: str, path: Path) -> None:
        digest = sha256_file(path)
        self.blobs.setdefault(digest, path)
        executable = 1 if path.stat().st_mode & stat.S_IXUSR else 0
        self.trees.setdefault(pair, {})[rel] = (digest, path.stat().st_size, executable)

    def split(self) -> tuple[list[list[object]], dict[str, list[list[object]]]]:
        """(files identical in every pair, each pair's other files), each sorted by path."""
        first, *rest = self.trees.values()
        common = {rel: entry for rel, entry in first.items() if all(tree.get(rel) == entry for tree in rest)}
        own = {pair: sorted([rel, *entry] for rel, entry in tree.items() if rel not in common) for pair, tree in self.trees.items()}
        return sorted([rel, *entry] for rel, entry in common.items()), own


# -- the pyz -----------------------------------------------------------------------------------------------


def source_date_epoch() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return max(int(os.environ["SOURCE_DATE_EPOCH"]), ZIP_EPOCH)
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=True).stdout
        return max(int(out.strip()), ZIP_EPOCH)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return ZIP_EPOCH


def project_version() -> str:
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', (ROOT / "cfsslpy" / "__init__.py").read_text(), re.M)
    if not match:
        raise BuildError("cfsslpy/__init__.py has no __version__")
    return match.group(1)


def sbom(version: str, build_id: str, epoch: int, wheels: dict[str, list[Wheel]], pins: dict[str, Pin]) -> dict[str, object]:
    """A CycloneDX 1.6 SBOM: cfsslpy, and one component per bundled wheel file with its sha256 and pairs."""
    by_file: dict[str, tuple[Wheel, list[str]]] = {}
    for pair, files in wheels.items():
        for wheel in files:
            by_file.setdefault(wheel.path.name, (wheel, []))[1].append(pair)
    components = []
    for filename, (wheel, pairs) in sorted(by_file.items()):
        name = normalise_name(filename.split("-")[0])
        pin = pins[name]
        purl = f"pkg:pypi/{name}@{pin.version}?file_name={filename}"
        components.append(
            {
                "type": "library",
                "bom-ref": purl,
                "name": name,
                "version": pin.version,
                "purl": purl,
                "hashes": [{"alg": "SHA-256", "content": wheel.sha256}],
                "properties": [{"name": "cfsslpy:pairs", "value": " ".join(sorted(pairs))}],
            }
        )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'cfsslpy-build:' + build_id)}",
        "version": 1,
        "metadata": {
            "timestamp": stamp,
            "component": {"type": "application", "bom-ref": "cfsslpy", "name": "cfsslpy", "version": version},
            "properties": [{"name": "cfsslpy:build_id", "value": build_id}],
        },
        "components": components,
        "dependencies": [{"ref": "cfsslpy", "dependsOn": [c["bom-ref"] for c in components]}],
    }


def write_pyz(out: Path, launcher: bytes, documents: dict[str, bytes], blobs: dict[str, Path], epoch: int) -> None:
    """The zipapp, atomically: shebang, __main__.py, the manifest and SBOM, then every blob, sorted."""
    date_time = time.gmtime(epoch)[:6]
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    tmp = Path(name)
    try:
        with os.fdopen(handle, "wb") as fd:
            fd.write(SHEBANG)
            with zipfile.ZipFile(fd, "w") as archive:
                entries = [("__main__.py", launcher), *sorted(documents.items())]
                entries += [(f"blobs/{digest}", blobs[digest]) for digest in sorted(blobs)]  # type: ignore[misc]
                for entry, content in entries:
                    info = zipfile.ZipInfo(entry, date_time=date_time)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3
                    info.external_attr = (stat.S_IFREG | 0o644) << 16
                    data = content.read_bytes() if isinstance(content, Path) else content
                    if entry.startswith("blobs/") and hashlib.sha256(data).hexdigest() != entry[6:]:
                        raise BuildError(f"{entry} changed during the build")
                    archive.writestr(info, data, compresslevel=9)
        tmp.chmod(0o755)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def build(out: Path) -> Path:
    started = time.monotonic()
    pins = read_lock()
    with tools_python(pins) as python, tempfile.TemporaryDirectory(dir=BUILD, prefix="stage-") as stage:
        notes = _build(python, pins, Path(stage), out)
    digest = sha256_file(out)
    log(
        f"built {display(out)} for {len(PAIRS)} targets (CPython 3.10-3.14 x {'/'.join(MACHINES)}, glibc >= {GLIBC[0]}.{GLIBC[1]}) in {time.monotonic() - started:.1f}s"
    )
    log(f"  size {out.stat().st_size / 1e6:.1f} MB, sha256 {digest}")
    for note in notes:
        log(f"  {note}")
    return out


def _build(python: str, pins: list[Pin], stage: Path, out: Path) -> list[str]:
    chosen = runtime_pins(python, pins)
    wheels = fetch_wheels(python, chosen)
    layout = Layout()
    # A snapshot of the checkout, so that an edit during the build cannot make a blob differ from its hash.
    ours = {}
    for rel, path in source_files().items():
        copy = stage / "source" / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
        ours[rel] = copy
    for pair in PAIRS:
        site = stage / pair.name
        install(python, pair, wheels[pair.name], site)
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            layout.add(pair.name, path.relative_to(site).as_posix(), path)
        for rel, path in ours.items():
            if rel in layout.trees[pair.name]:
                raise BuildError(f"{rel} is both cfsslpy's and a dependency's")
            layout.add(pair.name, rel, path)
    common, own = layout.split()
    version = project_version()
    epoch = source_date_epoch()
    manifest: dict[str, object] = {
        "format": 1,
        "name": "cfsslpy",
        "version": version,
        "glibc": list(GLIBC),
        "entry": ENTRY,
        "pairs": own,
        "common": common,
        "wheels": {pair: [[w.path.name, w.sha256] for w in files] for pair, files in sorted(wheels.items())},
    }
    template = (ROOT / "cfsslpy" / "launcher.py").read_text()
    if template.count("\nBUNDLE = {}") != 1:
        raise BuildError("cfsslpy/launcher.py has no 'BUNDLE = {}' line to fill in")
    # The build id is the hash of everything that decides behaviour: the launcher and every file of every pair.
    build_id = hashlib.sha256(template.encode() + json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    manifest["build_id"] = build_id
    bundle = {"build_id": build_id, "version": version, "pairs": sorted(own), "glibc": list(GLIBC), "entry": ENTRY}
    launcher = template.replace("\nBUNDLE = {}", "\nBUNDLE = " + json.dumps(bundle, sort_keys=True), 1).encode()
    by_name = {p.name: p for p in pins if p.section == "runtime"}
    documents = {
        MANIFEST: json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(),
        SBOM: json.dumps(sbom(version, build_id, epoch, wheels, by_name), indent=1, sort_keys=True).encode(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    used = {entry[1] for entry in common} | {entry[1] for files in own.values() for entry in files}
    write_pyz(out, launcher, documents, {d: p for d, p in layout.blobs.items() if d in used}, epoch)
    unpacked = {pair: sum(int(e[2]) for e in common) + sum(int(e[2]) for e in files) for pair, files in own.items()}  # type: ignore[call-overload]
    bundled = sorted({f"{p.name}=={p.version}" for chosen_pins in chosen.values() for p in chosen_pins})
    return [
        f"build id {build_id[:16]}, SOURCE_DATE_EPOCH={epoch}",
        f"bundled: {', '.join(bundled)}",
        f"{len(common)} files shared by all targets, {sum(len(f) for f in own.values())} target-specific, {len(used)} distinct",
        f"unpacked per target: {min(unpacked.values()) / 1e6:.1f}-{max(unpacked.values()) / 1e6:.1f} MB",
    ]


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- smoke test / demo -------------------------------------------------------------------------------------

# Run with the pyz's unpacked libraries (see demo), so it uses the bundled cryptography and needs nothing on the host.
VERIFY = r"""
import sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

d = Path(sys.argv[1])


def describe(key):
    curve = getattr(key, "curve", None)
    return f"ECDSA {curve.name}" if curve else f"{type(key).__name__.replace('PrivateKey', '')} {getattr(key, 'key_size', '')}".strip()


for name in sys.argv[2:]:
    cert = x509.load_pem_x509_certificate((d / f"{name}.pem").read_bytes())
    key = serialization.load_pem_private_key((d / f"{name}-key.pem").read_bytes(), None)
    csr = x509.load_pem_x509_csr((d / f"{name}.csr").read_bytes())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers(), f"{name}: key does not match cert"
    assert csr.is_signature_valid and csr.public_key().public_numbers() == cert.public_key().public_numbers()
    is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    if name == "ca":
        assert is_ca and cert.issuer == cert.subject, "ca.pem is not a self-signed CA"
        cert.verify_directly_issued_by(cert)
        ca = cert
    else:
        assert not is_ca and cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in eku, "no serverAuth"
    try:
        sans = ", ".join(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        sans = ""
    print(f"  {name}.pem  {'CA' if is_ca else 'leaf'}  subject {cert.subject.rfc4514_string()}  issuer CN={cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value}"
          f"  {describe(key)}  until {cert.not_valid_after_utc:%Y-%m-%d}" + (f"  DNS: {sans}" if sans else ""))
"""


def demo(pyz: Path, python: str, directory: Path, env: dict[str, str]) -> list[str]:
    """The main job on embedded defaults: CA + server certificate, split into files; returns summary lines."""

    def cfssl(*args: str, stdin: str | None = None, extra: dict[str, str] | None = None) -> str:
        cmd = [python, str(pyz), *args]
        result = subprocess.run(cmd, input=stdin or "", capture_output=True, text=True, cwd=directory, env={**env, **(extra or {})})
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise BuildError(f"smoke step failed (exit {result.returncode}): cfsslpy {' '.join(args)}")
        if "Traceback" in result.stderr:
            raise BuildError(f"traceback from: cfsslpy {' '.join(args)}\n{result.stderr}")
        return result.stdout

    version = cfssl("version")
    if "Version:" not in version:
        raise BuildError(f"unexpected version output: {version!r}")
    defaults = cfssl("print-defaults", "csr")
    (directory / "csr.json").write_text(defaults)
    ca_csr = json.loads(defaults)
    ca_csr["CN"] = "cfsslpy demo CA"
    ca_csr.pop("hosts", None)
    (directory / "ca-csr.json").write_text(json.dumps(ca_csr, indent=4) + "\n")
    cfssl("json-split", "-bare", "ca", stdin=cfssl("gencert", "-initca", "ca-csr.json"))
    cfssl("json-split", "-bare", "server", stdin=cfssl("gencert", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "csr.json"))
    # The executable checks its own unpacked files, and says where they are: VERIFY runs with those
    # libraries, so it needs nothing installed on the host either.
    site = Path(json.loads(cfssl("selfcheck"))["unpacked"]) / "site-packages"
    result = subprocess.run(
        [python, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); exec(sys.stdin.read())", str(directory), "ca", "server"],
        input=VERIFY,
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise BuildError(f"the demo's certificates did not verify:\n{result.stderr}")
    return [version.splitlines()[0], *result.stdout.splitlines()]


# The API refuses the content types a web page can send cross-site (text/plain, form encodings): say JSON.
JSON_HEADERS = {"Content-Type": "application/json"}


def serve_smoke(pyz: Path, python: str, directory: Path, env: dict[str, str]) -> str:
    """``serve -datadir`` from the pyz (its bundled HTTP server) on a free loopback port: sign the demo's CSR,
    then stop it with SIGTERM, which must exit 0. Returns the issuer of the signed certificate."""
    import signal
    import urllib.request

    cmd = [python, str(pyz), "serve", "-address", "127.0.0.1", "-port", "0", "-datadir", str(directory / "serve-data")]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=directory, env=env
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"Now listening on (http://\S+)", line)
            url = found.group(1) if found else ""
        if not url:
            raise BuildError("serve did not start:\n" + "".join(lines))
        body = json.dumps({"certificate_request": (directory / "server.csr").read_text()}).encode()
        request = urllib.request.Request(url + "/api/v1/cfssl/sign", data=body, method="POST", headers=JSON_HEADERS)
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = json.loads(resp.read())
        if not answer.get("success") or "BEGIN CERTIFICATE" not in answer["result"]["certificate"]:
            raise BuildError(f"serve did not sign: {answer}")
        revoke_and_crl(pyz, python, url, answer["result"]["certificate"], directory / "serve-data", env)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise BuildError(f"serve exited {proc.returncode} after SIGTERM:\n" + "".join(lines) + rest)
        return url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def revoke_and_crl(pyz: Path, python: str, url: str, cert_pem: str, datadir: Path, env: dict[str, str]) -> None:
    """The certdb in the single file: the certificate serve signed is recorded (SQLite, read here with the
    standard library), ``/revoke`` marks it revoked and ``/crl`` returns a DER CRL."""
    import base64
    import sqlite3
    import urllib.request

    info = json.loads(
        subprocess.run(
            [python, str(pyz), "certinfo", "-cert", "-"], input=cert_pem, capture_output=True, text=True, check=True, env=env
        ).stdout
    )
    serial, aki = info["serial_number"], info["authority_key_id"].replace(":", "").lower()
    body = json.dumps({"serial": serial, "authority_key_id": aki, "reason": "superseded"}).encode()
    revoke = urllib.request.Request(url + "/api/v1/cfssl/revoke", data=body, method="POST", headers=JSON_HEADERS)
    with urllib.request.urlopen(revoke, timeout=30) as resp:
        if not json.loads(resp.read()).get("success"):
            raise BuildError("serve did not revoke the certificate it signed")
    with urllib.request.urlopen(url + "/api/v1/cfssl/crl", timeout=30) as resp:
        crl = base64.b64decode(json.loads(resp.read())["result"])
    if not crl.startswith(b"\x30"):
        raise BuildError("serve's /crl did not return a DER CRL")
    conn = sqlite3.connect(datadir / "certs.db")
    try:
        rows = conn.execute("SELECT status, reason FROM certificates WHERE serial_number = ?", (serial,)).fetchall()
    finally:
        conn.close()
    if rows != [("revoked", 4)]:
        raise BuildError(f"certdb record of the signed certificate: {rows}")


def smoke(pyz: Path, python: str) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cfsslpy-smoke-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        # A fresh cache: the first command exercises extraction, the rest the warm start.
        env = {**os.environ, "SHIV_ROOT": str(Path(tmp) / "cache")}
        lines = demo(pyz, python, work, env)
        try:
            serve_smoke(pyz, python, work, env)
        except OSError as exc:  # urllib's HTTPError and URLError included
            detail = exc.read().decode(errors="replace")[:500] if hasattr(exc, "read") else ""
            raise BuildError(f"serve smoke test: {exc} {detail}".rstrip()) from None
    log(
        f"smoke test passed in {time.monotonic() - started:.1f}s: {lines[0]}; CA and server certificate verified; serve signed, recorded, revoked and listed in a CRL over HTTP"
    )


def run_demo(pyz: Path, python: str, directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BuildError(f"{directory} is not empty; --demo wants a fresh directory")
    directory.mkdir(parents=True, exist_ok=True)
    lines = demo(pyz, python, directory, dict(os.environ))
    print(f"{display(pyz)}: {lines[0]}")
    print(f"issued into {display(directory)}/ with the embedded default CSR ({display(pyz)} print-defaults csr):")
    for line in lines[1:]:
        print(line)
    print("files:")
    for path in sorted(directory.iterdir()):
        mode = stat.S_IMODE(path.stat().st_mode)
        print(f"  {path.name:<16} {mode:04o}  {path.stat().st_size:>5} bytes")
    print(
        f"next: {display(pyz)} sign -ca {display(directory)}/ca.pem -ca-key {display(directory)}/ca-key.pem other.csr | {display(pyz)} json-split -bare other"
    )


SERVE_ADDRESS = "127.0.0.1"


def check_port_free(port: int, address: str = SERVE_ADDRESS) -> None:
    """BuildError unless ``address:port`` can be listened on now: checked before the build and again before
    anything is created for ``--serve``, so a busy port fails in a second, with nothing made."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
        try:
            probe.bind((address, port))
            probe.listen(1)
        except OSError as exc:
            raise BuildError(
                f"--serve: cannot listen on {address}:{port} ({exc.strerror or exc}); "
                f"stop what uses it or pick another port with --port (nothing was created)"
            ) from None


def port_number(text: str) -> int:
    """``--port``: 1 .. 65535."""
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def run_serve(pyz: Path, python: str, directory: Path, port: int = 8888) -> None:
    """Start ``serve -datadir DIR`` on 127.0.0.1:``port`` in place of this process, after printing how to use it.

    The port is checked first: when it is busy nothing is created. The first run creates DIR (0700) with a
    CA and a signing config (serve does that); this also writes an example CSR, its key and a sign request
    into DIR/example/ so that one curl signs something right away.
    """
    check_port_free(port)
    url = f"http://{SERVE_ADDRESS}:{port}"
    example = directory / "example"
    request = example / "sign-request.json"
    if not request.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        example.mkdir(mode=0o700, exist_ok=True)
        csr_json = subprocess.run([python, str(pyz), "print-defaults", "csr"], capture_output=True, text=True, check=True).stdout
        generated = subprocess.run([python, str(pyz), "genkey", "-"], input=csr_json, capture_output=True, text=True, check=True).stdout
        subprocess.run([python, str(pyz), "json-split", "-bare", str(example / "example")], input=generated, text=True, check=True)
        request.write_text(json.dumps({"certificate_request": json.loads(generated)["csr"]}) + "\n")
    shown = display(directory)
    print(f"{display(pyz)} serve -datadir {shown}   (CA created on the first run; Ctrl-C stops it)")
    print("sign a CSR (an example one is in " + f"{shown}/example/):")
    print(f"  curl -s -H 'Content-Type: application/json' -d @{display(request)} {url}/api/v1/cfssl/sign")
    print("or have the server make the key and CSR too:")
    print(
        """  curl -s -H 'Content-Type: application/json' -d '{"request":{"CN":"www.example.net","hosts":["www.example.net"],"key":{"algo":"ecdsa","size":256}}}' """
        f"{url}/api/v1/cfssl/newcert"
    )
    print("revoke it (serial and authority key id as 'certinfo -cert' prints them), then fetch the CRL:")
    print(
        """  curl -s -H 'Content-Type: application/json' -d '{"serial":"SERIAL","authority_key_id":"AKI-HEX","reason":"keyCompromise"}' """
        f"{url}/api/v1/cfssl/revoke"
    )
    print(f"  curl -s {url}/api/v1/cfssl/crl")
    sys.stdout.flush()
    os.execv(python, [python, str(pyz), "serve", "-address", SERVE_ADDRESS, "-port", str(port), "-datadir", str(directory)])


def make_venv(directory: Path) -> None:
    """The locked test environment: a venv of this interpreter with the whole of requirements.lock
    (hash-checked) and cfsslpy installed editable. Works without ensurepip, like the build tools venv."""
    pins = read_lock()
    python = directory / "bin" / "python"
    if not python.exists():
        log(f"creating {display(directory)}")
        create_venv(directory)
        if not has_ensurepip():  # bootstrap the locked pip from its wheel
            wheel = fetch_pip_wheel(next(p for p in pins if p.name == "pip"))
            pip_line = next(p for p in pins if p.name == "pip").line
            with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
                requirements.write(pip_line + "\n")
                requirements.flush()
                run([str(python), f"{wheel}/pip", "install", "--quiet", "--no-deps", "--require-hashes", "-r", requirements.name])
    log(f"installing {LOCK.name} (hash-checked) and cfsslpy (editable) into {display(directory)}")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "--require-hashes", "-r", str(LOCK)], quiet=False)
    # Output only on failure: setuptools warns about every editable install.
    run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python3 build.py --demo demo",
    )
    parser.add_argument("--out", type=Path, help="output file (default: dist/cfsslpy.pyz)")
    parser.add_argument("--skip-smoke", action="store_true", help="do not run the built pyz afterwards")
    parser.add_argument(
        "--demo",
        "--run-demo",
        dest="run_demo",
        type=Path,
        metavar="DIR",
        help="after building, issue a CA and a server certificate into the fresh directory DIR",
    )
    parser.add_argument(
        "--serve",
        type=Path,
        metavar="DIR",
        help="after building, run 'serve -datadir DIR' on 127.0.0.1:PORT (a CA is created in DIR on the first run)",
    )
    parser.add_argument(
        "--port", type=port_number, default=8888, help="the port --serve listens on (default 8888); checked to be free before the build"
    )
    parser.add_argument("--verify-reproducible", action="store_true", help="build twice and fail unless both outputs are byte-identical")
    parser.add_argument("--venv", type=Path, metavar="DIR", help="only make the locked test environment in DIR (no build)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    python = sys.executable
    try:
        if sys.version_info < (3, 10):  # noqa: UP036 - said plainly to whoever runs it with an older python3
            raise BuildError(f"build.py needs CPython >= 3.10; this is {sys.version.split()[0]}")
        if args.venv:
            make_venv(args.venv.absolute())
            log(f"done in {time.monotonic() - started:.1f}s: {display(args.venv)}/bin/python -m pytest")
            return 0
        if args.serve:  # a busy port fails now, not after a build and a new CA
            check_port_free(args.port)
        elif args.port != 8888:
            raise BuildError("--port is for --serve")
        out: Path = (args.out or DIST / "cfsslpy.pyz").absolute()
        BUILD.mkdir(exist_ok=True)
        build(out)
        if args.verify_reproducible:
            first = sha256_file(out)
            again = build(out.with_name(out.name + ".again"))
            second = sha256_file(again)
            again.unlink()
            if first != second:
                raise BuildError(f"not reproducible: {first} != {second}")
            log(f"reproducible: two builds are byte-identical (sha256 {first})")
        if args.serve:
            run_serve(out, python, args.serve.absolute(), args.port)  # does not return
        if args.run_demo:
            run_demo(out, python, args.run_demo.absolute())
        elif not args.skip_smoke:
            smoke(out, python)
    except BuildError as exc:
        log(f"error: {exc}")
        return 1
    log(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
