#!/usr/bin/env python3
"""HTTP file server for the nidofs tests that injects faults on request.

The server serves the regular files under --root over HTTP/1.1 on 127.0.0.1
only. It supports GET and HEAD, single byte ranges, ETag, Last-Modified and
If-Range, and keeps connections alive. It opens the file again for every
request, so a test can replace a file on disk and the next request sees the
new content, size and validators.

Tests switch faults at runtime through the control endpoint:

    GET /_ctl/set?fault=NAME[&count=N][&path=/FILE][&PARAM=VALUE...]
    GET /_ctl/clear
    GET /_ctl/stats[?reset=1]

count is the number of requests the fault changes before it clears itself
(default: unlimited, 0 clears the fault). path limits the fault to one file.
A request that the fault cannot change (for example wrong_range on a request
without a Range header) does not use up the count. Faults and their parameters:

    status5xx      respond with code= (500, 502, 503 or 504, default 503)
    status429      respond 429 with Retry-After: retry_after= (seconds, default 1)
    reset          send the headers and after= body bytes (default half the body),
                   then reset the TCP connection (SO_LINGER 0 and close)
    short          promise the full Content-Length, send after= body bytes
                   (default half the body, must be less than the body), then close
    wrong_range    respond 206 for a range moved by shift= bytes (default 4096,
                   may be negative). Content-Range and body match the moved range
    early_range    respond 206 for a range that starts shift= bytes earlier
                   (default 4096) and ends where requested, honestly labelled
    short_range    respond 206 with length= bytes (default half the requested
                   length) from the requested start, honestly labelled
    no_range       ignore Range and respond 200 with the whole file
    redirect       respond 302 to location= or to the same path with ?r=1.
                   The redirect target (a request whose query contains r=, or
                   whose path and query equal location=) is served normally.
    redirect_loop  always respond 302, to location= or to the same path with
                   r= incremented
    stall          send the headers and after= body bytes (default 0), send
                   nothing for seconds= (default 3600), then send the rest.
                   For HEAD the pause comes before the headers.
    slow           send the body at rate= bytes per second (default 65536)
    etag_flip      send a different ETag in every response for the same bytes
    ifrange_200    respond 200 with the whole file whenever a ranged GET carries
                   an If-Range with an entity tag, even a matching one

status5xx, status429 and the redirects apply to any path, including missing
files. The other faults apply to GET and HEAD responses for existing files. Range
handling and the range faults apply to GET only, as RFC 9110 defines Range
for GET. Control requests are neither counted nor written to the request log.

Request log (--log), one line per request, flushed after each line:

    METHOD TARGET RANGE STATUS BODY_BYTES FAULT

TARGET is the request target as sent (path and query). RANGE is the Range
header with whitespace removed. RANGE and FAULT are '-' when absent.
BODY_BYTES counts the body bytes written to the socket.
"""

import argparse
import email.utils
import fcntl
import json
import logging
import os
import select
import signal
import socket
import stat
import struct
import sys
import termios
import threading
import time
from datetime import timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOG = logging.getLogger("faultserver")

BIND_ADDRESS = "127.0.0.1"
CONTROL_PREFIX = "/_ctl/"
CHUNK_SIZE = 64 * 1024
# Maximum wait for the client to acknowledge the partial body before a reset.
RESET_DRAIN_SECONDS = 2.0
# Granularity of stall pauses, so a stall notices a closed client or shutdown.
PAUSE_STEP_SECONDS = 0.2

# Marker returned by parse_range for a syntactically valid but unsatisfiable range.
UNSATISFIABLE = "unsatisfiable"

RANGE_FAULTS = ("wrong_range", "early_range", "short_range")
BODY_FAULTS = ("reset", "short", "stall", "slow")


def parse_int(name, text, minimum=None, choices=None, nonzero=False):
    """Parse a control parameter as an integer, raising ValueError on invalid values."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} is invalid: the minimum is {minimum}")
    if choices is not None and value not in choices:
        allowed = ", ".join(str(choice) for choice in choices)
        raise ValueError(f"{name}={value} is invalid: expected one of {allowed}")
    if nonzero and value == 0:
        raise ValueError(f"{name}=0 is invalid: the value must not be 0")
    return value


def parse_seconds(name, text):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}={text!r} is invalid: expected a finite number >= 0")
    return value


def parse_location(name, text):
    if not text or any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise ValueError(f"{name}={text!r} is invalid: expected a URL without control characters")
    return text


# Parameters each fault accepts besides fault=, count= and path=, with their parsers.
FAULT_PARAMS = {
    "status5xx": {"code": lambda name, text: parse_int(name, text, choices=(500, 502, 503, 504))},
    "status429": {"retry_after": lambda name, text: parse_int(name, text, minimum=0)},
    "reset": {"after": lambda name, text: parse_int(name, text, minimum=0)},
    "short": {"after": lambda name, text: parse_int(name, text, minimum=0)},
    "wrong_range": {"shift": lambda name, text: parse_int(name, text, nonzero=True)},
    "early_range": {"shift": lambda name, text: parse_int(name, text, minimum=1)},
    "short_range": {"length": lambda name, text: parse_int(name, text, minimum=1)},
    "no_range": {},
    "redirect": {"location": parse_location},
    "redirect_loop": {"location": parse_location},
    "stall": {
        "seconds": parse_seconds,
        "after": lambda name, text: parse_int(name, text, minimum=0),
    },
    "slow": {"rate": lambda name, text: parse_int(name, text, minimum=1)},
    "etag_flip": {},
    "ifrange_200": {},
}

FAULT_DEFAULTS = {
    "status5xx": {"code": 503},
    "status429": {"retry_after": 1},
    "wrong_range": {"shift": 4096},
    "early_range": {"shift": 4096},
    "stall": {"seconds": 3600.0, "after": 0},
    "slow": {"rate": 65536},
}


class Fault:
    """One active fault: its name, parameters, optional path and remaining count."""

    def __init__(self, name, params, path, remaining):
        self.name = name
        self.params = params
        self.path = path
        # None means unlimited.
        self.remaining = remaining

    def to_json(self):
        return {
            "fault": self.name,
            "params": self.params,
            "path": self.path,
            "remaining": self.remaining,
        }


def build_fault(query):
    """Build a Fault from /_ctl/set query parameters, or None when count=0.

    Raises ValueError that names the invalid or unknown parameter.
    """
    params = dict(query)
    name = params.pop("fault", None)
    if name is None:
        raise ValueError("missing parameter fault=")
    if name not in FAULT_PARAMS:
        known = ", ".join(sorted(FAULT_PARAMS))
        raise ValueError(f"unknown fault {name!r}: expected one of {known}")

    remaining = None
    if "count" in params:
        remaining = parse_int("count", params.pop("count"), minimum=0)
        if remaining == 0:
            return None

    path = params.pop("path", None)
    if path is not None and not path.startswith("/"):
        raise ValueError(f"path={path!r} is invalid: expected an absolute path such as /disk.img")

    values = dict(FAULT_DEFAULTS.get(name, {}))
    parsers = FAULT_PARAMS[name]
    for key, text in params.items():
        parser = parsers.get(key)
        if parser is None:
            accepted = ", ".join(["count", "path", *sorted(parsers)])
            raise ValueError(f"unknown parameter {key!r} for fault {name}: accepted are {accepted}")
        values[key] = parser(key, text)
    return Fault(name, values, path, remaining)


class FaultState:
    """Active fault and counters, shared by all handler threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._active = None
        self._requests = {}
        self._total = 0
        self._injected = {}
        self._flip_counter = 0

    def set_fault(self, fault):
        with self._lock:
            self._active = fault

    def record_request(self, path):
        with self._lock:
            self._total += 1
            self._requests[path] = self._requests.get(path, 0) + 1

    def active_for(self, path):
        """Return the active fault if it applies to path, else None."""
        with self._lock:
            fault = self._active
        if fault is None or (fault.path is not None and fault.path != path):
            return None
        return fault

    def claim(self, fault):
        """Use up one count of fault and return True, or return False if it ran out meanwhile.

        Handlers call this only once they know the fault changes their response,
        so the count equals the number of changed responses.
        """
        with self._lock:
            if self._active is not fault:
                return False
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._active = None
            self._injected[fault.name] = self._injected.get(fault.name, 0) + 1
            return True

    def next_flip(self):
        with self._lock:
            self._flip_counter += 1
            return self._flip_counter

    def snapshot(self, reset=False):
        """Return the counters as a JSON-ready dict, zeroing them if reset is true."""
        with self._lock:
            result = {
                "total_requests": self._total,
                "requests": dict(self._requests),
                "faults_injected": dict(self._injected),
                "active_fault": self._active.to_json() if self._active is not None else None,
            }
            if reset:
                self._total = 0
                self._requests = {}
                self._injected = {}
            return result


class RequestLog:
    """Append-only request log, one flushed line per request."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, line):
        with self._lock:
            # Handler threads are daemons and may finish a request after close().
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self):
        with self._lock:
            self._file.close()


def is_ascii_digits(text):
    return text.isascii() and text.isdigit()


def parse_range(header, size):
    """Parse a Range header against a file of size bytes.

    Returns (first, last) with inclusive offsets, UNSATISFIABLE, or None when
    the header must be ignored (other unit, invalid syntax, several ranges).
    """
    unit, separator, spec = header.partition("=")
    if not separator or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    # NOTE: a request for several ranges gets 200 with the whole file, which
    # RFC 9110 allows. The server never sends multipart/byteranges.
    if "," in spec:
        return None
    first_text, dash, last_text = spec.partition("-")
    if not dash:
        return None
    first_text = first_text.strip()
    last_text = last_text.strip()

    if first_text == "":
        if not is_ascii_digits(last_text):
            return None
        suffix_length = int(last_text)
        if suffix_length == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix_length), size - 1

    if not is_ascii_digits(first_text):
        return None
    if last_text and not is_ascii_digits(last_text):
        return None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def is_entity_tag(value):
    value = value.strip()
    return value.startswith('"') or value.startswith('W/"')


def if_range_matches(value, etag, mtime):
    """Evaluate an If-Range validator against the current ETag and mtime.

    Entity tags use the strong comparison, so a weak tag never matches. A date
    matches when it equals Last-Modified to the second.
    """
    value = value.strip()
    if is_entity_tag(value):
        return value == etag
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    if date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)
    return int(date.timestamp()) == int(mtime)


def make_etag(st):
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def changed_range(fault, first, last, size):
    """Return the (first, last) range that a range fault sends instead, or None if it cannot apply."""
    length = last - first + 1
    if fault.name == "wrong_range":
        new_first = min(max(first + fault.params["shift"], 0), size - 1)
        if new_first == first:
            return None
        return new_first, min(new_first + length - 1, size - 1)
    if fault.name == "early_range":
        if first == 0:
            return None
        return max(0, first - fault.params["shift"]), last
    if fault.name == "short_range":
        new_length = fault.params.get("length", length // 2)
        if new_length < 1 or new_length >= length:
            return None
        return first, first + new_length - 1
    raise AssertionError(f"not a range fault: {fault.name}")


def wait_until_acknowledged(sock, timeout):
    """Wait until the peer has acknowledged all sent data, or until timeout seconds pass.

    A reset discards unsent data, so without this wait the client could miss
    the partial body. Uses the Linux SIOCOUTQ ioctl (same value as TIOCOUTQ)
    and falls back to a short sleep where it is missing.
    """
    deadline = time.monotonic() + timeout
    request = getattr(termios, "TIOCOUTQ", None)
    while time.monotonic() < deadline:
        if request is None:
            time.sleep(min(0.2, timeout))
            return
        try:
            buffer = fcntl.ioctl(sock.fileno(), request, struct.pack("i", 0))
        except OSError as error:
            LOG.debug("SIOCOUTQ failed, sleeping instead: %s", error)
            time.sleep(min(0.2, timeout))
            return
        if struct.unpack("i", buffer)[0] == 0:
            return
        time.sleep(0.01)


class FaultHandler(BaseHTTPRequestHandler):
    """Request handler: control endpoint, file serving and fault injection."""

    protocol_version = "HTTP/1.1"
    server_version = "nidofs-faultserver/1"

    # Per-request state for the log line, reset at the start of each request.
    response_status = None
    body_sent = 0
    fault_applied = None

    def do_GET(self):
        self.handle_file_request(send_body=True)

    def do_HEAD(self):
        self.handle_file_request(send_body=False)

    def log_message(self, format, *args):
        LOG.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """Send an error for a request the base class rejected, and log it."""
        self.response_status = code
        self.body_sent = 0
        self.fault_applied = None
        self.close_connection = True
        text = f"{code} {message or HTTPStatus(code).phrase}\n"
        try:
            self.send_text(code, text, [("Connection", "close")])
        except (BrokenPipeError, ConnectionResetError) as error:
            LOG.debug("client %s disconnected: %s", self.client_address, error)
        self.write_log()

    # -- request log --------------------------------------------------------

    def write_log(self):
        request_log = self.server.request_log
        if request_log is None or self.response_status is None:
            return
        headers = getattr(self, "headers", None)
        range_header = headers.get("Range") if headers is not None else None
        range_field = "".join(range_header.split()) if range_header else "-"
        method = getattr(self, "command", None) or "-"
        target = getattr(self, "path", None) or "-"
        request_log.write(
            f"{method} {target} {range_field or '-'} {self.response_status} "
            f"{self.body_sent} {self.fault_applied or '-'}"
        )

    # -- small responses ----------------------------------------------------

    def start_response(self, status):
        self.response_status = status
        self.send_response(status)

    def send_text(self, status, text, extra_headers=()):
        body = text.encode("utf-8")
        self.start_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self.body_sent += len(body)

    def send_json(self, status, value):
        body = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- control endpoint ---------------------------------------------------

    def handle_control(self, raw_path, query):
        action = raw_path[len(CONTROL_PREFIX):]
        pairs = parse_qs(query, keep_blank_values=True)
        repeated = [key for key, values in pairs.items() if len(values) > 1]
        if repeated:
            self.send_json(400, {"error": f"parameter {repeated[0]!r} is given more than once"})
            return
        params = {key: values[0] for key, values in pairs.items()}
        state = self.server.state

        if action == "set":
            try:
                fault = build_fault(params)
            except ValueError as error:
                LOG.info("rejected control request %s: %s", self.path, error)
                self.send_json(400, {"error": str(error)})
                return
            state.set_fault(fault)
            LOG.info("fault set: %s", json.dumps(fault.to_json() if fault else None))
            self.send_json(200, {"active_fault": fault.to_json() if fault else None})
        elif action == "clear":
            state.set_fault(None)
            LOG.info("fault cleared")
            self.send_json(200, {"active_fault": None})
        elif action == "stats":
            self.send_json(200, state.snapshot(reset=params.get("reset") == "1"))
        else:
            self.send_json(404, {"error": f"unknown control action {action!r}: expected set, clear or stats"})

    # -- file requests ------------------------------------------------------

    def handle_file_request(self, send_body):
        self.response_status = None
        self.body_sent = 0
        self.fault_applied = None

        target = self.path
        if "://" in target.split("?", 1)[0]:
            # Absolute-form request target: keep only the path and query.
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        raw_path, _, query = target.partition("?")
        query = query.partition("#")[0]

        if raw_path.startswith(CONTROL_PREFIX):
            self.handle_control(raw_path, query)
            return

        path = unquote(raw_path)
        self.server.state.record_request(path)
        try:
            self.route_file_request(path, raw_path, query, send_body)
        except (BrokenPipeError, ConnectionResetError) as error:
            self.close_connection = True
            LOG.debug("client %s disconnected during %s: %s", self.client_address, self.path, error)
        finally:
            self.write_log()

    def claim(self, fault):
        if self.server.state.claim(fault):
            self.fault_applied = fault.name
            return True
        return False

    def route_file_request(self, path, raw_path, query, send_body):
        fault = self.server.state.active_for(path)
        if fault is not None and self.send_status_fault(fault, raw_path, query):
            return

        file_path = self.resolve(path)
        if file_path is None:
            self.send_text(404, f"not found: {path}\n")
            return
        try:
            file = open(file_path, "rb")
        except OSError:
            self.send_text(404, f"not found: {path}\n")
            return
        with file:
            st = os.fstat(file.fileno())
            if not stat.S_ISREG(st.st_mode) or not self.opened_inside_root(file.fileno()):
                self.send_text(404, f"not found: {path}\n")
                return
            self.serve_file(file, st, fault, send_body)

    def resolve(self, path):
        """Map a decoded URL path to a file path inside the root, or None if it leaves the root."""
        if "\x00" in path:
            return None
        root = self.server.root
        candidate = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if os.path.commonpath([root, candidate]) != root:
            return None
        return candidate

    def opened_inside_root(self, fd):
        """Check where an open file really is, in case a symlink changed after resolve()."""
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            # NOTE: without /proc the check after open is skipped, and only resolve() guards the root.
            return True
        root = self.server.root
        return os.path.commonpath([root, real]) == root

    def send_status_fault(self, fault, raw_path, query):
        """Send a status or redirect fault response and return True, or return False if none applies."""
        if fault.name == "status5xx":
            if not self.claim(fault):
                return False
            code = fault.params["code"]
            self.send_text(code, f"{code} {HTTPStatus(code).phrase} (injected fault)\n")
            return True
        if fault.name == "status429":
            if not self.claim(fault):
                return False
            retry_after = str(fault.params["retry_after"])
            self.send_text(429, "429 Too Many Requests (injected fault)\n", [("Retry-After", retry_after)])
            return True
        if fault.name in ("redirect", "redirect_loop"):
            location = self.redirect_location(fault, raw_path, query)
            if location is None or not self.claim(fault):
                return False
            self.send_text(302, f"redirect to {location}\n", [("Location", location)])
            return True
        return False

    def redirect_location(self, fault, raw_path, query):
        """Return where a redirect fault points this request, or None if it is the redirect target."""
        location = fault.params.get("location")
        query_params = parse_qs(query, keep_blank_values=True)
        if fault.name == "redirect_loop":
            if location is not None:
                return location
            try:
                hop = int(query_params.get("r", ["0"])[0])
            except ValueError:
                hop = 0
            return f"{raw_path}?r={hop + 1}"

        if location is None:
            if "r" in query_params:
                return None
            return f"{raw_path}?r=1"
        target = urlsplit(location)
        if target.path == raw_path and target.query == query:
            return None
        return location

    def serve_file(self, file, st, fault, send_body):
        size = st.st_size
        etag = make_etag(st)
        if fault is not None and fault.name == "etag_flip" and self.claim(fault):
            etag = f'{etag[:-1]}-flip{self.server.state.next_flip()}"'
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)

        byte_range = self.select_range(fault, size, etag, st.st_mtime) if send_body else None
        if byte_range == UNSATISFIABLE:
            self.send_text(
                416,
                f"range not satisfiable for a file of {size} bytes\n",
                [("Content-Range", f"bytes */{size}"), ("ETag", etag), ("Last-Modified", last_modified)],
            )
            return
        if byte_range is None:
            status, first, length = 200, 0, size
        else:
            status, first, length = 206, byte_range[0], byte_range[1] - byte_range[0] + 1

        body_fault = None
        if fault is not None and fault.name in BODY_FAULTS:
            body_fault = self.claim_body_fault(fault, length, send_body)

        if body_fault == "stall" and not send_body:
            if not self.pause(fault.params["seconds"]):
                self.close_connection = True
                return

        self.start_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{first + length - 1}/{size}")
        self.end_headers()
        if not send_body:
            return

        complete = self.send_file_body(file, first, length, fault if body_fault else None)
        if not complete:
            self.close_connection = True

    def select_range(self, fault, size, etag, mtime):
        """Select the part of the file a GET receives: None (whole file), UNSATISFIABLE, or (first, last).

        Follows RFC 9110: an If-Range that does not match turns the request
        into a plain GET, even when the range is unsatisfiable.
        """
        header = self.headers.get("Range")
        if header is None:
            return None
        parsed = parse_range(header, size)
        if parsed is None:
            return None

        if_range = self.headers.get("If-Range")
        if if_range is not None:
            if fault is not None and fault.name == "ifrange_200" and is_entity_tag(if_range):
                if self.claim(fault):
                    return None
            if not if_range_matches(if_range, etag, mtime):
                return None

        if fault is not None and fault.name == "no_range" and self.claim(fault):
            return None
        if parsed == UNSATISFIABLE:
            return parsed
        if fault is not None and fault.name in RANGE_FAULTS:
            changed = changed_range(fault, parsed[0], parsed[1], size)
            if changed is not None and self.claim(fault):
                return changed
        return parsed

    def claim_body_fault(self, fault, length, send_body):
        """Claim a body fault if it can change this response, returning its name or None."""
        if fault.name == "stall":
            applies = True
        elif not send_body:
            applies = False
        elif fault.name == "short":
            applies = length > 0 and fault.params.get("after", length // 2) < length
        else:
            applies = True
        if applies and self.claim(fault):
            return fault.name
        return None

    def send_file_body(self, file, first, length, fault):
        """Send the body, shaped by a claimed body fault. Return False if it was cut short."""
        if fault is None:
            return self.write_file_bytes(file, first, length)

        if fault.name == "reset":
            partial = min(fault.params.get("after", length // 2), length)
            self.write_file_bytes(file, first, partial)
            self.reset_connection()
            return False
        if fault.name == "short":
            partial = fault.params.get("after", length // 2)
            self.write_file_bytes(file, first, partial)
            return False
        if fault.name == "stall":
            partial = min(fault.params["after"], length)
            return (
                self.write_file_bytes(file, first, partial)
                and self.pause(fault.params["seconds"])
                and self.write_file_bytes(file, first + partial, length - partial)
            )
        if fault.name == "slow":
            return self.write_file_bytes(file, first, length, rate=fault.params["rate"])
        raise AssertionError(f"not a body fault: {fault.name}")

    def write_file_bytes(self, file, offset, count, rate=None):
        """Send count bytes of file from offset, at most rate bytes per second if rate is set.

        Returns False when the client went away, the server is stopping, or the
        file shrank under the open descriptor.
        """
        chunk_size = CHUNK_SIZE if rate is None else max(1, min(CHUNK_SIZE, rate // 10))
        started = time.monotonic()
        done = 0
        while done < count:
            if rate is not None:
                delay = started + done / rate - time.monotonic()
                if delay > 0 and self.server.stopping.wait(delay):
                    return False
            data = os.pread(file.fileno(), min(chunk_size, count - done), offset + done)
            if not data:
                LOG.warning("%s shrank while being sent: no data at offset %d", self.path, offset + done)
                return False
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError) as error:
                LOG.debug("client %s disconnected during %s: %s", self.client_address, self.path, error)
                return False
            done += len(data)
            self.body_sent += len(data)
        return True

    def pause(self, seconds):
        """Hold the connection for seconds without sending.

        Returns False early when the client closes the connection or the server stops.
        """
        deadline = time.monotonic() + seconds
        poller = select.poll()
        poller.register(self.connection, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if self.server.stopping.is_set():
                return False
            step = min(remaining, PAUSE_STEP_SECONDS)
            if not poller.poll(step * 1000):
                continue
            try:
                peeked = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                return False
            if not peeked:
                return False
            # The client sent the next request early. Leave it for the next
            # handle_one_request() and keep waiting without spinning.
            self.server.stopping.wait(step)

    def reset_connection(self):
        """Abort the connection with a TCP RST once the client has the sent bytes."""
        self.close_connection = True
        sock = self.connection
        try:
            wait_until_acknowledged(sock, RESET_DRAIN_SECONDS)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError as error:
            LOG.warning("reset of connection from %s failed: %s", self.client_address, error)


class FaultServer(ThreadingHTTPServer):
    """Threaded HTTP server bound to 127.0.0.1 with the shared fault state."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port, root, request_log):
        self.root = root
        self.request_log = request_log
        self.state = FaultState()
        # Set on shutdown so that stalls and slow bodies end promptly.
        self.stopping = threading.Event()
        super().__init__((BIND_ADDRESS, port), FaultHandler)


def write_port_file(path, port):
    """Write the port to path atomically: a temporary file in the same directory, then rename."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="ascii") as file:
        file.write(f"{port}\n")
    os.replace(temporary, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Serve files over HTTP on 127.0.0.1 with faults switched through /_ctl/.",
    )
    parser.add_argument("--root", required=True, help="directory whose files are served")
    parser.add_argument("--port", type=int, default=0, help="TCP port to bind on 127.0.0.1 (default 0: any free port)")
    parser.add_argument("--port-file", help="file that receives the bound port, written atomically")
    parser.add_argument("--log", help="request log file, one line appended per request")
    parser.add_argument("--verbose", action="store_true", help="log every request and disconnect to stderr")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is invalid: expected 0 to 65535")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="faultserver: %(levelname)s %(message)s",
        stream=sys.stderr,
    )

    root = os.path.realpath(args.root)
    if not os.path.isdir(root):
        LOG.error("--root %s is not a directory: pass the directory whose files should be served", args.root)
        return 2

    request_log = RequestLog(args.log) if args.log else None
    try:
        server = FaultServer(args.port, root, request_log)
    except OSError as error:
        LOG.error("failed to bind %s:%d: %s (pass another --port, or 0 for any free port)", BIND_ADDRESS, args.port, error)
        return 1
    port = server.server_address[1]

    def stop(signum, frame):
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        server.stopping.set()
        # shutdown() waits for serve_forever() to return, so it cannot run in
        # the main thread, which is inside serve_forever().
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"PORT {port}", flush=True)
    LOG.info("listening on %s:%d, serving %s", BIND_ADDRESS, port, root)

    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.stopping.set()
        server.server_close()
        if request_log is not None:
            request_log.close()
    LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
