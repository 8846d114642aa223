"""Reader for the SisFall data set, files exactly as published.

SisFall (Sucerquia, López, Vargas-Bonilla, Sensors 17(1):198, 2017): one file per
trial, ``SisFall_dataset/<SUBJECT>/<CODE>_<SUBJECT>_R<NN>.txt``, 200 Hz, each line nine
integers ended by ``;`` -- ADXL345 x, y, z; ITG3200 gyroscope x, y, z; MMA8451Q x, y, z.
Only the ADXL345 is used: a ±16 g, 13-bit part, so g = raw / 256 -- the kind of
accelerometer a wearable carries.  Codes ``D01``-``D19`` are daily activities,
``F01``-``F15`` falls.

``find_trials`` accepts the unpacked folder at any level (the folder holding
``SisFall_dataset``, ``SisFall_dataset`` itself, or one subject's folder);
``unpacked`` also takes the ``.tar.xz`` and unpacks it to a temporary folder (the full
development archive takes about 5 s to decompress here).

>>> t = Trial.from_path(Path("SisFall_dataset/SA01/F05_SA01_R03.txt"))
>>> t.code, t.subject, t.run, t.is_fall
('F05', 'SA01', 3, True)
"""

from __future__ import annotations

import re
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

HZ: Final = 200.0
ADXL345_G_PER_LSB: Final = 2 * 16 / 2**13  # (2 * range / 2**resolution) = 1/256
_NAME = re.compile(r"^(?P<code>[DF]\d\d)_(?P<subject>S[AE]\d\d)_R(?P<run>\d\d)\.txt$")

ACTIVITIES: Final[dict[str, str]] = {
    "D01": "Walking slowly",
    "D02": "Walking quickly",
    "D03": "Jogging slowly",
    "D04": "Jogging quickly",
    "D05": "Walking upstairs and downstairs slowly",
    "D06": "Walking upstairs and downstairs quickly",
    "D07": "Slowly sit in a half height chair, wait a moment, and up slowly",
    "D08": "Quickly sit in a half height chair, wait a moment, and up quickly",
    "D09": "Slowly sit in a low height chair, wait a moment, and up slowly",
    "D10": "Quickly sit in a low height chair, wait a moment, and up quickly",
    "D11": "Sitting a moment, trying to get up, and collapse into a chair",
    "D12": "Sitting a moment, lying slowly, wait a moment, and sit again",
    "D13": "Sitting a moment, lying quickly, wait a moment, and sit again",
    "D14": "Being on one's back change to lateral position, wait a moment, and back",
    "D15": "Standing, slowly bending at knees, and getting up",
    "D16": "Standing, slowly bending without bending knees, and getting up",
    "D17": "Standing, get into a car, remain seated and get out of the car",
    "D18": "Stumble while walking",
    "D19": "Gently jump without falling (trying to reach a high object)",
    "F01": "Fall forward while walking caused by a slip",
    "F02": "Fall backward while walking caused by a slip",
    "F03": "Lateral fall while walking caused by a slip",
    "F04": "Fall forward while walking caused by a trip",
    "F05": "Fall forward while jogging caused by a trip",
    "F06": "Vertical fall while walking caused by fainting",
    "F07": "Fall while walking, with use of hands in a table to dampen fall, caused by fainting",
    "F08": "Fall forward when trying to get up",
    "F09": "Lateral fall when trying to get up",
    "F10": "Fall forward when trying to sit down",
    "F11": "Fall backward when trying to sit down",
    "F12": "Lateral fall when trying to sit down",
    "F13": "Fall forward while sitting, caused by fainting or falling asleep",
    "F14": "Fall backward while sitting, caused by fainting or falling asleep",
    "F15": "Lateral fall while sitting, caused by fainting or falling asleep",
}


@dataclass(frozen=True, slots=True, order=True)
class Trial:
    """One recording: who, what, which repetition, and where its file is."""

    subject: str  # SA01..SA23 adults 19-30, SE01..SE15 adults 60-75
    code: str  # D01..D19, F01..F15
    run: int
    path: Path

    @property
    def is_fall(self) -> bool:
        return self.code.startswith("F")

    @property
    def name(self) -> str:
        return f"{self.code}_{self.subject}_R{self.run:02d}"

    @classmethod
    def from_path(cls, path: Path) -> Trial:
        m = _NAME.match(path.name)
        if m is None:
            raise ValueError(f"not a SisFall trial file name: {path.name}")
        return cls(m["subject"], m["code"], int(m["run"]), path)


def find_trials(root: Path) -> list[Trial]:
    """Every trial file under ``root``, sorted by subject, code and run."""
    return sorted(Trial.from_path(p) for p in root.rglob("*.txt") if _NAME.match(p.name))


def read_adxl345(path: Path) -> npt.NDArray[np.float64]:
    """The trial's ADXL345 samples in g, shape ``(n, 3)``, at 200 Hz.

    A torn last line (fewer than nine numbers) is dropped rather than misaligning
    every later value.
    """
    text = path.read_bytes().decode("ascii").replace(";", ",")
    # numpy's C parser: about ten times faster than csv or loadtxt on these files.
    flat = np.fromstring(text, dtype=np.float64, sep=",")
    n = flat.size // 9
    return flat[: n * 9].reshape(n, 9)[:, :3] * ADXL345_G_PER_LSB


@contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """``path`` if it is a folder; if it is a tar archive, a temporary unpacked copy."""
    if path.is_dir():
        yield path
        return
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{path}: neither a folder nor a tar archive")
    with tempfile.TemporaryDirectory(prefix="sisfall-") as tmp, tarfile.open(path) as tar:
        tar.extractall(tmp, filter="data")  # "data": no absolute paths, links out, devices
        yield Path(tmp)
