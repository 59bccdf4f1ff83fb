"""Serve the web app with waitress (Windows and Linux alike), and purge expired photos.

waitress's defaults are made for a trusted network; the booth's phones are strangers on a
venue's Wi-Fi, so the limits are tightened here (see docs/security.md):
- connections: waitress caps connections across all clients, so one client holding them
  all (slowloris: a request line, then one header every few seconds) would lock every other
  phone out. Here one address may hold PER_CLIENT connections at once: the next ones are
  closed as they are accepted, on the server's loop, before any channel or worker exists
  for them. The cap on all connections is well above that (CONNECTIONS), so many addresses
  are needed to fill it;
- request headers: a connection must send a request's line and headers completely within
  HEADER_TIMEOUT of its start (or of the end of its previous request, on keep-alive), or it
  is closed; sending slowly resets nothing. A connection that sends and receives nothing is
  closed after CHANNEL_TIMEOUT as well;
- bodies: a declared body over MAX_BODY is refused with 413 as soon as its headers are
  read, and accepted bodies stay in memory (never spooled to a temp file on the photos'
  disk);
- no Server header, and waitress's own error pages (400, 413, 431, ...) carry the same
  security headers as the app's pages.

The connection limits live in the server (subclasses of waitress's server and channel), not
in a layer in front of the WSGI app: such a layer is called only once waitress has read a
request's headers in full, so a client trickling its headers never reaches it while holding
its connections, and only the server sees a connection as it is accepted.

Behind a reverse proxy (trusted_proxies set) every connection comes from the proxy's address,
so the per-address cap would be one cap for all visitors: it is off there, and the proxy caps
connections per real client and times out slow headers itself (nginx: limit_conn,
client_header_timeout). The header deadline stays on (a proxy sends a request's headers at
once).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections import Counter

from flask import Flask
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from booth.errors import BoothError
from booth.store import Store
from booth.webapp import MAX_BODY
from booth.webapp.security import HEADERS

log = logging.getLogger(__name__)

PURGE_INTERVAL = 60.0
CHANNEL_TIMEOUT = 10  # seconds a connection may stay silent
HEADER_TIMEOUT = 10  # seconds for a request's line and headers, however slowly they come
# Connections at once from one address: a phone's browser opens up to 6 to a site.
PER_CLIENT = 20
# Across all clients. select() cannot watch more than 512 sockets on Windows, the listening
# one and waitress's trigger among them; poll() (Linux, macOS) is limited only by the
# process's open files (see _within_open_files).
CONNECTIONS = 1000 if hasattr(select, "poll") else 500
OTHER_FILES = 250  # open files kept for the store, photos being sent, logs, the camera
SETTINGS = dict(
    ident=None,  # no Server header
    connection_limit=CONNECTIONS,
    asyncore_use_poll=hasattr(select, "poll"),
    channel_timeout=CHANNEL_TIMEOUT,
    cleanup_interval=2,  # how often silent and slow connections are looked for
    max_request_body_size=MAX_BODY,
    # A body is counted against max_request_body_size after each read is buffered, so the
    # buffer must hold the largest body accepted plus one read (and a chunked body's chunk
    # headers) without spilling to a temp file; twice the limit leaves room for that.
    recv_bytes=8192,
    inbuf_overflow=2 * MAX_BODY,
    max_request_header_size=32 * 1024,
)


class _ErrorTask(ErrorTask):
    """waitress answers a request it cannot parse (400, 413, 431, ...) itself, outside the
    WSGI app: its page gets the app's security headers here."""

    def __init__(self, channel, request) -> None:
        super().__init__(channel, request)
        # waitress names request.path in its log line when the client leaves while this page
        # is written; a request it could not parse has none (an AttributeError traceback).
        if not hasattr(request, "path"):
            request.path = ""

    def execute(self) -> None:
        self.response_headers.extend([*HEADERS.items(), ("Cache-Control", "no-store")])
        super().execute()


class _Channel(HTTPChannel):
    """One connection; counted against its address's cap while it is open."""

    error_task_class = _ErrorTask
    counted = False

    def __init__(self, server: _Server, sock, addr, adj, map=None) -> None:
        super().__init__(server, sock, addr, adj, map=map)
        # The header deadline starts here, and again as each response has been sent.
        self.waiting_since = self.creation_time
        server.clients[self.addr[0]] += 1
        self.counted = True

    def service(self) -> None:
        super().service()
        self.waiting_since = time.time()

    def awaits_headers(self) -> bool:
        """Neither serving a request nor sending a response, and no complete headers yet
        (a body being read is not held to the header deadline)."""
        return not (self.requests or self.total_outbufs_len or self.will_close
                    or self.close_when_flushed
                    or (self.request is not None and self.request.headers_finished))

    def del_channel(self, map=None) -> None:
        super().del_channel(map)
        if self.counted:
            self.counted = False
            self.server.release(self.addr[0])


class _Server(TcpWSGIServer):
    """waitress's server with a cap on connections per address (0: none) and a deadline
    for request headers; one log line per maintenance round for each kind of closing."""

    channel_class = _Channel

    def __init__(self, *args, per_client: int, header_timeout: float, **kwargs) -> None:
        self.per_client, self.header_timeout = per_client, header_timeout
        self.clients: Counter[str] = Counter()  # open connections per address
        self.refused: Counter[str] = Counter()  # since the last maintenance round
        super().__init__(*args, **kwargs)

    def accept(self):
        pair = super().accept()
        if pair is not None and self.per_client and self.clients[pair[1][0]] >= self.per_client:
            pair[0].close()
            self.refused[pair[1][0]] += 1
            return None  # waitress's handle_accept then makes no channel
        return pair

    def release(self, address: str) -> None:
        self.clients[address] -= 1
        if not self.clients[address]:
            del self.clients[address]

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # silent connections
        late: Counter[str] = Counter()
        for channel in self.active_channels.values():
            if not channel.awaits_headers():
                channel.waiting_since = now  # busy: the deadline starts once it is done
            elif now - channel.waiting_since > self.header_timeout:
                channel.will_close = True
                late[channel.addr[0]] += 1
        if late:
            log.warning("closed %d connection(s) that sent no complete request headers "
                        "within %g s: %s", late.total(), self.header_timeout, _by_address(late))
        if self.refused:
            log.warning("refused %d connection(s) over %d at once from one address: %s",
                        self.refused.total(), self.per_client, _by_address(self.refused))
            self.refused.clear()


def _by_address(counts: Counter[str], shown: int = 3) -> str:
    """'127.0.0.1 x490, 127.0.0.5 x3 and 2 more addresses': one bounded line."""
    text = ", ".join(f"{address} x{n}" for address, n in counts.most_common(shown))
    more = len(counts) - shown
    return f"{text} and {more} more address(es)" if more > 0 else text


def _within_open_files(connections: int) -> int:
    """The connection cap the process's open-file limit allows: the soft limit is raised
    toward the hard one if needed (as servers do; Linux's soft default is often 1024),
    and the cap lowered if the hard limit is lower still. A socket accepted beyond the
    limit would fail in accept() over and over, each failure a log line."""
    try:
        import resource
    except ImportError:  # Windows: select()'s limit applies instead (CONNECTIONS)
        return connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + OTHER_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as exc:  # e.g. over macOS's kern.maxfilesperproc
            log.warning("cannot raise the open-file limit to %d: %s", raised, exc)
        if soft < needed:
            connections = max(soft - OTHER_FILES, 1)
            log.warning("open-file limit %d: at most %d connections at once", soft,
                        connections)
    return connections


class WebServer:
    """waitress on host:port; port 0 picks a free port (see .port). `settings` override
    SETTINGS (tests use a short channel_timeout), `per_client` and `header_timeout` the
    connection limits above."""

    def __init__(self, app: Flask, host: str, port: int, threads: int = 8, *,
                 per_client: int = PER_CLIENT, header_timeout: float = HEADER_TIMEOUT,
                 **settings) -> None:
        # Behind a configured reverse proxy the app's ProxyFix reads X-Forwarded-*; without
        # one, waitress drops them before the app sees them.
        behind_proxy = bool(app.extensions["booth.config"].server.trusted_proxies)
        settings = {**SETTINGS, "clear_untrusted_proxy_headers": not behind_proxy, **settings}
        settings["connection_limit"] = _within_open_files(settings["connection_limit"])
        adj = Adjustments(host=host, port=port, threads=threads, **settings)
        # What waitress.create_server does, with the server class above.
        dispatcher = ThreadedTaskDispatcher()  # its threads start once listening
        sockets: dict = {}  # waitress's socket map: the loop serves every listener in it
        try:
            self._listeners = [
                _Server(app, sockets, dispatcher=dispatcher, adj=adj, sockinfo=info,
                        per_client=0 if behind_proxy else per_client,
                        header_timeout=header_timeout)
                for info in adj.listen]
        except OSError as exc:
            raise BoothError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); another "
                             "program may use that port: pass --port with another one") from None
        dispatcher.set_thread_count(threads)
        self._server = self._listeners[0]
        self._sockets = sockets
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.effective_port

    def serve_forever(self) -> None:
        self._server.run()

    def start(self) -> None:
        """Serve from a background thread (beside the station's window)."""
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving: the requests running get 2 s, then the listeners and the open
        connections (a phone's keep-alive) are closed and the loop's thread is joined."""
        self._server.task_dispatcher.shutdown(timeout=2)
        if self._thread is not None and self._thread.is_alive():
            # On the loop's own thread (waitress's dispatchers are not thread-safe): with
            # nothing left to watch, its loop ends.
            self._server.trigger.pull_trigger(self._close_all)
            self._thread.join(timeout=5)
        else:
            self._close_all()

    def _close_all(self) -> None:
        for fd in list(self._sockets):
            if (dispatcher := self._sockets.get(fd)) is not None:
                dispatcher.close()


SWEEP_EVERY = 10  # rounds: the shared store's sweep lists the whole bucket
DELETE_INTERVAL = 5.0  # seconds between looks at the objects waiting to be deleted


class Janitor:
    """Deletes expired captures (file, thumbnail and row) every minute. On the shared store
    every process runs one: each expired row is deleted by exactly one of them (and its
    objects with it), ended rate-limit windows go too, every tenth round one of them (an
    advisory lock) sweeps the bucket for objects no row names, and every DELETE_INTERVAL
    they delete the objects of deleted photos that waited for the bucket to be back
    (booth.store.sweep.DeletionQueue)."""

    def __init__(self, store: Store, interval: float = PURGE_INTERVAL) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="janitor", daemon=True)
        self._deletes_failing = False

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        rounds = 0
        due = time.monotonic()
        while True:
            if time.monotonic() >= due:
                self._purge(rounds)
                rounds += 1
                due = time.monotonic() + self.interval
            wait = due - time.monotonic()
            if self.store.shared:
                self._delete_queued()
                wait = min(wait, DELETE_INTERVAL)
            if self._stop.wait(max(wait, 0.0)):
                return

    def _purge(self, rounds: int) -> None:
        try:
            if self.store.shared:  # first: a purge of photos fails while the bucket is down
                self.store.rate_counts.purge(time.time())
            if purged := self.store.purge_expired():
                log.info("deleted %d expired photo(s)", purged)
            if self.store.shared and rounds % SWEEP_EVERY == 0:
                self.store.sweep()
        except Exception as exc:  # a locked or full disk must not stop the next round
            log.warning("purging expired photos failed: %s", exc)

    def _delete_queued(self) -> None:
        try:
            if deleted := self.store.delete_queued():
                log.info("deleted %d object(s) of deleted photos that waited for the bucket",
                         deleted)
            self._deletes_failing = False
        except Exception as exc:  # the bucket still down: once per outage in the log
            if not self._deletes_failing:
                log.warning("deleting objects that wait for the bucket failed: %s", exc)
            self._deletes_failing = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
