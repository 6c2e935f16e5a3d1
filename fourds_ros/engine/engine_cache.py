"""The engine cache: where exported ONNX files and TensorRT engines live, how they are keyed, and
how they are written (atomically, so a crash or a second process never leaves half a file).

Layout under the cache directory:
  onnx/<checkpoint key>/model.onnx (+ model.onnx.data for large models, + model.fused.onnx, model.int8.onnx)
  tensorrt/<engine key>.engine and tensorrt/timing-<gpu key>.cache
Every graph and engine has a sidecar `<file>.sha256` (sha256sum format: one "<hex>  <name>" line per
file, the graph's external data included) written after it and checked before it is used. A graph made
from model.onnx (model.fused.onnx, model.int8.onnx) also has `<file>.source`: a copy of model.onnx's
sidecar when it was made, so it is made again only when model.onnx's bytes changed. A process that
exports or builds one holds an flock on a dot-named lock file beside it (build_lock), so a second
process starting at once waits for it and uses it instead of building it too.

What is in the cache gets executed (a graph decides what the node publishes), so the cache root
must be private: secure_cache_dir creates it 0700 and refuses one that is group- or world-writable
or owned by another user, falling back to a private temporary directory with a WARNING. Root's is
accepted (when not group- or world-writable): root already owns the interpreter and the package,
and a cache prebuilt in a Docker image's root build step is read by the image's runtime user, once
it is readable (`chmod -R a+rX`: the cache makes its folders 0700 and most files 0600); one with an
entry this process cannot read falls back the same way.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .base import EngineError

log = logging.getLogger(__name__)

CACHE_ENV = "FOURDS_ROS_CACHE_DIR"


class CacheDirError(EngineError):
    """The cache directory is missing and cannot be created, or cannot be written."""


def default_cache_dir() -> Path:
    """$FOURDS_ROS_CACHE_DIR, else ~/.cache/fourds_ros/engines."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "fourds_ros" / "engines"


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` (mode 0700) if needed and prove it is writable; raise CacheDirError saying why not."""
    path = Path(path)
    try:
        make_private_dirs(path)
    except (FileExistsError, NotADirectoryError) as e:
        raise CacheDirError(f"engine cache directory {path} cannot be created: a path component is a file ({e})") from e
    except OSError as e:
        raise CacheDirError(f"engine cache directory {path} cannot be created: {e.strerror or e}") from e
    if not path.is_dir():
        raise CacheDirError(f"engine cache directory {path} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise CacheDirError(f"engine cache directory {path} is not writable: {e.strerror or e}") from e
    return path


def make_private_dirs(path: Path) -> None:
    """mkdir -p `path` with every folder it creates 0700 (less under a stricter umask). Why each one: Path.mkdir's
    parents=True makes the parents 0777 & ~umask, so under umask 0 (some containers, systemd UMask=0000) a cache's
    onnx/ came out world-writable and anyone could plant a graph there."""
    missing = []
    while not path.is_dir() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise


def unsafe_dir_reason(path: str | Path) -> str | None:
    """Why another local user could plant files in directory `path`, or None when only we (or root) can."""
    info = os.stat(path)
    if info.st_uid not in (os.geteuid(), 0):  # root can replace our code anyway; trusting its cache adds nothing
        return f"owned by uid {info.st_uid}, not by this process's uid {os.geteuid()} or by root"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group- or world-writable (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def unreadable_entry(root: str | Path) -> Path | None:
    """The first folder (read and search) or file (read) at or under `root` that this process cannot
    open, or None when it can open them all."""
    root = Path(root)
    if not os.access(root, os.R_OK | os.X_OK):
        return root
    for folder, dirs, files in os.walk(root):  # each folder is checked before the walk enters it
        for name in dirs:
            if not os.access(os.path.join(folder, name), os.R_OK | os.X_OK):
                return Path(folder, name)
        for name in files:
            if not os.access(os.path.join(folder, name), os.R_OK):
                return Path(folder, name)
    return None


def unsafe_entry(root: str | Path) -> tuple[Path, str] | None:
    """The first folder or file at or under `root` that another local user could replace or change, with why
    (unsafe_dir_reason's: not ours or root's, or group- or world-writable; or a symbolic link, which the cache
    never writes and whose target this check would not see), or None. Why every one, not the root alone: a
    writable onnx/ under a private root let anyone put their own graph and its sidecar where the node reads."""
    root = Path(root)
    if (reason := unsafe_dir_reason(root)) is not None:
        return root, reason
    for folder, dirs, files in os.walk(root):  # symbolic links to folders are listed in dirs, not entered
        # A writer's temporaries (dot-named, never read: another process's export in progress, or one a
        # killed process left, made under its umask) are neither checked nor entered.
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in (*dirs, *(f for f in files if not f.startswith("."))):
            entry = Path(folder, name)
            try:
                reason = "a symbolic link" if entry.is_symlink() else unsafe_dir_reason(entry)
            except OSError:  # removed meanwhile (another process's temporary)
                continue
            if reason is not None:
                return entry, reason
    return None


def _refusal(path: Path) -> str | None:
    """Why the existing cache root `path` is not used, and what to do about it; None when it is used."""
    unsafe = unsafe_entry(path)
    if unsafe is not None:
        entry, reason = unsafe
        where = "" if entry == path else f"unsafe: {entry.relative_to(path)} in it is "
        return (f"{where}{reason}: not using it (a planted graph or engine would run; remove the cache, or "
                f"`chmod -R go-w {path}` where only you could have written it)")
    if os.stat(path).st_uid == os.geteuid():
        return None
    # Root's, prebuilt with the cache's own modes (folders 0700, most files 0600): reading an entry would raise
    # PermissionError, which no backend (nor `auto`) passes over.
    unreadable = unreadable_entry(path)
    if unreadable is not None:
        return (f"root's and {unreadable} cannot be read by this process (uid {os.geteuid()}): not using it (build "
                f"the cache as the runtime user, or make it readable with `chmod -R a+rX {path}`)")
    if not any(path.iterdir()) and not os.access(path, os.W_OK):  # an image's bare `mkdir`: nothing to read in it,
        return f"root's, empty and not writable by this process (uid {os.geteuid()}): not using it"  # nor to write
    return None


# Refused cache directory -> the private temporary directory used instead, one per process.
_FALLBACK_DIRS: dict[str, Path] = {}
_FALLBACK_PREFIX = "fourds_ros-engines-"
_OWNER_LOCK = ".owner.lock"  # flock'd by the process using the folder for as long as it lives


def _private_fallback(refused: Path) -> Path:
    if str(refused) not in _FALLBACK_DIRS:
        _remove_abandoned_fallbacks()
        fallback = Path(tempfile.mkdtemp(prefix=_FALLBACK_PREFIX))  # mkdtemp: mode 0700
        # Locked before it has its name, so that no sweep finds it free in between; kept open: the lock lives with it
        lock = os.open(fallback / (_OWNER_LOCK + ".new"), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(fallback / (_OWNER_LOCK + ".new"), fallback / _OWNER_LOCK)
        atexit.register(shutil.rmtree, fallback, ignore_errors=True)
        _FALLBACK_DIRS[str(refused)] = fallback
    return _FALLBACK_DIRS[str(refused)]


def _remove_abandoned_fallbacks() -> None:
    """Remove this user's fallback folders whose process is gone. Its atexit removal runs on a normal exit
    only: SIGKILL, an unhandled SIGTERM (`timeout`, `docker stop`) or os._exit left a folder (an exported
    graph: tens of MB) in the temporary directory at every start. A free lock means no process holds it;
    a lock, unlike a process id, holds across PID namespaces sharing /tmp."""
    for folder in Path(tempfile.gettempdir()).glob(_FALLBACK_PREFIX + "*"):
        try:
            if folder.stat().st_uid != os.geteuid():
                continue
            lock = os.open(folder / _OWNER_LOCK, os.O_RDWR)
        except OSError:  # gone meanwhile, or made before the lock was (left as it is)
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its process lives
            continue
        finally:
            os.close(lock)
        shutil.rmtree(folder, ignore_errors=True)


def secure_cache_dir(path: str | Path, logger: logging.Logger | None = None) -> Path:
    """The cache root to use for `path`: created 0700 when missing and returned when private;
    when it is group/world-writable or owned by another user than root (anyone could plant a graph
    there), or root's with an entry this process cannot read, a private temporary directory (removed
    at exit) is returned instead, with a WARNING. An existing one need not be writable: a prebuilt
    cache on a read-only filesystem or owned by root is read, and what must be written checks its
    own folder (ensure_writable_dir). Raises CacheDirError when `path` is missing and cannot be created."""
    path = Path(path)
    if not path.is_dir():
        path = ensure_writable_dir(path)
    refusal = _refusal(path)
    if refusal is None:
        return path
    fallback = _private_fallback(path)
    (logger or log).warning("engine cache directory %s is %s; exporting into the private temporary directory %s "
                            "instead", path, refusal, fallback)
    return fallback


def writable_entry_dir(path: str | Path, root: str | Path, logger: logging.Logger | None = None) -> Path:
    """`path`, a folder under the cache root `root` (secure_cache_dir's) that an export or build writes into,
    created and proven writable (ensure_writable_dir); where it cannot be (a prebuilt cache on a read-only
    filesystem or of root's, lacking this entry: another num_queries, precision or GPU), the same folder
    under this process's private temporary directory instead, with a WARNING naming the entry to prebuild.
    Why: the entries the cache holds are still read from it, and a node asked for one more entry starts,
    where it failed configure with an explicit backend. Raises CacheDirError when neither can be written."""
    path, root = Path(path), Path(root)
    try:
        return ensure_writable_dir(path)
    except CacheDirError as refused:
        fallback = ensure_writable_dir(_private_fallback(root) / path.relative_to(root))
        (logger or log).warning("%s: the cache lacks this entry and cannot take it; writing it into the private "
                                "temporary directory %s instead (prebuild it into the cache with `fourds-ros build-engine` or a start of "
                                "the node as the cache's owner)", refused, fallback)
        return fallback


# Temporary files and folders the cache writes start with "." and are renamed or removed when done;
# one older than this was left by a process that died (SIGKILL, SIGFPE) and is swept.
STALE_TEMP_S = 6 * 3600


def sweep_stale_temps(directory: str | Path, max_age_s: float = STALE_TEMP_S) -> list[Path]:
    """Remove dot-named temporaries older than max_age_s in `directory`; return what went."""
    removed, now = [], time.time()
    for entry in Path(directory).glob(".*"):
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime > max_age_s:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
    return removed


# A key folder's lock (onnx/<key>/.build.lock; tensorrt/.<key>.build.lock for an engine): dot-named, as a
# writer's temporaries (unsafe_entry passes over them), and never read for content.
BUILD_LOCK = ".build.lock"


@contextlib.contextmanager
def build_lock(path: str | Path, what: str, logger: logging.Logger | None = None) -> Iterator[None]:
    """Hold an exclusive flock on the lock file `path` (made 0600) while the caller looks for `what` in the
    cache again and builds it when it is still missing. Why: two processes starting at once (two nodes on one
    robot) both found the cache empty and both exported and fused the graph, and with TensorRT both built the
    engine on one GPU (minutes and GBs on a Jetson); now the second waits (saying so once) and then finds the
    first's. The file is removed before it is released, so a cache keeps none once its builds are done."""
    path = Path(path)
    fd = _locked(path, what, logger or log)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


# Polled while waiting for another process's build: False stops the wait (EngineError). The node sets it to
# rclpy.ok (node_lifetime.init_ros): a SIGTERM (docker stop, systemd) shuts ROS down, and a blocking flock waited
# for the other build to end, minutes for TensorRT on a Jetson, until SIGKILL (which leaks DDS shared memory).
keep_waiting: Callable[[], bool] = lambda: True  # noqa: E731
WAIT_POLL_S = 0.2


def _wait_for_lock(fd: int, what: str) -> None:
    """The exclusive flock on fd, polled every WAIT_POLL_S while keep_waiting() says so."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not keep_waiting():
                raise EngineError(f"stopped while waiting for another process's build of {what}") from None
            time.sleep(WAIT_POLL_S)


def _locked(path: Path, what: str, logger: logging.Logger) -> int:
    """A descriptor of `path` holding its exclusive flock, waited for when another process holds it."""
    said = False
    while True:
        make_private_dirs(path.parent)
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:  # its folder went meanwhile (a failed first export removes it): made again
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not said:
                    logger.info("waiting for another process's build of %s", what)
                    said = True
                _wait_for_lock(fd, what)
            if _is_file_at(fd, path):
                os.utime(fd)  # sweep_stale_temps removes old dot-files: not a held lock a killed process left
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed that file when done: the lock is now the path's new file's


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        there = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    os.replace is atomic within one filesystem, so readers see the old file or the new one.
    """
    path = Path(path)
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o600)  # a writer that recreated the file (umask's mode) left it as mkstemp made it
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def digest(*parts: bytes | str, files: tuple[Path, ...] = ()) -> str:
    """sha256 hex of the parts and the bytes of `files` (streamed, each length-prefixed)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    for file in files:
        h.update(Path(file).stat().st_size.to_bytes(8, "little"))
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def onnx_files(onnx_path: str | Path) -> tuple[Path, ...]:
    """The ONNX file and its external-data file (when the export wrote one)."""
    onnx_path = Path(onnx_path)
    data = onnx_path.with_name(onnx_path.name + ".data")
    return (onnx_path, data) if data.exists() else (onnx_path,)


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _sidecar_text(files: tuple[Path, ...]) -> str:
    return "".join(f"{_file_sha256(f)}  {f.name}\n" for f in files)


def write_sidecar(path: str | Path) -> Path:
    """Record the SHA-256 of `path` (and of its ONNX external data) in `path`.sha256; call it after
    the artifact itself has been written, so a sidecar never vouches for a half-written file."""
    return atomic_write_bytes(sidecar_path(path), _sidecar_text(onnx_files(path)).encode())


def sidecar_problem(path: str | Path, data: bytes | None = None) -> str | None:
    """None when `path` matches its sidecar, else why not (missing sidecar, other bytes).
    data: the artifact's bytes already read (hashed instead of the file, so what was checked is
    exactly what gets used)."""
    path = Path(path)
    try:
        recorded = sidecar_path(path).read_text()
    except OSError:
        return f"has no SHA-256 sidecar {sidecar_path(path).name}"
    if data is not None and onnx_files(path) == (path,):
        actual = f"{hashlib.sha256(data).hexdigest()}  {path.name}\n"
    else:
        actual = _sidecar_text(onnx_files(path))
    if recorded != actual:
        return f"does not match the SHA-256 recorded in {sidecar_path(path).name}"
    return None


def source_record_path(derived: str | Path) -> Path:
    derived = Path(derived)
    return derived.with_name(derived.name + ".source")


def write_source_record(derived: str | Path, source: str | Path, maker: str = "") -> Path:
    """Record beside `derived` which `source` it was made from, and by what (`maker`, e.g. the ONNX Runtime
    version whose optimizer fused it): a copy of source's SHA-256 sidecar, then the maker. By content, not
    by mtime: a cache copied with cp -r or scp loses its mtimes, and a read-only one judged stale by them
    cannot be made again. Why the maker: a graph fused by the last ONNX Runtime was served after an upgrade."""
    return atomic_write_bytes(source_record_path(derived), _source_record(source, maker))


def _source_record(source: str | Path, maker: str) -> bytes:
    return sidecar_path(source).read_bytes() + (f"\nmade by {maker}\n".encode() if maker else b"")


def source_record_problem(derived: str | Path, source: str | Path, maker: str = "") -> str | None:
    """None when `derived` was made from the `source` whose sidecar is there now, by `maker`, else why not."""
    record = source_record_path(derived)
    try:
        recorded = record.read_bytes()
    except OSError:
        return f"has no record {record.name} of the graph it was made from"
    try:
        current = _source_record(source, maker)
    except OSError:
        return f"cannot be matched to {Path(source).name}, which has no SHA-256 sidecar"
    if recorded == current:
        return None
    if recorded.split(b"\nmade by ")[0] == current.split(b"\nmade by ")[0]:
        return f"was made by another maker than {maker} ({record.name})"
    return f"was made from another {Path(source).name} ({record.name})"


def graph_sources() -> dict[str, bytes]:
    """The bytes of the package's sources that define the exported graph (the model's code and the
    exporter), by path inside the package, sorted by it."""
    package = Path(__file__).resolve().parent.parent
    files = sorted([*package.glob("model/*.py"), package / "engine" / "export.py"])
    return {f.relative_to(package).as_posix(): f.read_bytes() for f in files}


def checkpoint_key(model_dir: str | Path, precision: str, num_queries: int) -> str:
    """Key of an exported graph: checkpoint bytes, export precision, query count, exporter versions and
    the code that defines the graph. The code is in the key because the checkpoint's bytes do not change
    when a package upgrade changes the forward pass, and the old graph would be served silently."""
    import onnx
    import torch

    from ..model.checkpoint import CONFIG_FILE, WEIGHTS_FILE

    model_dir = Path(model_dir)
    code = [part for name, data in graph_sources().items() for part in (name, data)]
    return digest(
        f"precision={precision}", f"num_queries={num_queries}",
        f"torch={torch.__version__}", f"onnx={onnx.__version__}", *code,
        files=(model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE),
    )[:32]


def tensorrt_engine_key(
    onnx_path: str | Path,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
) -> str:
    """Key of a TensorRT engine: ONNX bytes (with external data), TensorRT version, GPU name and
    compute capability, precision. Any change gives a new engine file."""
    return digest(
        f"tensorrt={tensorrt_version}", f"gpu={gpu_name}",
        "sm={}.{}".format(*compute_capability), f"precision={precision}",
        files=onnx_files(onnx_path),
    )[:32]
