"""One file over HTTP(S) with pooch: a tqdm bar, timeouts, retries, every fault as one line.

`fetch(url, dest, sha256, place)` streams `url` into `dest` through pooch (which writes a
temporary file beside `dest`, checks the sha256 and only then moves it to `dest`, removing the
temporary file on every fault). The connect and read timeout is TIMEOUT_S; pooch tries RETRIES
more times after a broken connection, a server error or a hash mismatch, and none after an
HTTP 4xx (Refused). A fault raises DataError whose message names the URL and `place`, where
the user can put the file by hand.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pooch
import requests
import tqdm

from awr.data.errors import DataError

TIMEOUT_S = 30.0  # seconds to connect, and seconds without a byte while reading
RETRIES = 3  # further tries after a retryable fault (pooch waits 1 s, 2 s, 3 s between them)
CHUNK = 1 << 16  # bytes read and written at a time


class Refused(Exception):
    """The server answered 4xx: trying again cannot help (not a pooch-retried error type)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())


def fetch(
    url: str,
    dest: Path,
    sha256: str | None,
    place: Path,
    override: str = "",
    retries: int | None = None,
    timeout: float | None = None,
) -> Path:
    """Download `url` to `dest` (in a partial folder); with `sha256`, a mismatch is refused.

    Every fault raises one DataError line naming the URL and where to put the file by hand
    (`place`); a sha256 mismatch also says `override` (how to accept it anyway). `retries` /
    `timeout` None mean RETRIES / TIMEOUT_S.
    """
    retries = RETRIES if retries is None else retries
    timeout = TIMEOUT_S if timeout is None else timeout
    store = pooch.create(
        path=dest.parent,
        base_url="",
        registry={dest.name: None if sha256 is None else f"sha256:{sha256}"},
        urls={dest.name: url},
        retry_if_failed=retries,
    )
    by_hand = f"download it by hand and put it at {place}"
    logger = pooch.get_logger()
    logger.addFilter(only_retries)  # pooch would name the partial folder as the destination
    try:
        return Path(store.fetch(dest.name, downloader=downloader(timeout)))
    except Refused as exc:
        raise DataError(f"could not download {url} ({exc}); {by_hand}") from None
    except requests.RequestException as exc:
        tries = f"{retries + 1} tries" if retries else "1 try"
        reason = fault_reason(exc, timeout)
        raise DataError(f"could not download {url} ({reason}, {tries}); {by_hand}") from None
    except ValueError:  # pooch: the hash of the download is not the known one
        raise DataError(
            f"the download of {url} does not have the published sha256 {sha256} (corrupt, or "
            f"the source changed); nothing was kept. {override}{by_hand}"
        ) from None
    except OSError as exc:
        raise DataError(f"could not write the download of {url} to {place.parent}: {exc}") from None
    finally:
        logger.removeFilter(only_retries)


def only_retries(record: logging.LogRecord) -> bool:
    """Keep pooch's 'Failed to download ... will attempt again' lines, drop the others."""
    return str(record.msg).startswith("Failed to download")


def downloader(timeout: float):
    """pooch's HTTP downloader with a tqdm bar on stderr; HTTP 4xx raises Refused (no retry)."""

    def download(url: str, output_file: str, store: pooch.Pooch) -> None:
        bar = LazyBar()
        try:
            http = pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK, timeout=timeout)
            http(url, output_file, store)
        except requests.HTTPError as exc:
            response = exc.response
            if response is not None and 400 <= response.status_code < 500:
                raise Refused(response.status_code, response.reason or "") from exc
            raise
        finally:
            bar.close()  # pooch closes it only on success: a fault must not print it later

    return download


class LazyBar:
    """The progress bar pooch drives (`total =`, `update`, `reset`, `close`): a tqdm bar with
    bytes, rate and time left, made once the server has answered (a refused connection prints
    no empty bar). pooch counts whole chunks and ends with `reset(); update(total)`, which
    would restart tqdm's clock: here the count stops at the total and the end fills the bar."""

    def __init__(self) -> None:
        self.bar: tqdm.tqdm | None = None

    @property
    def total(self) -> int | None:
        return None if self.bar is None else self.bar.total

    @total.setter
    def total(self, value: int) -> None:
        self.bar = tqdm.tqdm(total=value or None, unit="B", unit_scale=True, file=sys.stderr)

    def update(self, n: int) -> None:
        if self.bar is not None and self.bar.total:
            self.bar.update(max(0, min(n, self.bar.total - self.bar.n)))
        elif self.bar is not None:
            self.bar.update(n)

    def reset(self) -> None:
        pass  # the end: pooch's update(total) that follows is clamped to what is left

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fault_reason(exc: requests.RequestException, timeout: float) -> str:
    """A few words for a failed request: what a user can act on, not the library's chain."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".strip()
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
        return f"no data for {timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.ConnectionError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "broken" in text:
            return "the connection broke before the end of the file"
        return "cannot connect (offline?)"
    return type(exc).__name__
