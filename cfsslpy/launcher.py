# ruff: noqa: UP031  (percent formatting: this file must parse on old interpreters to refuse them in one line)
"""The single executable's ``__main__.py``: pick this host's compiled parts, unpack them once, start cfsslpy.

build.py copies this file into ``dist/cfsslpy.pyz`` as ``__main__.py`` with the ``BUNDLE = {}`` line filled
in. The pyz holds every file once, named by its sha256 (``blobs/<sha256>``), and ``cfsslpy-manifest.json``
lists, per (CPython version, machine) pair such as ``cp312-aarch64``, which files make up its
site-packages: the pure-Python files shared by all pairs, and each pair's own compiled modules (cffi's and
python-pkcs11's per-version extensions, cryptography's abi3 library per machine).

On the first run for a pair the launcher unpacks that pair alone into a private cache directory,
checking every file's sha256 as it writes it, and renames the finished directory into place (so a
concurrent first run, a crash or a full disk never leave a half-unpacked tree that looks complete). Later
runs find ``.complete`` there, check that every listed file is still present with its size (tmp cleaners
delete files one by one), and start at once; an incomplete tree is unpacked again.

Where: ``SHIV_ROOT`` if set (and nowhere else), otherwise the first usable of ``$XDG_CACHE_HOME/cfsslpy``,
``~/.cache/cfsslpy``, ``$XDG_RUNTIME_DIR/cfsslpy``, ``$TMPDIR``, ``/var/tmp``, ``/tmp`` and ``/dev/shm``
(each ``.../cfsslpy-<uid>`` for the shared ones). Usable means: a directory owned by this user with mode
0700 (created so), on a filesystem that is not mounted noexec, from which a compiled module really loads.
Caches of other builds not used for a day are removed.

Kept to what Python 2.7 and 3.6 can parse and start, and to os/sys/stat/time at warm start, so that an unsupported
interpreter gets the one-line message below rather than a SyntaxError, and a warm start costs nothing
measurable.
"""

import os
import stat
import sys
import time

BUNDLE = {}  # filled in by build.py: build_id, version, pairs, glibc, entry

SUPPORTED = "CPython 3.10-3.14 on Linux x86_64 or aarch64 with glibc >= %d.%d"
MANIFEST = "cfsslpy-manifest.json"
COMPLETE = ".complete"
PRUNE_AFTER = 24 * 3600  # seconds: other builds' caches unused this long are removed
TOUCH_EVERY = 3600  # seconds: how often a warm start records that its cache is in use


def _fail(message):
    sys.stderr.write("cfsslpy: " + message + "\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _pair():
    """This host's pair name (``cp312-x86_64``), or exit with the one line that says what is supported."""
    glibc = tuple(BUNDLE.get("glibc") or (2, 28))
    supported = SUPPORTED % glibc
    impl = getattr(sys, "implementation", None)
    impl = impl.name if impl else "python"  # Python 2 has no sys.implementation
    machine = os.uname()[4] if hasattr(os, "uname") else "unknown"
    here = "%s %d.%d on %s %s" % (impl, sys.version_info[0], sys.version_info[1], sys.platform, machine)
    pair = "cp%d%d-%s" % (sys.version_info[0], sys.version_info[1], machine)
    if "t" in getattr(sys, "abiflags", ""):  # free-threaded 3.13t/3.14t: another ABI, no wheels of it here
        here = here.replace(" on ", " (free-threaded) on ", 1)
        pair = None
    if impl != "cpython" or not sys.platform.startswith("linux") or pair not in BUNDLE.get("pairs", ()):
        _fail("this executable runs on %s; this is %s" % (supported, here))
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        ok = name == "glibc" and tuple(int(x) for x in version.split(".")[:2]) >= glibc
    except (AttributeError, ValueError, OSError):  # musl and other C libraries have no such name
        name, version, ok = "a C library other than glibc", "", False
    if not ok:
        _fail("this executable runs on %s; this is %s with %s %s" % (supported, here, name, version))
    return pair


def _candidates():
    uid = os.geteuid()
    roots = []
    cache = os.environ.get("XDG_CACHE_HOME")
    if cache and os.path.isabs(cache):
        roots.append(os.path.join(cache, "cfsslpy"))
    home = os.environ.get("HOME")
    if home and os.path.isabs(home) and home != "/":
        roots.append(os.path.join(home, ".cache", "cfsslpy"))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        roots.append(os.path.join(runtime, "cfsslpy"))
    for tmp in (os.environ.get("TMPDIR"), "/var/tmp", "/tmp", "/dev/shm"):
        if tmp and os.path.isabs(tmp):
            root = os.path.join(tmp, "cfsslpy-%d" % uid)
            if root not in roots:
                roots.append(root)
    return roots


def _noexec(path):
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_NOEXEC", 8))
    except OSError:
        return False


def _private(root, create):
    """None if ``root`` is a directory of this user alone (creating it 0700 when asked), else why not."""
    if create:
        parent = os.path.dirname(root)
        try:
            if not os.path.isdir(parent):  # ~/.cache or $XDG_CACHE_HOME; never HOME or anything above it
                os.mkdir(parent, 0o700)
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            return "cannot create it (%s)" % (exc.strerror or exc)
    try:
        st = os.lstat(root)
    except OSError as exc:
        return "cannot use it (%s)" % (exc.strerror or exc)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_uid != os.geteuid():
        return "owned by another user"
    if st.st_mode & 0o077:
        return "readable or writable by others (mode %04o; it must be 0700)" % stat.S_IMODE(st.st_mode)
    if not os.access(root, os.W_OK | os.X_OK):
        return "not writable"
    if _noexec(root):
        return "on a filesystem mounted noexec"
    return None


def _complete(tree):
    """True if ``tree`` was fully unpacked and every file is still there with its size."""
    site = tree + "/site-packages/"
    stat_ = os.stat
    try:
        with open(os.path.join(tree, COMPLETE), encoding="utf-8") as listing:
            lines = listing.read().splitlines()
        if not lines or lines[0] != BUNDLE["build_id"]:
            return False
        for line in lines[1:]:  # about 1,000 files: 3 ms, the price of noticing a tmp cleaner's work
            size, _, rel = line.partition(" ")
            if stat_(site + rel).st_size != int(size):
                return False
    except (OSError, ValueError):
        return False
    return True


def _remove(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _prune(root, keep):
    """Remove other builds' caches unused for PRUNE_AFTER, and unpack attempts abandoned an hour ago."""
    now = time.time()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for entry in names:
        path = os.path.join(root, entry)
        if entry == keep or not entry.startswith(("cfsslpy-", ".tmp-cfsslpy-")):
            continue
        try:
            marker = os.path.join(path, COMPLETE)
            used = os.stat(marker if os.path.exists(marker) else path).st_mtime
        except OSError:
            continue
        if now - used > (3600 if entry.startswith(".tmp-") else PRUNE_AFTER):
            _remove(path)


def _unpack(root, name, pair, pyz):
    """Unpack ``pair``'s files from the pyz into ``root/name``; returns the tree (or raises OSError)."""
    import hashlib
    import json
    import zipfile

    tree = os.path.join(root, name)
    work = os.path.join(root, ".tmp-%s-%d-%s" % (name, os.getpid(), os.urandom(4).hex()))
    os.mkdir(work, 0o700)
    try:
        site = os.path.join(work, "site-packages")
        listing = [BUNDLE["build_id"]]
        with zipfile.ZipFile(pyz) as archive:
            manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
            if manifest.get("build_id") != BUNDLE["build_id"]:
                raise OSError("the manifest inside %s is not this build's" % pyz)
            made = set()
            for rel, digest, size, executable in manifest["common"] + manifest["pairs"][pair]:
                data = archive.read("blobs/" + digest)
                if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
                    raise OSError("%s is damaged: %s does not match its sha256" % (pyz, rel))
                path = os.path.join(site, *rel.split("/"))
                folder = os.path.dirname(path)
                if folder not in made:
                    os.makedirs(folder, 0o755, exist_ok=True)
                    made.add(folder)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                listing.append("%d %s" % (size, rel))
        with open(os.path.join(work, COMPLETE), "w", encoding="utf-8") as out:
            out.write("\n".join(listing) + "\n")
        try:
            os.rename(work, tree)
        except OSError:
            if _complete(tree):  # a concurrent first run won the race: use its tree
                _remove(work)
                return tree
            stale = tree + ".stale-%d" % os.getpid()
            os.rename(tree, stale)  # an incomplete tree from earlier (tmp cleaner, crash): replace it
            os.rename(work, tree)
            _remove(stale)
        return tree
    except BaseException:
        _remove(work)
        raise


def _loads(tree):
    """None if a compiled module of the tree loads here (no noexec, SELinux or fapolicyd refusal), else why."""
    site = os.path.join(tree, "site-packages")
    sys.path.insert(0, site)
    try:
        import _cffi_backend  # noqa: F401
    except ImportError as exc:
        return str(exc).split(": ")[-1] or "compiled modules do not load from it"
    finally:
        sys.path.remove(site)
    return None


def _tree(pair, pyz):
    name = "cfsslpy-%s-%s" % (BUNDLE["build_id"][:16], pair)
    explicit = os.environ.get("SHIV_ROOT")
    roots = [os.path.abspath(os.path.expanduser(explicit))] if explicit else _candidates()
    for root in roots:  # warm start: an earlier run unpacked this build for this pair
        tree = os.path.join(root, name)
        if os.path.isdir(tree) and _private(root, False) is None and _complete(tree):
            try:
                if time.time() - os.stat(os.path.join(tree, COMPLETE)).st_mtime > TOUCH_EVERY:
                    os.utime(os.path.join(tree, COMPLETE))
                    _prune(root, name)
            except OSError:
                pass
            return tree
    problems = []
    for root in roots:  # first run (or a damaged cache): unpack into the first usable root
        why = _private(root, True)
        if why is None:
            try:
                tree = _unpack(root, name, pair, pyz)
            except OSError as exc:
                why = "cannot unpack there (%s)" % (exc.strerror or exc)
            else:
                why = _loads(tree)
                if why is None:
                    _prune(root, name)
                    return tree
                _remove(tree)
                why = "compiled modules do not load from it (%s)" % why
        problems.append("%s: %s" % (root, why))
        if explicit:
            break
    _fail(
        "no usable directory to unpack the bundled libraries (%s); set SHIV_ROOT to a directory of yours, mode 0700, "
        "on a filesystem that allows executing files" % "; ".join(problems)
    )


def main():
    if not BUNDLE:
        _fail("this launcher runs only inside the executable that build.py makes")
    pair = _pair()
    pyz = os.path.dirname(os.path.abspath(__file__))
    tree = _tree(pair, pyz)
    # The bytecode of the unpacked tree is cached next to it on first import, even where the environment says
    # PYTHONDONTWRITEBYTECODE (as many container images do): the tree is ours, and without the cache every
    # run would compile cryptography and cfsslpy again (three times the start-up of a warm run).
    sys.dont_write_bytecode = False
    sys.path.insert(0, os.path.join(tree, "site-packages"))
    global CFSSLPY_BUNDLE
    CFSSLPY_BUNDLE = {"pyz": pyz, "tree": tree, "pair": pair, "build_id": BUNDLE["build_id"]}  # for `selfcheck`
    module, _, attr = BUNDLE["entry"].partition(":")
    __import__(module)
    getattr(sys.modules[module], attr)()


if __name__ == "__main__":
    main()
