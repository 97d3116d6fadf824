"""The official 3D-Speaker ERes2Net code (PyPI ``speakerlab==0.0.6``) as a test oracle.

Only ``speakerlab/models/eres2net/*.py`` and ``speakerlab/process/processor.py``'s
front end are used; they need nothing but torch. The diarization benchmark also
runs ``speakerlab/process/cluster.py`` (3D-Speaker's clustering back end; it
needs scikit-learn, fastcluster, umap-learn and hdbscan) as an anchor. The
wheel is fetched once from the package registry with ``pip download
--no-deps`` into ``.oracle/`` (ignored by git) and only those files are
extracted. Nothing of it is copied into the
package.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "0.0.6"
ROOT = Path(
    os.environ.get(
        "ERES2NET_ORACLE_DIR", Path(__file__).resolve().parents[1] / ".oracle"
    )
)
WANTED = (
    "speakerlab/models/eres2net/",
    "speakerlab/__init__.py",
    "speakerlab/models/__init__.py",
    "speakerlab/process/",
)


def _fetch() -> Path:
    target = ROOT / f"speakerlab-{VERSION}"
    markers = (
        target / "speakerlab" / "models" / "eres2net" / "ERes2Net.py",
        target / "speakerlab" / "process" / "cluster.py",
    )
    if all(marker.exists() for marker in markers):
        return target
    ROOT.mkdir(parents=True, exist_ok=True)
    wheels = list(ROOT.glob(f"speakerlab-{VERSION}-*.whl"))
    if not wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                f"speakerlab=={VERSION}",
                "-d",
                str(ROOT),
            ],
            check=True,
        )
        wheels = list(ROOT.glob(f"speakerlab-{VERSION}-*.whl"))
    tmp = ROOT / f"tmp-{os.getpid()}"
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith(WANTED):
                wheel.extract(name, tmp)
    for package in ("speakerlab", "speakerlab/models", "speakerlab/process"):
        (tmp / package / "__init__.py").touch()
    if target.exists():  # extracted by an older suite without process/
        import shutil

        shutil.rmtree(target, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:  # another process renamed its copy first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def official():
    """Returns the official ``ERes2Net`` and ``ERes2NetV2`` modules."""
    path = str(_fetch())
    if path not in sys.path:
        sys.path.insert(0, path)
    v1 = importlib.import_module("speakerlab.models.eres2net.ERes2Net")
    v2 = importlib.import_module("speakerlab.models.eres2net.ERes2NetV2")
    huge = importlib.import_module("speakerlab.models.eres2net.ERes2Net_huge")
    return v1, v2, huge


def official_clustering():
    """3D-Speaker's ``speakerlab.process.cluster`` module (its imports:
    scikit-learn, fastcluster, umap-learn, hdbscan)."""
    path = str(_fetch())
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("speakerlab.process.cluster")


if __name__ == "__main__":
    print(_fetch())
