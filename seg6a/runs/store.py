"""Where runs are kept: a local folder, or an object store named by a URL (SPEC section 9).

A run root or run folder is a path object either way: a ``pathlib.Path`` for a local folder
(or a ``file://`` URL), a ``upath.UPath`` over an fsspec filesystem for ``s3://``, ``gs://``,
... (credentials and endpoints come from that filesystem's usual environment, e.g.
``AWS_ENDPOINT_URL``). Reading goes through the path's own methods; this module holds the
few operations whose guarantees differ between the two, behind one interface:

=====================  ==============================  ====================================
operation              local folder                    object store
=====================  ==============================  ====================================
``stage``              temp file, fsynced              object under the staging name
``move_into_place``    ``os.replace``, dir fsynced     server-side copy, staged removed
``place_new``          ``os.link`` (put-if-absent)     server-side copy (under the lock)
``run_lock``           ``flock`` (shared for readers)  a lock object made put-if-absent
``listing``            ``os.walk``                     one recursive listing
=====================  ==============================  ====================================

An object appears whole or not at all, so the object store keeps the commit protocol of
``seg6a.runs.commit``: the manifest, replaced last, is the commit point. What it cannot
give is a shared lock: a reader does not wait for a publisher, it refuses a run whose files
do not (yet) match the manifest. The lock there is an object made
put-if-absent, naming its holder: a lock whose holder died on this host is taken over (the
crashed command, run again, rolls its commit forward); one of a publisher that died on
another machine is named in the refusal, and removing it by hand frees the run.
"""
import fcntl
import json
import os
import secrets
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import ParameterError, PublishConflictError

STAGING_SUFFIX = ".tmp"
LOCK = ".seg6a.lock"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_FILE_MODE = 0o666 & ~_umask()


def location(where):
    """The path object of a local folder or an object store URL.

    >>> location("runs/r1")
    PosixPath('runs/r1')
    >>> location("file:///tmp/runs")
    PosixPath('/tmp/runs')
    """
    if not isinstance(where, str):
        return where if is_remote(where) else Path(where)
    scheme, sep, rest = where.partition("://")
    if not sep or not scheme.isalnum() or len(scheme) < 2:
        return Path(where)
    if scheme == "file":
        return Path(rest)
    try:
        from upath import UPath

        path = UPath(where)
        path.fs  # the filesystem's package is imported here: fail now, with the remedy
    except ImportError as exc:
        raise ParameterError(f"{where}: an object store destination needs universal_pathlib "
                             f"and fsspec's {scheme} filesystem ({exc.name} is missing): "
                             "pip install 'seg6a[cloud]' (s3fs; gcsfs or adlfs for gs:// "
                             "or az://)") from None
    except ValueError as exc:  # an unknown protocol
        raise ParameterError(f"{where}: {exc}") from None
    return path


def is_remote(path):
    """Whether ``path`` is on an object store (not a local ``pathlib.Path``)."""
    return not isinstance(path, (str, Path)) and hasattr(path, "fs")


# Requests to an object store wait on the network, not on this machine: a commit keeps
# this many in flight (on moto, one file's place took ~25 ms one after the other).
REMOTE_REQUESTS = 16


def for_each(function, items, folder):
    """``[function(*item) for item in items]``, for files under ``folder``: on an object
    store ``REMOTE_REQUESTS`` at a time, every item, and then the first error in the items'
    order is raised; on a local disk one after the other, up to the first error. Results
    come in the items' order."""
    items = list(items)
    if not is_remote(folder) or len(items) <= 1:
        return [function(*item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(REMOTE_REQUESTS, len(items))) as pool:
        futures = [pool.submit(function, *item) for item in items]
    return [future.result() for future in futures]


def is_staging(name):
    """Whether a file name is a staged (not yet published) file's: ``.<name>.<random>.tmp``."""
    return name.startswith(".") and name.endswith(STAGING_SUFFIX)


def staging_name(path):
    """A fresh staging path beside ``path`` (attempt-unique: random)."""
    return path.parent / f".{path.name}.{secrets.token_hex(8)}{STAGING_SUFFIX}"


def stage(path, data):
    """Write ``data`` under a fresh staging name beside ``path`` (flushed and fsynced on a
    local disk); return the staged path, which the caller moves or links to ``path``."""
    if is_remote(path):
        staged = staging_name(path)
        staged.fs.pipe_file(staged.path, data)
        return staged
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=STAGING_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates 0600; a published file gets what open() would give it.
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return Path(tmp)


def move_into_place(staged, path):
    """Atomically replace ``path`` by the ``staged`` file (which is gone afterwards, also
    when this fails), durably."""
    try:
        if is_remote(path):
            path.fs.copy(staged.path, path.path)
        else:
            os.replace(staged, path)
    finally:
        remove(staged)
    sync_folder(path.parent)


def place_new(staged, path):
    """Put the ``staged`` file at ``path`` if nothing is there; return False (staged file
    kept) if something is. On an object store the run's lock stands in for put-if-absent:
    it holds no concurrent publisher out of one run."""
    if is_remote(path):
        path.fs.invalidate_cache(path.parent.path)
        if path.fs.exists(path.path):
            return False
        path.fs.copy(staged.path, path.path)
    else:
        try:
            os.link(staged, path)
        except FileExistsError:
            return False
    remove(staged)
    return True


def remove(path):
    """Remove a file if it is there."""
    if is_remote(path):
        try:
            path.fs.rm_file(path.path)
        except FileNotFoundError:
            pass
    else:
        Path(path).unlink(missing_ok=True)


def sync_folder(folder):
    """Make the renames in a local folder durable (an object store's are at once)."""
    if is_remote(folder):
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def listing(folder, recursive=True):
    """``{relative posix path: size}`` of the files under ``folder`` (only those directly
    in it unless ``recursive``); empty if it does not exist."""
    if is_remote(folder):
        fs = folder.fs
        fs.invalidate_cache()  # other processes (workers, publishers) write here too
        root = folder.path.rstrip("/")
        try:
            found = fs.find(root, maxdepth=None if recursive else 1, detail=True)
        except FileNotFoundError:
            return {}
        return {name[len(root) + 1:]: int(info["size"]) for name, info in found.items()
                if info["type"] == "file" and name.startswith(root + "/")}
    if not folder.is_dir():
        return {}
    if not recursive:
        return {entry.name: entry.stat().st_size for entry in os.scandir(folder)
                if entry.is_file()}
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found[Path(path).relative_to(folder).as_posix()] = os.stat(path).st_size
    return found


def remove_empty_folders(folder):
    """Remove the empty folders under a local ``folder`` (and it, if empty); an object store
    has no folders of its own."""
    if is_remote(folder) or not folder.is_dir():
        return
    for parent, _, _ in sorted(os.walk(folder), reverse=True):
        if not os.listdir(parent):
            os.rmdir(parent)


def remove_tree(folder):
    """Remove a folder and everything under it."""
    if is_remote(folder):
        folder.fs.rm(folder.path, recursive=True)
    else:
        import shutil

        shutil.rmtree(folder)


@contextmanager
def run_lock(run_dir, exclusive):
    """Hold a run folder's lock: exclusive for a publisher, shared for a reader (there is
    nothing to wait for where no publisher has made the lock file yet; on an object store a
    reader takes none)."""
    path = run_dir / LOCK
    if is_remote(run_dir):
        if exclusive:
            _take_object_lock(path)
            try:
                yield
            finally:
                remove(path)
        else:
            yield
        return
    if not exclusive and not path.exists():
        yield
        return
    # A reader opens the lock read-only, so a run folder it may not write still reads.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666) if exclusive else os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def _take_object_lock(path):
    """Create the lock object put-if-absent (``If-None-Match``), naming its holder. A lock
    left by a dead process of this host is taken over, so the command that crashed rolls
    its commit forward when run again; any other lock is refused with its holder."""
    holder = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for attempt in range(2):
        try:
            with path.fs.open(path.path, "xb") as handle:
                handle.write(json.dumps(holder).encode("utf-8"))
            return
        except FileExistsError:
            try:
                held = json.loads(path.read_bytes())
            except (FileNotFoundError, ValueError):
                held = {}
            if attempt == 0 and held.get("host") == holder["host"] and \
                    not _alive(held.get("pid")):
                # Its holder died here: a crash, to be rolled forward. (Two processes taking
                # over the same dead lock at once could both win: S3 has no conditional delete.)
                remove(path)
                continue
            shown = (f"{held.get('host')} pid {held.get('pid')} since {held.get('since')}"
                     if held else "a publisher that just finished")
            raise PublishConflictError(
                f"another publisher holds the run's lock ({shown}); wait for it, or, if it "
                f"died on another machine, remove {path} and publish again",
                file=path.parent) from None


def _alive(pid):
    """Whether a process of this host with id ``pid`` exists."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable(folder, flag="--out"):
    """Return ``folder`` if it is a folder that can be written (or can be made), else raise
    ParameterError: checked before any work, so a bad destination never costs a run."""
    if is_remote(folder):
        probe = folder / f".seg6a-probe-{secrets.token_hex(8)}{STAGING_SUFFIX}"
        try:
            probe.fs.pipe_file(probe.path, b"")
            remove(probe)
        except Exception as exc:  # the store's own errors: no bucket, no credentials, ...
            raise ParameterError(f"{flag} {folder} cannot be written ({type(exc).__name__}: "
                                 f"{exc})") from None
        return folder
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"{flag} {folder} is a file, not a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ParameterError(f"{flag} {folder} cannot be made: {existing} is a file")
    try:  # a real write: permission bits do not tell for root, or for /proc
        os.rmdir(tempfile.mkdtemp(prefix=".seg6a-probe-", dir=existing))
    except OSError as exc:
        raise ParameterError(f"{flag} {folder} cannot be written ({existing}: "
                             f"{exc.strerror or exc})") from None
    return folder
