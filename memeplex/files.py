"""Files, written so that a crash or Ctrl-C never leaves half of one: every write goes to a temp file
that is then renamed (atomic_write). JSON, CSV and figures through it, and the CSV reader that
gives one-line errors for a damaged file."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from memeplex.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent  # the repository

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, data) -> None:
    """Write text or bytes to path via a temp file and rename (never half-written). A path that cannot be
    written (a read-only directory, a file where a directory should be) is a one-line UsageError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(directory, option: str) -> None:
    """A one-line UsageError unless files can be written in `directory` (or it can be created there):
    checked before the work whose output goes there, so a bad path fails at once."""
    existing = next(p for p in [Path(directory), *Path(directory).parents] if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {directory}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {directory}: cannot write in {existing} (permission denied)")


def write_json(path, obj) -> None:
    """obj as indented JSON (numpy numbers and arrays, paths as plain values), written atomically."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_csv(path, rows: list) -> None:
    """Rows (dicts) as CSV, the header the union of their keys in order; written atomically."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, out.getvalue())


def _parse(v: str):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def read_metrics(path, drop_cut_last_line: bool = False) -> list:
    """The rows of a CSV that write_csv wrote. A damaged file (its last line cut short, a row whose fields do
    not match the header, not text) is a one-line UsageError naming the file; drop_cut_last_line drops a cut
    last line instead (--resume: the checkpoint decides where the run goes on)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        lines = [r for r in csv.reader(io.StringIO(text), strict=True) if r]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is not a readable CSV file ({exc})") from None
    if not lines:
        return []
    header, rows = lines[0], lines[1:]
    if not text.endswith("\n"):  # write_csv ends every line: the file was cut short
        if not drop_cut_last_line or not rows:
            raise UsageError(f"{path} is damaged: its last line is cut short (the file was truncated)")
        rows = rows[:-1]
    for k, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise UsageError(f"{path} is damaged: line {k} has {len(row)} fields, the header {len(header)}")
    return [{k: _parse(v) for k, v in zip(header, row)} for row in rows]


def save_figure(fig, path) -> None:
    """A matplotlib figure as a PNG, written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
