"""Named datasets downloaded on first use, from a real HTTP server on 127.0.0.1 (no internet).

Every fault (sha256 mismatch, HTTP 404 / 500, connection refused, a connection closed mid-body,
a stalled server, an interrupt) gives one line naming the URL and where to put the file, leaves
no file in the data dir, and the next try succeeds. ML-1M: a zip of the real partial ratings
(users 1-2999) is unpacked and preprocessed, and its mismatch with the published ML-1M is
reported; a zip rebuilt from the published sequences verifies.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import socket
import threading
import time
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pooch
import pytest
import tqdm

from awr.data import download, fetch, raw, sources
from awr.data.datasets import dataset_stats, load_dataset
from awr.data.errors import DataError
from awr.data.sources import SOURCES, canonical_sha256, canonical_text

ROOT = Path(__file__).parents[1]


@dataclasses.dataclass
class Route:
    body: bytes
    mode: str = "ok"  # ok | cut (close mid-body) | stall (pause mid-body) | status
    status: int = 200
    fail_first: int = 0  # answer 500 this many times first


class Server:
    """A stdlib HTTP server in a thread; `routes` maps a path to what it answers."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits[self.path] += 1
                route = server.routes.get(self.path)
                if route is None or route.mode == "status":
                    status = 404 if route is None else route.status
                    self.send_error(status)
                    return
                if route.fail_first > 0:
                    route.fail_first -= 1
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                half = len(route.body) // 2
                try:
                    if route.mode == "ok":
                        self.wfile.write(route.body)
                        return
                    self.wfile.write(route.body[:half])
                    self.wfile.flush()
                    if route.mode == "stall":
                        time.sleep(1.5)
                        self.wfile.write(route.body[half:])
                    self.close_connection = True
                except OSError:
                    pass  # the client gave up first

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    srv = Server()
    monkeypatch.setenv("AWR_DATA_MIRROR", srv.url)
    monkeypatch.delenv("AWR_NO_VERIFY", raising=False)
    monkeypatch.setattr(fetch, "RETRIES", 0)  # faults are reported at once; one test retries
    try:
        yield srv
    finally:
        srv.close()


def fake_beauty(seed: int = 0) -> tuple[bytes, list[list[int]]]:
    """A small SASRec-format pairs file (300 users) and its sequences."""
    rng = np.random.default_rng(seed)
    seqs = [
        rng.choice(np.arange(1, 501), size=int(rng.integers(1, 12)), replace=False).tolist()
        for _ in range(300)
    ]
    text = "".join(f"{u} {i}\n" for u, seq in enumerate(seqs, 1) for i in seq)
    return text.encode(), seqs


@pytest.fixture
def beauty(server, monkeypatch) -> tuple[bytes, list[list[int]]]:
    """Serve a fake Beauty at beauty/Beauty.txt and make its sha256 the published one."""
    body, seqs = fake_beauty()
    patched = dataclasses.replace(SOURCES["beauty"], sha256=hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(SOURCES, "beauty", patched)
    server.routes["/beauty/Beauty.txt"] = Route(body)
    return body, seqs


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def load(tmp_path: Path, name: str, **kwargs):
    data = tmp_path / "data"
    return load_dataset(name, str(data), str(tmp_path / "cache"), download=True, **kwargs)


# --- success -----------------------------------------------------------------------------------


def test_download_with_progress_is_verified_stored_and_used_again(
    tmp_path: Path, server, beauty, capsys
) -> None:
    body, seqs = beauty
    data = load(tmp_path, "beauty")
    assert [s.tolist() for s in data.sequences] == seqs
    target = tmp_path / "data" / "beauty_sasrec" / "Beauty.txt"
    assert data.source == str(target) and target.read_bytes() == body
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not owner-only
    assert files_under(tmp_path / "data") == [target]  # the partial folder is gone
    err = capsys.readouterr().err
    assert f"downloading dataset 'beauty' from {server.url}/beauty/Beauty.txt" in err
    kb = f"{len(body) / 1000:.1f}k"
    assert "100%" in err and f"{kb}/{kb}" in err and "B/s]" in err  # tqdm: bytes, rate
    assert f"verified: sha256 {SOURCES['beauty'].sha256}" in err
    assert f"stored at {target}" in err
    again = load(tmp_path, "beauty")
    assert [s.tolist() for s in again.sequences] == seqs
    assert server.hits["/beauty/Beauty.txt"] == 1  # the second load used the stored file


@pytest.mark.parametrize(
    ("name", "published"),
    [("beauty", "beauty_sasrec/Beauty.txt.gz"), ("beauty-5core", "beauty_s3rec_5core/Beauty.txt")],
)
def test_real_files_pass_the_embedded_sha256(
    data_dir: Path, tmp_path: Path, server, name: str, published: str
) -> None:
    body = raw.read_bytes(data_dir / published)  # SASRec's / S3-Rec's file, unpacked
    server.routes[f"/{name}/Beauty.txt"] = Route(body)
    stats = dataset_stats(load(tmp_path, name))
    assert (stats["users"], stats["items"], stats["interactions"]) == SOURCES[name].counts
    assert files_under(tmp_path / "data") == [tmp_path / "data" / SOURCES[name].target]


def test_retry_after_a_server_error_succeeds(tmp_path: Path, server, beauty, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "RETRIES", 1)  # pooch waits 1 s before the second try
    server.routes["/beauty/Beauty.txt"].fail_first = 1
    assert len(load(tmp_path, "beauty").sequences) == 300
    assert server.hits["/beauty/Beauty.txt"] == 2


# --- faults ------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("sha256", "does not have the published sha256"),
        ("404", "(HTTP 404 Not Found)"),
        ("500", "(HTTP 500 Internal Server Error, 1 try)"),
        ("refused", "(connection refused, 1 try)"),
        ("cut", "(the connection broke before the end of the file, 1 try)"),
        ("stall", "(no data for 0.3 s, 1 try)"),
    ],
)
def test_fault_gives_one_line_leaves_nothing_and_a_retry_succeeds(
    tmp_path: Path, server, beauty, monkeypatch, fault: str, reason: str
) -> None:
    body, seqs = beauty
    route = server.routes["/beauty/Beauty.txt"]
    if fault == "sha256":
        route.body = body.replace(b"\n", b"\r\n", 1)
    elif fault in ("404", "500"):
        route.mode, route.status = "status", int(fault)
    elif fault == "refused":
        monkeypatch.setenv("AWR_DATA_MIRROR", f"http://127.0.0.1:{closed_port()}")
    elif fault == "stall":
        monkeypatch.setattr(fetch, "TIMEOUT_S", 0.3)
        route.mode = "stall"
    else:
        route.mode = "cut"
    with pytest.raises(DataError) as err:
        load(tmp_path, "beauty")
    message = str(err.value)
    assert "\n" not in message and reason in message
    url = f"{os.environ['AWR_DATA_MIRROR']}/beauty/Beauty.txt"
    assert message.startswith(f"could not download {url} (") or fault == "sha256"
    place = tmp_path / "data" / "beauty_sasrec" / "Beauty.txt"
    assert message.endswith(f"download it by hand and put it at {place}")
    assert files_under(tmp_path / "data") == []
    assert not list((tmp_path / "data" / "beauty_sasrec").glob(".download-*"))
    assert not list(tqdm.tqdm._instances)  # the bar was closed: it cannot print after the error
    # the fault is gone: the next run starts clean and succeeds
    monkeypatch.setenv("AWR_DATA_MIRROR", server.url)
    route.body, route.mode = body, "ok"
    assert [s.tolist() for s in load(tmp_path, "beauty").sequences] == seqs


def test_404_is_not_retried(tmp_path: Path, server, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "RETRIES", 3)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"HTTP 404"):
        load(tmp_path, "beauty-5core")
    assert server.hits["/beauty-5core/Beauty.txt"] == 1 and time.monotonic() - start < 1


def test_interrupt_leaves_nothing(tmp_path: Path, server, beauty, monkeypatch) -> None:
    def interrupted(self, url, output_file, store):
        Path(output_file).write_bytes(b"1 2\n1 3\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(tmp_path, "beauty")
    assert files_under(tmp_path / "data") == []


def test_stale_partial_folders_are_removed(tmp_path: Path, server, beauty) -> None:
    folder = tmp_path / "data" / "beauty_sasrec"
    old, recent = folder / ".download-old", folder / ".download-recent"
    for partial in (old, recent):
        partial.mkdir(parents=True)
        (partial / "Beauty.txt").write_bytes(b"1 2\n")
    hour_ago = time.time() - download.STALE_S - 5
    os.utime(old / "Beauty.txt", (hour_ago, hour_ago))
    os.utime(old, (hour_ago, hour_ago))
    load(tmp_path, "beauty")
    assert not old.exists() and recent.exists()  # a running download's folder is kept


# --- off switches and messages -----------------------------------------------------------------


def test_no_download_names_url_file_and_place(tmp_path: Path, server, monkeypatch) -> None:
    monkeypatch.delenv("AWR_DATA_MIRROR")
    monkeypatch.setenv("AWR_NO_DOWNLOAD", "1")
    with pytest.raises(DataError) as err:
        load_dataset("beauty", str(tmp_path / "data"), str(tmp_path / "c"))  # download from env
    place = tmp_path / "data" / "beauty_sasrec" / "Beauty.txt"
    assert str(err.value) == (
        "dataset 'beauty' is not in the data dir and downloading is off (--no-download or "
        f"AWR_NO_DOWNLOAD): download {SOURCES['beauty'].url} and put it at {place}"
    )
    monkeypatch.setenv("AWR_NO_DOWNLOAD", "maybe")
    with pytest.raises(DataError, match=r"AWR_NO_DOWNLOAD='maybe': expected 1 or 0"):
        load_dataset("beauty", str(tmp_path / "data"), str(tmp_path / "c"))
    monkeypatch.setenv("AWR_DATA_MIRROR", "ftp://mirror")
    with pytest.raises(DataError, match=r"AWR_DATA_MIRROR='ftp://mirror': expected an http"):
        load(tmp_path, "beauty")
    assert not server.hits and files_under(tmp_path) == []


def test_sha256_override_accepts_with_a_warning(
    tmp_path: Path, server, beauty, monkeypatch, capsys
) -> None:
    body, _ = beauty
    server.routes["/beauty/Beauty.txt"].body = other = body + b"301 7\n"
    monkeypatch.setenv("AWR_NO_VERIFY", "1")
    assert len(load(tmp_path, "beauty").sequences) == 301
    digest = hashlib.sha256(other).hexdigest()
    assert f"is not the published file (sha256 {digest}" in capsys.readouterr().err


# --- ML-1M: unzip, preprocess, verify the result -----------------------------------------------


def ml1m_zip(ratings: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("ml-1m/README", "GroupLens ML-1M (test copy)\n")
        archive.writestr(sources.ML1M_MEMBER, ratings)
    return buffer.getvalue()


def test_ml1m_partial_ratings_mismatch_then_override(
    data_dir: Path, tmp_path: Path, server, monkeypatch, capsys
) -> None:
    raw_path = data_dir / "ml-1m" / "raw" / "ratings_users1-2999.dat.gz"
    server.routes["/ml-1m/ml-1m.zip"] = Route(ml1m_zip(gzip.decompress(raw_path.read_bytes())))
    expected = raw.preprocess_ml1m(raw_path).sequences
    with pytest.raises(DataError) as err:
        load(tmp_path, "ml-1m")
    message = str(err.value)
    users, items, n = len(expected), max(int(s.max()) for s in expected), sum(map(len, expected))
    assert "\n" not in message and message.startswith(f"{server.url}/ml-1m/ml-1m.zip: ")
    assert f"{users:,} / {items:,} / {n:,} users / items / interactions" in message
    assert f"sequence sha256 {canonical_sha256(expected)}" in message
    assert "expected 6,040 / 3,416 / 999,611" in message
    assert message.endswith("nothing was kept. Set AWR_NO_VERIFY=1 to accept it")
    assert users == 2999 and files_under(tmp_path / "data") == []
    monkeypatch.setenv("AWR_NO_VERIFY", "1")  # the documented override
    data = load(tmp_path, "ml-1m")
    stored = tmp_path / "data" / "ml-1m" / "ml-1m_seq.txt"
    assert files_under(tmp_path / "data") == [stored]
    assert stored.read_bytes() == canonical_text(expected)
    assert all(np.array_equal(a, b) for a, b in zip(data.sequences, expected, strict=True))
    assert "accepted because AWR_NO_VERIFY is set" in capsys.readouterr().err


def test_ml1m_zip_placed_by_hand_verifies_without_download(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """ratings.dat rebuilt from the published sequences (increasing times, one rare movie that
    the 5-rating filter drops) must preprocess to exactly the published ML-1M."""
    monkeypatch.setenv("AWR_NO_DOWNLOAD", "1")
    published = load_dataset("ml-1m", str(data_dir), str(tmp_path / "cache"))
    movie_ids = np.loadtxt(data_dir / "ml-1m" / "item_map.tsv", skiprows=1, dtype=np.int64)[:, 1]
    lines = [
        f"{user}::{movie}::4::{978300000 + t}"
        for user, seq in enumerate(published.sequences, 1)
        for t, movie in enumerate(movie_ids[seq - 1].tolist())
    ]
    lines[1:1] = [f"{user}::99999::3::978300000" for user in (1, 2, 3, 4)]  # < 5 ratings
    placed = tmp_path / "data" / "ml-1m" / "ml-1m.zip"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(ml1m_zip(("\n".join(lines) + "\n").encode()))
    data = load_dataset("ml-1m", str(tmp_path / "data"), str(tmp_path / "cache"))
    stored = tmp_path / "data" / "ml-1m" / "ml-1m_seq.txt"
    assert data.source == str(stored) and files_under(tmp_path / "data") == [placed, stored]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == SOURCES["ml-1m"].sha256
    assert all(
        np.array_equal(a, b) for a, b in zip(data.sequences, published.sequences, strict=True)
    )
    seq_file = gzip.decompress((data_dir / "ml-1m" / "ml-1m_seq.txt.gz").read_bytes())
    assert stored.read_bytes() == seq_file  # the canonical text is the published seq file
    assert canonical_text([np.array([3, 1]), np.array([2])]) == b"1 3 1\n2 2\n"


# --- the command line: default data dir, --no-download, a second run without network --------


def test_cli_data_stats_downloads_into_the_user_cache_once(
    data_dir: Path, tmp_path: Path, server, monkeypatch, capsys
) -> None:
    """`orchestrate.py --data-stats beauty` with no data dir set and an empty home (in-process;
    the same by hand from a fresh clone is in the report)."""
    server.routes["/beauty/Beauty.txt"] = Route(
        raw.read_bytes(data_dir / "beauty_sasrec" / "Beauty.txt.gz")
    )
    for name in ("AWR_DATA_DIR", "AWR_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWR_NO_DOWNLOAD", "0")  # restored after the test: main() may set it
    monkeypatch.syspath_prepend(str(ROOT))
    from orchestrate import main

    assert main(["--data-stats", "beauty", "--no-download"]) == 2
    place = tmp_path / "home" / ".cache" / "awr" / "data" / "beauty_sasrec" / "Beauty.txt"
    assert capsys.readouterr().err.splitlines() == [
        "error: dataset 'beauty' is not in the data dir and downloading is off (--no-download "
        f"or AWR_NO_DOWNLOAD): download {server.url}/beauty/Beauty.txt and put it at {place}"
    ]
    assert not server.hits
    monkeypatch.setenv("AWR_NO_DOWNLOAD", "0")
    outputs = []
    for _ in range(2):
        assert main(["--data-stats", "beauty"]) == 0
        outputs.append(capsys.readouterr())
    for out in outputs:
        assert all(n in out.out for n in ("52,204", "57,289", "394,908"))
        assert f"({place})" in out.out
    assert "downloading dataset 'beauty'" in outputs[0].err and "4.54M/4.54M" in outputs[0].err
    assert "verified: sha256" in outputs[0].err and outputs[1].err == ""
    assert server.hits["/beauty/Beauty.txt"] == 1  # the second run used the stored copy
