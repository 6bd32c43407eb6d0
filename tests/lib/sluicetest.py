# Shared helpers for tests that run the real sluiced: TAP output, SAS tokens,
# Kafka's murmur2, config files, starting / stopping / killing sluiced, a
# lines-protocol client and reading a stream back with sluice-dump.
# SPDX-License-Identifier: Apache-2.0

import atexit
import base64
import hashlib
import hmac
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# --- TAP -------------------------------------------------------------------


class Tap:
    """Minimal TAP producer; exit status 1 when any test failed."""

    def __init__(self, planned=None):
        self.count = 0
        self.failed = 0
        self.planned = planned
        if planned is not None:
            print("1..%d" % planned, flush=True)
        sys.excepthook = self._uncaught

    def _uncaught(self, kind, value, tb):
        """An exception nobody caught is a failed test case with its
        traceback and the tail of each running sluiced's log, so that a CI
        log says what went wrong; then the plan, so the run stays TAP."""
        import traceback
        self.ok(False, "the test script ran to its end (uncaught %s: %s)"
                % (kind.__name__, str(value).splitlines()[0] if str(value) else ""))
        self.diag("".join(traceback.format_exception(kind, value, tb)))
        for hub in list(_live_hubs):
            self.diag("--- %s" % getattr(hub, "log_path", "?"))
            self.diag(hub.log_report())
        if self.planned is None:
            print("1..%d" % self.count, flush=True)
        sys.stdout.flush()

    def ok(self, cond, desc, diag=None, todo=None):
        self.count += 1
        line = "%s %d - %s" % ("ok" if cond else "not ok", self.count, desc)
        if todo:
            line += " # TODO " + todo
        print(line, flush=True)
        if not cond:
            if not todo:
                self.failed += 1
            if diag:
                self.diag(diag)
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got %r, want %r" % (got, want))

    def skip(self, desc, reason):
        self.count += 1
        print("ok %d - %s # SKIP %s" % (self.count, desc, reason), flush=True)

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            print("# " + line, flush=True)

    def bail_out(self, reason):
        print("Bail out! " + reason.replace("\n", " "), flush=True)
        sys.exit(1)

    def done(self):
        if self.planned is None:
            print("1..%d" % self.count, flush=True)
        elif self.planned != self.count:
            self.diag("planned %d tests, ran %d" % (self.planned, self.count))
            self.failed += 1
        sys.exit(1 if self.failed else 0)


# --- keys, tokens, hashing --------------------------------------------------


def new_key():
    """A policy / device key as the config wants it: base64 of 32 bytes."""
    return base64.b64encode(os.urandom(32)).decode()


def sas_token(resource, key, skn=None, expiry=None, key_is_base64=True):
    """A SAS token as WIRE.md defines it. IoT Hub style by default (the key is
    base64-decoded before the HMAC); Event Hubs style with key_is_base64=False."""
    if expiry is None:
        expiry = int(time.time()) + 3600
    sr = urllib.parse.quote(resource, safe="")
    raw = base64.b64decode(key) if key_is_base64 else key.encode()
    mac = hmac.new(raw, ("%s\n%d" % (sr, expiry)).encode(), hashlib.sha256).digest()
    sig = urllib.parse.quote(base64.b64encode(mac).decode(), safe="")
    token = "SharedAccessSignature sr=%s&sig=%s&se=%d" % (sr, sig, expiry)
    if skn is not None:
        token += "&skn=" + urllib.parse.quote(skn, safe="")
    return token


def murmur2(data):
    """Kafka's murmur2 (the Java client's Utils.murmur2), as a signed int32."""
    if isinstance(data, str):
        data = data.encode()
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = length - rest
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key, partitions):
    """Kafka's default partitioner: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# --- locations ----------------------------------------------------------------


def builddir():
    return os.environ.get("SLUICE_BUILDDIR") or os.getcwd()


def srcdir():
    return os.environ.get("SLUICE_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def vectors():
    """The recorded protocol vectors: $SLUICE_VECTORS (make check sets it),
    else ../shared/vectors beside the source tree."""
    return os.environ.get("SLUICE_VECTORS") or os.path.join(
        os.path.abspath(srcdir()), "..", "shared", "vectors")


def _find_program(env_name, candidates):
    value = os.environ.get(env_name)
    if value:
        return value
    for rel in candidates:
        path = os.path.join(builddir(), rel)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def find_sluiced():
    return _find_program("SLUICED", ["core/sluiced", "sluiced", "core/sluiced-bin"])


def find_sluice_dump():
    return _find_program("SLUICE_DUMP", ["tests/tools/sluice-dump"])


def find_sluicectl():
    return _find_program("SLUICECTL", ["core/sluicectl"])


def plugin_path(extra=()):
    """SLUICE_PLUGIN_PATH for the build tree, always with tests/plugins."""
    parts = [p for p in os.environ.get("SLUICE_PLUGIN_PATH", "").split(":") if p]
    bd = builddir()
    for rel in ("tests/plugins", "plugins/storage-file", "plugins/storage-lmdb",
                "plugins/auth-key", "plugins/auth-x509", "plugins/transport-https",
                "plugins/transport-mqtt", "plugins/transport-kafka"):
        d = os.path.join(bd, rel)
        if d not in parts:
            parts.append(d)
    return ":".join(list(extra) + parts)


# --- temporary directories and cleanup ------------------------------------------

_live_hubs = []
_tmpdirs = []


def _cleanup():
    for hub in list(_live_hubs):
        hub.kill9()
    if not os.environ.get("SLUICE_KEEP_TMP"):
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def tempdir(prefix="sluice-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


# --- configuration -----------------------------------------------------------


def config_text(sections):
    """Key-file text from [(section, {key: value})]; list values join with ';'."""
    out = []
    for name, keys in sections:
        out.append("[%s]" % name)
        for key, value in keys.items():
            if isinstance(value, (list, tuple)):
                value = ";".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            out.append("%s = %s" % (key, value))
        out.append("")
    return "\n".join(out)


def lines_hub_config(data_dir, policies, streams=None, lines=None, extra=()):
    """A hub with file storage, the key auth chain, the given policies
    ({name: {"primary-key": .., "rights": [..]}}), streams ({name: {...}}) and
    a lines transport on 127.0.0.1:0 (options in `lines`)."""
    if streams is None:
        streams = {"events": {"partitions": 4, "durability": "batch"}}
    sections = [
        ("hub", {"hostname": "localhost", "data-dir": data_dir, "workers": 2}),
        ("storage", {"plugin": "file"}),
        ("auth", {"chain": "key"}),
        ("auth.key", {"plugin": "key"}),
    ]
    for name, keys in policies.items():
        sections.append(("policy." + name, keys))
    for name, keys in streams.items():
        sections.append(("stream." + name, keys))
    transport = {"plugin": "lines", "listen": "127.0.0.1:0", "stream": "events"}
    transport.update(lines or {})
    sections.append(("transport.lines", transport))
    sections.extend(extra)
    return config_text(sections)


# --- sluiced -----------------------------------------------------------------


class HubError(Exception):
    pass


class Hub:
    """One sluiced process on a generated config in its own directory."""

    def __init__(self, config, workdir=None, data_dir=None, sluiced=None, env=None,
                 args=()):
        self.workdir = workdir or tempdir()
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        self.config_path = os.path.join(self.workdir, "sluice.conf")
        with open(self.config_path, "w") as f:
            f.write(config)
        self.sluiced = sluiced or find_sluiced()
        if not self.sluiced:
            raise HubError("sluiced not found: build it first (make) or set SLUICED")
        self.env = dict(os.environ)
        self.env["SLUICE_PLUGIN_PATH"] = plugin_path()
        if env:
            self.env.update(env)
        self.args = list(args)
        self.proc = None
        self.listeners = {}
        self.output = []
        self.starts = 0
        self.log_path = None

    def start(self, timeout=30.0):
        self.starts += 1
        self.listeners = {}
        self.output = []
        self.log_path = os.path.join(self.workdir, "sluiced-%d.log" % self.starts)
        log = open(self.log_path, "wb")
        cmd = [self.sluiced, "--config", self.config_path, "--data-dir", self.data_dir]
        self.proc = subprocess.Popen(cmd + self.args, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, env=self.env)
        log.close()
        _live_hubs.append(self)
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        ready = False
        while not ready:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill9()
                raise HubError("sluiced did not print 'ready' within %.0f s\n%s"
                               % (timeout, self.log_tail()))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                code = self.proc.wait()
                _live_hubs.remove(self)
                raise HubError("sluiced exited with %s before 'ready'\n%s"
                               % (code, self.log_tail()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").strip()
                self.output.append(text)
                words = text.split()
                if len(words) == 4 and words[0] == "listening":
                    host, _, port = words[3].rpartition(":")
                    self.listeners.setdefault(words[1], {})[words[2]] = (host.strip("[]"), int(port))
                elif text == "ready":
                    ready = True
        # Keep draining stdout so that sluiced never blocks on it.
        self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
        self._drain.start()
        return self

    def _drain_stdout(self):
        try:
            for line in self.proc.stdout:
                self.output.append(line.decode(errors="replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def address(self, transport="lines", kind="plain"):
        """(host, port) of `listening transport.NAME KIND host:port`."""
        name = transport if transport.startswith("transport.") else "transport." + transport
        try:
            return self.listeners[name][kind]
        except KeyError:
            raise HubError("sluiced reported no %s listener for %s (saw %r)"
                           % (kind, name, self.output))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20.0):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status
        (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self._reap()

    def _reap(self):
        code = self.proc.returncode
        if self in _live_hubs:
            _live_hubs.remove(self)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        return code

    def log_report(self, n=30):
        """A sanitizer's report from the log when there is one (its first
        lines: what and where), else the log's last `n` lines."""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        for i, line in enumerate(lines):
            if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line \
                    or "runtime error:" in line:
                return "\n".join(lines[max(0, i - 5):i + 60])
        return "\n".join(lines[-n:])

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def dump(self, stream="events"):
        """Every record of `stream`, read with sluice-dump (hub must be stopped)."""
        if self.running():
            raise HubError("sluice-dump needs sluiced stopped")
        return dump(self.config_path, self.data_dir, stream, env=self.env)


def https_hub_config(data_dir, policies, streams=None, https=None, extra=(), hub=None):
    """A hub with file storage, the key auth chain, the given policies and
    streams (as lines_hub_config) and transport-https on 127.0.0.1:0 plain
    and TLS (options in `https`, None drops a key; the TLS certificate is the
    generated development one, {data_dir}/tls/dev-cert.pem)."""
    if streams is None:
        streams = {"events": {"partitions": 4, "durability": "batch"}}
    hub_keys = {"hostname": "localhost", "data-dir": data_dir, "workers": 2}
    hub_keys.update(hub or {})
    sections = [
        ("hub", hub_keys),
        ("storage", {"plugin": "file"}),
        ("auth", {"chain": "key"}),
        ("auth.key", {"plugin": "key"}),
    ]
    for name, keys in policies.items():
        sections.append(("policy." + name, keys))
    for name, keys in streams.items():
        sections.append(("stream." + name, keys))
    transport = {"plugin": "https", "listen": "127.0.0.1:0", "tls-listen": "127.0.0.1:0"}
    transport.update(https or {})
    transport = {k: v for k, v in transport.items() if v is not None}
    sections.append(("transport.https", transport))
    sections.extend(extra)
    return config_text(sections)


def http_request(address, method, path, body=None, headers=None, cafile=None, timeout=30,
                 conn=None):
    """One HTTP(S) request with http.client: (status, headers dict with
    lower-case names, body bytes). HTTPS when `cafile` is given. Pass `conn`
    to reuse a keep-alive connection."""
    import http.client
    import ssl
    own = conn is None
    if own:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
            conn = http.client.HTTPSConnection(address[0], address[1], timeout=timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def dump(config_path, data_dir, stream, env=None, tool=None):
    tool = tool or find_sluice_dump()
    if not tool:
        raise HubError("sluice-dump not found: make check builds tests/tools/sluice-dump")
    if env is None:
        env = dict(os.environ, SLUICE_PLUGIN_PATH=plugin_path())
    res = subprocess.run([tool, "--config", config_path, "--data-dir", data_dir,
                          "--stream", stream], capture_output=True, env=env, timeout=120)
    if res.returncode != 0:
        raise HubError("sluice-dump failed (%d): %s" % (res.returncode,
                                                        res.stderr.decode(errors="replace")))
    return [json.loads(line) for line in res.stdout.decode().splitlines() if line.strip()]


# --- the lines protocol ---------------------------------------------------------


class LinesClient:
    """A client of the lines transport: send lines, read answer lines."""

    def __init__(self, address, timeout=15.0, tls=False):
        self.sock = socket.create_connection(address, timeout=timeout)
        if tls:
            # The hub's generated development certificate: encryption only.
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=address[0])
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, *lines):
        data = b"".join((l.encode() if isinstance(l, str) else l) + b"\n" for l in lines)
        self.sock.sendall(data)

    def send_json(self, obj):
        self.send(json.dumps(obj))

    def recv_line(self, timeout=None):
        """The next answer line, or None at EOF. Raises socket.timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no answer line within the deadline")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, OSError) as e:
                if isinstance(e, socket.timeout):
                    raise
                chunk = b""
            if not chunk:
                self.eof = True
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode(errors="replace")
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def closed_by_peer(self, timeout=None):
        """True when the server closes the connection (EOF) before the deadline."""
        try:
            while True:
                if self.recv_line(timeout) is None:
                    return True
        except (socket.timeout, OSError):
            return False

    def auth(self, token):
        self.send(token)
        return self.recv_line()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_ok(answer):
    """(partition, offset) from `ok P O`, else None."""
    if answer is None:
        return None
    words = answer.split()
    if len(words) == 3 and words[0] == "ok":
        try:
            return int(words[1]), int(words[2])
        except ValueError:
            return None
    return None
