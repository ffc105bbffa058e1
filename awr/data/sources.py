"""The canonical source of each named dataset: what it is, where it comes from, how it is verified.

Layout of the data dir (`--data-dir`, else `$AWR_DATA_DIR`, else `<user cache>/awr/data`): a
named dataset is read from the first of its `files` that exists there; a download is stored as
its `target` (the last of `files`). A downloaded file is checked before it is moved into place:

  * `beauty`, `beauty-5core`: the sha256 of the downloaded bytes must equal `sha256`.
  * `ml-1m`: the GroupLens zip is not checked itself. Its `ml-1m/ratings.dat` is preprocessed
    (awr.data.raw.preprocess_ml1m) and the *result* must equal the published ML-1M sequences:
    6,040 users / 3,416 items / 999,611 interactions and a canonical sequence text (below) whose
    sha256 is `sha256`. The verified text is stored as `ml-1m/ml-1m_seq.txt`, so
    `sha256sum ml-1m/ml-1m_seq.txt` shows the same value. A `ml-1m/ml-1m.zip` placed in the data
    dir by hand is used without any download.
  * `anime`: Kaggle needs an account, so nothing is downloaded: `rating.csv` is placed by hand.

Canonical sequence text of a dataset whose sequences are `s_1 .. s_N` (user k's items in time
order, ids as awr reads them): for k = 1..N one line `"{k} {s_k[0]} {s_k[1]} ...\\n"`, decimal
integers separated by single spaces, no header, ending in a newline. This is the seq format
(`user item item ...`) with users numbered by position; for ML-1M position k is MovieLens
UserID k. The sha256 values were computed from the published files (SASRec's and S3-Rec's
`Beauty.txt` byte for byte; for ML-1M the text above of the published sequences).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ML1M_MEMBER = "ml-1m/ratings.dat"  # the file inside the zip that is preprocessed
ANIME_PAGE = "https://www.kaggle.com/datasets/CooperUnion/anime-recommendations-database"


@dataclass(frozen=True)
class Source:
    """One named dataset. `files` are paths under the data dir; `url` None means no download."""

    name: str
    what: str  # one sentence: what the data is
    files: tuple[str, ...]  # accepted local files, the first that exists is read
    url: str | None  # canonical download URL; None: placed by hand (see `what`)
    sha256: str | None  # sha256 hex of the stored target (ml-1m: of the canonical text)
    counts: tuple[int, int, int] | None = None  # users, items, interactions of the result
    verified: str = ""  # how a download is verified, in words
    archive: str | None = None  # a zip to preprocess: where a copy placed by hand is looked for
    member: str | None = None  # the file inside `archive` that is preprocessed

    @property
    def by_hand(self) -> str:
        """Where a user puts the source's file by hand (the archive, else the target)."""
        return self.archive or self.target

    @property
    def target(self) -> str:
        """Where a download (or, for ml-1m, its verified result) is stored under the data dir."""
        return self.files[-1]

    @property
    def file_name(self) -> str:
        """The source's own file name, the last segment of its URL (`ml-1m.zip`, `Beauty.txt`)."""
        if self.url is None:
            return self.target.rsplit("/", 1)[-1]
        return self.url.rsplit("/", 1)[-1]

    def mirror_url(self, base: str) -> str:
        """The URL of this source on a mirror: `<base>/<dataset name>/<file_name>`."""
        return f"{base.rstrip('/')}/{self.name}/{self.file_name}"


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="ml-1m",
            what="MovieLens 1M (GroupLens), movies with fewer than 5 ratings dropped, each "
            "user's ratings ordered by (timestamp, MovieID), items numbered by MovieID",
            files=("ml-1m/ml-1m.txt.gz", "ml-1m/ml-1m_seq.txt"),
            url=ML1M_URL,
            sha256="91dfac70928667bf4f51fce30b0e88b49c1318226cea94ba0f27640cac44b4cd",
            counts=(6040, 3416, 999611),
            verified=f"{ML1M_MEMBER} preprocessed; the result's counts and the sha256 of its "
            "canonical sequence text must equal the published ML-1M sequences",
            archive="ml-1m/ml-1m.zip",
            member=ML1M_MEMBER,
        ),
        Source(
            name="beauty",
            what="SASRec's Amazon Beauty (data/Beauty.txt of github.com/kang205/SASRec), the "
            "paper's Table 1 Beauty",
            files=("beauty_sasrec/Beauty.txt.gz", "beauty_sasrec/Beauty.txt"),
            url="https://raw.githubusercontent.com/kang205/SASRec/master/data/Beauty.txt",
            sha256="3cd3d56cee682f5118f22d0443d5d27116075c719ec83bfdfa3e45df33a95e12",
            counts=(52204, 57289, 394908),
            verified="sha256 of the file",
        ),
        Source(
            name="beauty-5core",
            what="S3-Rec's 5-core Amazon Beauty (data/Beauty.txt of "
            "github.com/RUCAIBox/CIKM2020-S3Rec), the one STOSA uses",
            files=("beauty_s3rec_5core/Beauty.txt",),
            url="https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/master/data/Beauty.txt",
            sha256="226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
            counts=(22363, 12101, 198502),
            verified="sha256 of the file",
        ),
        Source(
            name="anime",
            what=f"Kaggle's 'Anime Recommendations Database' by CooperUnion ({ANIME_PAGE}); "
            "Kaggle needs an account, so it is not downloaded",
            files=("anime/rating.csv",),
            url=None,
            sha256=None,
            verified="not verified (placed by hand)",
        ),
    )
}


def canonical_text(sequences: Sequence[np.ndarray]) -> bytes:
    """The canonical sequence text (module doc): line k is `"{k} {items of user k}\\n"`."""
    lines = [f"{k} " + " ".join(map(str, seq.tolist())) for k, seq in enumerate(sequences, 1)]
    return ("\n".join(lines) + "\n").encode("ascii")


def canonical_sha256(sequences: Sequence[np.ndarray]) -> str:
    """sha256 hex digest of `canonical_text(sequences)`."""
    return hashlib.sha256(canonical_text(sequences)).hexdigest()


def sequence_counts(sequences: Sequence[np.ndarray]) -> tuple[int, int, int]:
    """(users, items, interactions): items is the largest item id, as awr counts them."""
    return (
        len(sequences),
        max(int(seq.max()) for seq in sequences),
        sum(len(seq) for seq in sequences),
    )
