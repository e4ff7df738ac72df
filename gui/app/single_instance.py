"""One console per user: launching gpuops again raises the window that is already open.

The first instance listens on a local socket named per user (in $XDG_RUNTIME_DIR when set,
which is private to the user; otherwise a name with the user id). A later launch connects,
sends "raise", waits briefly for "ok" and exits. A socket left behind by a crashed instance
refuses connections: the new instance removes it and listens itself.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger("gpuops.gui.instance")

RAISE_REQUEST = b"raise\n"
RAISE_ACK = b"ok\n"
#: How long a new launch waits for the running instance (it answers from its event loop).
CONNECT_TIMEOUT_MS = 1000
ANSWER_TIMEOUT_MS = 3000


def server_name() -> str:
    """A name no other user shares: a socket path in the user's runtime dir, or a uid-tagged name."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return str(Path(runtime) / "gpuops-console.sock")
    return f"gpuops-console-{os.getuid()}"


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
