"""One console per user and display: launching gpuops again on the same display raises the
window that is already open there; a launch on another display opens its own.

The first instance listens on a local socket named per user (in $XDG_RUNTIME_DIR when set,
which is private to the user; otherwise a name with the user id) and per display (see
`display_key`). A later launch connects, sends "raise", waits briefly for "ok" and exits. A
socket left behind by a crashed instance refuses connections: the new instance removes it and
listens itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger("gpuops.gui.instance")

RAISE_REQUEST = b"raise\n"
RAISE_ACK = b"ok\n"
#: How long a new launch waits for the running instance (it answers from its event loop).
CONNECT_TIMEOUT_MS = 1000
ANSWER_TIMEOUT_MS = 3000


#: Characters kept as they are in a socket name; anything else is replaced (and the name hashed).
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Socket paths are limited to 107 bytes: the readable part of the key is cut to this length.
_KEY_CHARS = 32


def display_key(environ: Mapping[str, str] | None = None) -> str:
    """Which display a window of this launch appears on, as a socket-name-safe tag.

    A Wayland compositor (WAYLAND_DISPLAY, relative to the runtime dir unless absolute) wins
    over the X server it may also offer (XWayland's DISPLAY belongs to the same desktop). An X
    display is its server, not its screen: ":0", ":0.0" and "unix:0" are one display, while
    "localhost:10" (ssh -X) is another. Without either, the login session (XDG_SESSION_ID)
    stands for the display, so two text consoles do not share a window; with none, "none".
    """
    env = os.environ if environ is None else environ
    wayland = env.get("WAYLAND_DISPLAY", "").strip()
    x_display = env.get("DISPLAY", "").strip()
    session = env.get("XDG_SESSION_ID", "").strip()
    if wayland:
        socket = Path(wayland)
        if socket.is_absolute() and str(socket.parent) == env.get("XDG_RUNTIME_DIR", "").rstrip("/"):
            wayland = socket.name  # the same compositor as its name relative to the runtime dir
        identity = "wayland-" + wayland.removeprefix("wayland-")
    elif x_display:
        host, _, number = x_display.rpartition(":")
        server = number.split(".", 1)[0]
        identity = "x11-" + (f"{host}-" if host not in ("", "unix") else "") + server
    elif session:
        identity = f"session-{session}"
    else:
        return "none"
    tag = _UNSAFE.sub("_", identity)
    if tag != identity or len(tag) > _KEY_CHARS:
        # Replaced or cut characters could make two displays collide: a hash keeps them apart.
        tag = f"{tag[:_KEY_CHARS]}-{hashlib.sha1(identity.encode()).hexdigest()[:8]}"
    return tag


def server_name(environ: Mapping[str, str] | None = None) -> str:
    """A name no other user or display shares: a socket path in the user's runtime dir, or a
    name tagged with the user id, both tagged with `display_key`."""
    env = os.environ if environ is None else environ
    display = display_key(env)
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return str(Path(runtime) / f"gpuops-console-{display}.sock")
    return f"gpuops-console-{os.getuid()}-{display}"


def ask_running_instance_to_raise(name: str | None = None) -> bool:
    """True if a running console took the request to show its window (this launch can exit)."""
    socket = QLocalSocket()
    socket.connectToServer(name or server_name())
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    try:
        socket.write(RAISE_REQUEST)
        socket.flush()
        answer = b""
        while not answer.endswith(b"\n") and socket.waitForReadyRead(ANSWER_TIMEOUT_MS):
            answer += bytes(socket.readAll().data())
        if answer != RAISE_ACK:
            log.warning("another gpuops console is listening but did not answer (%r); opening a new window", answer)
            return False
        return True
    finally:
        socket.abort()


class InstanceServer(QObject):
    """Listens for later launches; emits `raiseRequested` in the GUI thread for each."""

    raiseRequested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        #: Raise requests answered so far.
        self.requests = 0

    @property
    def listening(self) -> bool:
        return self._server.isListening()

    def listen(self, name: str | None = None) -> bool:
        """Listen on `name`, replacing a stale socket from a crashed instance; False (and a
        warning: this console then simply is not the one later launches find) if it cannot."""
        name = name or server_name()
        if not self._server.listen(name):
            # Nobody answered on it (we asked first), so whatever holds the name is stale.
            QLocalServer.removeServer(name)
            if not self._server.listen(name):
                log.warning("cannot listen for other launches on %s: %s", name, self._server.errorString())
                return False
        log.debug("single instance: listening on %s", self._server.fullServerName())
        return True

    def close(self) -> None:
        self._server.close()

    @Slot()
    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            connection = self._server.nextPendingConnection()
            connection.readyRead.connect(lambda c=connection: self._read(c))
            connection.disconnected.connect(connection.deleteLater)

    def _read(self, connection: QLocalSocket) -> None:
        if not connection.canReadLine():
            return
        request = bytes(connection.readLine().data())
        if request != RAISE_REQUEST:
            log.warning("ignoring an unknown request from another launch: %r", request[:40])
            connection.disconnectFromServer()
            return
        self.requests += 1
        self.raiseRequested.emit()
        connection.write(RAISE_ACK)
        connection.flush()
        connection.disconnectFromServer()
