"""A run folder is one coherent dataset: every publish into it is a commit (SPEC section 7).

``RUN/_manifest_6A.json`` lists every live file of the run (path, SHA-256, size), the run
id, its seeds and the package version. A publish takes the run's lock, stages the new
files, records its intent (``RUN/.seg6a-intent.tmp``: the manifest to be), places the files
(``os.link`` for a new path: put-if-absent; ``os.replace`` for a path it supersedes), and
then atomically replaces the manifest: that rename is the commit. Only after it is durable
are the files it no longer lists removed (superseded partitions, withdrawn flags, the
debris of an interrupted publish).

A crash before the intent leaves the last committed run untouched (staged files beside it).
After it, new files sit beside the committed ones and a file being superseded may already
hold its new bytes: readers refuse the run as incomplete until the same command, run again,
rolls the commit forward. A run folder with files but neither manifest nor intent (an
older seg6a's, or a removed manifest) is never published into: its files would be
collected as uncommitted.

Readers (``seg6a gates``, ``report``, ``--from``, ``--rejudge``) refuse a run whose files
do not match its manifest; ``verify`` checks every byte.

On an object store (``seg6a.runs.store``) the same steps run with server-side copies for
the renames; readers take no lock there, and refuse a run mid-publish as incomplete.

A run folder belongs to seg6a: its ``layer3/`` and ``reports/`` trees hold only what a
commit listed.
"""
import json
import os
from contextlib import contextmanager

from .. import __version__
from ..errors import IncompleteRunError, InputError, PublishConflictError
from .publish import Staged, digest, json_bytes, same_bytes, sha256_hex
from .store import LOCK, for_each, is_remote, is_staging, listing, location, move_into_place
from .store import place_new, remove, remove_empty_folders, run_lock, stage, sync_folder

MANIFEST = "_manifest_6A.json"
INTENT = ".seg6a-intent.tmp"  # a staging name: collected with the debris of a publish
LIVE_TREES = ("layer3", "reports")
# Fault injection for the crash-safety tests: SEG6A_CRASH_AFTER=STEP[:N] makes a publishing
# process die (os._exit(CRASH_EXIT)) after the N-th (default: first) time it reaches STEP,
# one of "staged", "placed", "manifest_staged", "committed", "retired".
CRASH_AFTER = "SEG6A_CRASH_AFTER"
CRASH_EXIT = 86


def read_manifest(run_dir):
    """The manifest of a run folder, or None if it has none (never committed)."""
    path = location(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IncompleteRunError(run_dir, f"its manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IncompleteRunError(run_dir, "its manifest lists no files")
    return manifest


def _on_disk(run_dir):
    """``(live, staged)``: the files under the live trees (relative path -> size), and the
    relative paths of staged files anywhere in the run folder."""
    found = listing(run_dir, recursive=False)
    for tree in LIVE_TREES:
        found.update({f"{tree}/{rel}": size for rel, size in listing(run_dir / tree).items()})
    live, staged = {}, []
    for relative, size in sorted(found.items()):
        if is_staging(relative.rsplit("/", 1)[-1]):
            staged.append(relative)
        elif "/" in relative:
            live[relative] = size
    return live, staged


def _seeds(paths):
    found = {int(part.split("=", 1)[1]) for path in paths for part in path.split("/")
             if part.startswith("seed=") and part[5:].isdigit()}
    return sorted(found)


def _crash_point(counts, step):
    counts[step] = counts.get(step, 0) + 1
    wanted = os.environ.get(CRASH_AFTER)
    if wanted and wanted in (f"{step}:{counts[step]}", step if counts[step] == 1 else None):
        os._exit(CRASH_EXIT)


def _check_own_folder(run_dir):
    """Refuse to publish into an existing folder that is not a run folder: its live trees
    are garbage-collected by every commit."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise InputError("is not a folder; choose another --out or --run-id", file=run_dir)
    if (run_dir / MANIFEST).exists():
        return
    foreign = sorted(p.name for p in run_dir.iterdir()
                     if p.name not in (*LIVE_TREES, LOCK) and not is_staging(p.name))
    if foreign:
        raise InputError(f"is not a seg6a run folder (it holds {', '.join(foreign[:5])}); "
                         "choose another --run-id", file=run_dir)


class RunCommit:
    """One publish into a run folder, holding the run's lock from entry to exit.

    Attributes
    ----------
    run_dir : pathlib.Path
    committed : dict
        Relative path -> ``{"sha256", "size"}`` of the live files as last committed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> run = Path(tempfile.mkdtemp()) / "r"
    >>> with RunCommit(run) as commit:
    ...     commit.publish({run / "layer3" / "a.json": b"{}"})
    1
    >>> sorted(read_manifest(run)["files"])
    ['layer3/a.json']
    """

    def __init__(self, run_dir):
        self.run_dir = location(run_dir)
        self.committed = {}
        self._lock = None
        self._crashes = {}

    def __enter__(self):
        _check_own_folder(self.run_dir)
        if not is_remote(self.run_dir):
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = run_lock(self.run_dir, exclusive=True)
        self._lock.__enter__()
        try:
            manifest = read_manifest(self.run_dir)
            if manifest is None and not (self.run_dir / INTENT).exists() \
                    and _on_disk(self.run_dir)[0]:
                raise InputError(f"holds run files but no {MANIFEST}: not a committed run (an "
                                 "older seg6a's, or its manifest was removed); `seg6a verify` "
                                 "tells more; publish into a new run id", file=self.run_dir)
        except IncompleteRunError as exc:
            self._lock.__exit__(None, None, None)
            raise InputError(f"{exc.message}; its manifest cannot be trusted, so nothing is "
                             "published into it", file=self.run_dir) from None
        except InputError:
            self._lock.__exit__(None, None, None)
            raise
        self.committed = dict(manifest["files"]) if manifest else {}
        return self

    def __exit__(self, *exc):
        self._lock.__exit__(*exc)

    def relative(self, path):
        return location(path).relative_to(self.run_dir).as_posix()

    def publish(self, files, replace=(), retire=()):
        """Commit ``{path: bytes or Staged}`` into the run; return the number of files
        written or removed (0 when the run already holds exactly these bytes).

        A ``seg6a.runs.publish.Staged`` value is a file already written under a staging name
        (by a worker, ``stage_file``): it is moved into place, or dropped when the run
        holds its bytes already; either way it is gone afterwards, also on an error.

        A path the run has committed with other bytes is a conflict unless it is in
        ``replace``: ``PublishConflictError`` before anything is written. Paths in
        ``retire`` leave the manifest (and the disk, after the commit).
        """
        files = {location(path): data for path, data in files.items()}
        # Staged files not yet placed: removed at the end, whatever happens.
        pending = {data.path for data in files.values() if isinstance(data, Staged)}
        staged = []
        try:
            entries = {self.relative(p): _entry(data) for p, data in files.items()}
            replace = {self.relative(p) for p in replace}
            for relative, entry in entries.items():
                old = self.committed.get(relative)
                if old is not None and old["sha256"] != entry["sha256"] \
                        and relative not in replace:
                    raise PublishConflictError(
                        "already holds different data; nothing was changed (use a new run "
                        "id, --from STATE to rerun states, or `seg6a gates RUN --rejudge` to "
                        "judge a run anew)", file=self.run_dir / relative)
            retired = {self.relative(p) for p in retire} - set(entries)
            live = {k: v for k, v in self.committed.items() if k not in retired} | entries
            present = _on_disk(self.run_dir)[0]
            to_write = [(path, data) for path, data in files.items()
                        if not _holds(path, present.get(self.relative(path)), data)]
            manifest = {"run_id": self.run_dir.name, "seg6a_version": __version__,
                        "seeds": _seeds(live), "files": dict(sorted(live.items()))}
            changed = bool(to_write) or live != self.committed
            target = self.run_dir / MANIFEST
            data = json_bytes(manifest)

            def stage_one(path, content):
                tmp = content.path if isinstance(content, Staged) else stage(path, content)
                pending.add(tmp)
                _crash_point(self._crashes, "staged")
                return path, tmp

            def place_one(path, tmp):
                self._place(path, tmp)
                pending.discard(tmp)
                _crash_point(self._crashes, "placed")

            staged.extend(for_each(stage_one, to_write, self.run_dir))
            if to_write:  # from here on a crash is rolled forward by the same command
                move_into_place(stage(self.run_dir / INTENT, data), self.run_dir / INTENT)
            for_each(place_one, staged, self.run_dir)
            for folder in {path.parent for path, _ in staged}:
                sync_folder(folder)
        finally:  # the rest: already held by the run, or not placed because of an error
            for staged_file in pending:
                remove(staged_file)
        if changed or not (target.exists() and same_bytes(target, data)):
            tmp = stage(target, data)
            _crash_point(self._crashes, "manifest_staged")
            move_into_place(tmp, target)
            remove(self.run_dir / INTENT)
            _crash_point(self._crashes, "committed")
        self.committed = live
        return len(to_write) + self._collect()

    def _place(self, path, tmp):
        """Move a staged file to its published name: put-if-absent for a new path."""
        if place_new(tmp, path):
            return
        if same_bytes(path, tmp.read_bytes()):
            remove(tmp)
            return
        move_into_place(tmp, path)  # superseded (checked above), or uncommitted debris

    def _collect(self):
        """Remove what the manifest does not list (only after the commit is durable):
        superseded and withdrawn files, staged files of interrupted publishes, and the
        folders they leave empty. Returns the number of files removed."""
        live, staged = _on_disk(self.run_dir)
        doomed = [p for p in live if p not in self.committed] + staged

        def remove_one(relative):
            remove(self.run_dir / relative)
            _crash_point(self._crashes, "retired")

        for_each(remove_one, [(p,) for p in doomed], self.run_dir)
        for tree in LIVE_TREES:
            remove_empty_folders(self.run_dir / tree)
        if doomed:
            sync_folder(self.run_dir)
        return len([p for p in doomed if not is_staging(p.rsplit("/", 1)[-1])])


def _entry(data):
    """The manifest entry of a file's content (bytes, or a ``Staged`` file's record)."""
    return {"sha256": digest(data),
            "size": data.size if isinstance(data, Staged) else len(data)}


def _holds(path, size, data):
    """Whether the file at ``path``, of ``size`` bytes (None: no file), holds ``data``."""
    entry = _entry(data)
    if size != entry["size"]:
        return False
    if isinstance(data, Staged):
        return sha256_hex(path.read_bytes()) == entry["sha256"]
    return path.read_bytes() == data


def differences(run_dir, full=True):
    """How a run folder differs from its manifest.

    Parameters
    ----------
    run_dir : path-like
    full : bool
        Hash every file (``verify``); otherwise hash every file but the Parquet parts, whose
        paths are content-keyed and never replaced, and check their sizes (readers).

    Returns
    -------
    dict
        ``missing``, ``changed`` and ``unexpected`` relative paths (staged files count as
        unexpected only with ``full``), and ``manifest`` (None if there is none).
    """
    run_dir = location(run_dir)
    try:
        manifest, torn = read_manifest(run_dir), []
    except IncompleteRunError:
        manifest, torn = None, [MANIFEST]  # replaced atomically: changed after the commit
    listed = manifest["files"] if manifest else {}
    live, staged = _on_disk(run_dir)
    found = set(live)
    missing = sorted(p for p in listed if p not in found)
    unexpected = sorted(p for p in live if p not in listed) + (staged if full else [])
    changed = []
    for relative in sorted(found & set(listed)):
        path, entry = run_dir / relative, listed[relative]
        if live[relative] != entry["size"]:
            changed.append(relative)
        elif (full or not relative.endswith(".parquet")) and \
                sha256_hex(path.read_bytes()) != entry["sha256"]:
            changed.append(relative)
    return {"manifest": manifest, "missing": missing, "changed": torn + changed,
            "unexpected": unexpected}


@contextmanager
def reading(run_dir):
    """Read a complete run folder: hold its shared lock (publishers wait) and yield its
    manifest; ``IncompleteRunError`` if it has none or its files do not match it (size, and
    hash for all but the Parquet parts, which are content-keyed and never replaced)."""
    run_dir = location(run_dir)
    if not (run_dir / LIVE_TREES[0]).is_dir():
        raise InputError("is not a run folder (no layer3/ tree)", file=run_dir)
    with run_lock(run_dir, exclusive=False):
        found = differences(run_dir, full=False)
        if found["manifest"] is None:
            raise IncompleteRunError(run_dir, f"its {MANIFEST} is missing or unreadable")
        intent = run_dir / INTENT
        if intent.exists() and intent.read_bytes() != (run_dir / MANIFEST).read_bytes():
            raise IncompleteRunError(run_dir, "a publish into it did not commit")
        wrong = [f"{kind} {path}" for kind in ("missing", "changed", "unexpected")
                 for path in found[kind]]
        if wrong:
            more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
            raise IncompleteRunError(run_dir, f"its files do not match {MANIFEST} "
                                     f"({'; '.join(wrong[:3])}{more})")
        yield found["manifest"]


def check_committed(run_dir):
    """The manifest of a complete run folder (``reading``, for a check alone)."""
    with reading(run_dir) as manifest:
        return manifest


def verify(run_dir):
    """Check every byte of a run folder against its manifest and its receipts.

    Returns
    -------
    dict
        ``ok``, ``files`` (how many the manifest lists), ``missing``, ``changed``,
        ``unexpected`` (relative paths) and ``receipts`` (each output a receipt lists with
        another hash than the manifest, or that the manifest does not list).

    Raises
    ------
    seg6a.errors.InputError
        When ``run_dir`` is not a run folder.
    """
    run_dir = location(run_dir)
    if not (run_dir / LIVE_TREES[0]).is_dir():
        raise InputError("is not a run folder (no layer3/ tree)", file=run_dir)
    with run_lock(run_dir, exclusive=False):
        found = differences(run_dir, full=True)
    manifest = found.pop("manifest")
    listed = manifest["files"] if manifest else {}
    disagreeing = []
    for relative in sorted(p for p in listed if p.startswith("layer3/6A/receipts/")):
        path = run_dir / relative
        if relative in found["missing"] or relative in found["changed"]:
            continue
        receipt = json.loads(path.read_text(encoding="utf-8"))
        for output, digest in sorted(receipt.get("outputs", {}).items()):
            if listed.get(output, {}).get("sha256") != digest:
                disagreeing.append(f"{relative} lists {output}")
    if manifest is None and MANIFEST not in found["changed"]:
        found["missing"].insert(0, MANIFEST)
    found.update(receipts=disagreeing, files=len(listed))
    found["ok"] = not any(found[k] for k in ("missing", "changed", "unexpected", "receipts"))
    return found
