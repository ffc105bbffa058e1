"""The MLflow UI for a store, as a server this process owns: refused at once when its port is
taken, its URL printed once it answers, and stopped (with every process it started) on Ctrl-C
or SIGTERM; on Linux it also ends when this process is killed outright."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from awr.cli.store import CommandError

HOST = "127.0.0.1"
START_TIMEOUT_S = 600.0  # the MLflow UI imports a lot before it listens (113 s on a busy CPU)
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


class Stop(Exception):
    """SIGTERM arrived: stop the server."""


def start_ui(uri: str, port: int) -> int:
    """Serve the MLflow UI of `uri` on 127.0.0.1:`port` until interrupted; 0 when stopped."""
    check_port(port)
    try:
        importlib.metadata.distribution("mlflow")
    except importlib.metadata.PackageNotFoundError:
        raise CommandError(
            "the MLflow UI needs the full mlflow package (mlflow-skinny has no UI): "
            "pip install 'awr[ui]' (in a clone: pip install -e \".[ui]\")"
        ) from None
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", HOST, "--port", str(port), "--workers", "1"]
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return serve(command, port, f"MLflow UI for {uri}", environment)


def check_port(port: int) -> None:
    """CommandError unless `port` can be bound on 127.0.0.1 now."""
    if not 0 < port < 65536:
        raise CommandError(f"--port {port}: expected a port number from 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {HOST} is already in use (another UI?); choose another "
                    "with --port"
                ) from None
            raise CommandError(f"cannot listen on {HOST}:{port}: {error.strerror}") from None


def answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def serve(
    command: Sequence[str], port: int, what: str, environment: dict[str, str] | None = None
) -> int:
    """Run the server `command` (which listens on 127.0.0.1:`port`) in its own process group;
    say where it is once it answers; stop the group on Ctrl-C or SIGTERM and return 0 (one
    line each as it starts, answers, is being stopped and has stopped). A server
    that exits by itself is an error with its exit code."""
    check_port(port)
    server = subprocess.Popen(
        list(command), env=environment, start_new_session=True, preexec_fn=end_with_parent
    )
    previous = signal.signal(signal.SIGTERM, raise_stop)  # before this, PDEATHSIG covers it
    try:
        print(f"starting the {what} on port {port}", flush=True)
        wait_until_listening(server, port, what)
        print(f"{what} at http://{HOST}:{port} (Ctrl-C or SIGTERM stops it)", flush=True)
        code = server.wait()
        raise CommandError(f"the server of the {what} exited with code {code}")
    except (Stop, KeyboardInterrupt):
        print(f"stopping the {what}", flush=True)
        stop_group(server)
        print(f"{what} stopped", flush=True)
        return 0
    finally:
        stop_group(server)
        signal.signal(signal.SIGTERM, previous)


def end_with_parent() -> None:
    """In the server, before it starts (Linux): SIGTERM when this process dies, even by
    SIGKILL, so that no server outlives the command."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def raise_stop(signum: int, frame: object) -> None:
    raise Stop


def wait_until_listening(server: subprocess.Popen, port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(port):
        code = server.poll()
        if code is not None:
            raise CommandError(f"the {what} exited with code {code} before it served (see above)")
        if time.monotonic() > deadline:
            raise CommandError(f"the {what} did not listen on port {port} in {START_TIMEOUT_S:g} s")
        time.sleep(0.2)


def stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever of it is left after
    STOP_TIMEOUT_S (or once the server itself has ended); the server is reaped."""
    if server.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
