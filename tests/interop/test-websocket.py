#!/usr/bin/python3
# MQTT over WebSockets against a real sluiced: python3-paho-mqtt with
# transport="websockets" on the HTTPS transport's plain (ws) and TLS (wss)
# ports, on /mqtt and /$iothub/websocket, publishing device telemetry QoS 1
# that reads back over the HTTPS read API; a raw WebSocket client for MQTT
# packets split across frames and several packets in one frame, the exact
# CONNACK / PUBACK bytes, close frames both ways, a text frame refused, a
# client vanishing mid-packet while another keeps publishing; refused
# upgrades (bad, missing subprotocol, no upgrade, AMQP not configured).
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import base64
import json
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
HOST = "localhost"
PARTITIONS = 4

try:
    import paho.mqtt.client as paho
except ImportError:
    tap.bail_out("python3-paho-mqtt is missing: apt-get install python3-paho-mqtt")
for plugin in ("transport-https", "transport-mqtt"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))

owner_key = st.new_key()
policies = {"owner": {"primary-key": owner_key,
                      "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                 "DeviceConnect", "Send", "Listen", "Manage"]}}
work = st.tempdir()
data_dir = os.path.join(work, "data")
mqtt_section = ("transport.mqtt", {"plugin": "mqtt", "listen": "127.0.0.1:0"})
streams = {"events": {"partitions": PARTITIONS, "durability": "batch"}}
# Debug logging: the burst below checks that reading was paused and resumed.
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=[mqtt_section],
                                 hub={"log-level": "debug"}),
             workdir=work, data_dir=data_dir)
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
https = hub.address("https", "plain")
httpss = hub.address("https", "tls")
CA = os.path.join(data_dir, "tls", "dev-cert.pem")
OWNER = st.sas_token(HOST, owner_key, skn="owner")


def call(method, path, body=None):
    h = {"Authorization": OWNER}
    if isinstance(body, dict):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    return st.http_request(https, method, path, body=body, headers=h)


def create_device(device_id):
    status, _, data = call("PUT", "/devices/" + device_id, {"deviceId": device_id})
    if status != 200:
        tap.bail_out("PUT /devices/%s: %d %r" % (device_id, status, data))
    return json.loads(data)["authentication"]["symmetricKey"]["primaryKey"]


DEVICES = ("dev1", "dev2", "dev3", "dev4")
keys = {d: create_device(d) for d in DEVICES}
TOKEN = {d: st.sas_token("%s/devices/%s" % (HOST, d), k) for d, k in keys.items()}


def username(device_id):
    return "%s/%s/?api-version=2021-04-12" % (HOST, device_id)


def read_all(device_id):
    p = st.partition_for_key(device_id, PARTITIONS)
    out, offset = [], 0
    while True:
        status, _, data = call("GET", "/events/partitions/%d/messages?from=%d&limit=1000"
                               % (p, offset))
        recs = json.loads(data) if status == 200 else []
        if not recs:
            return [r for r in out if r.get("key") == device_id]
        out += recs
        offset = recs[-1]["offset"] + 1


def wait_records(device_id, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        recs = read_all(device_id)
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.05)


# --- paho over ws and wss ---------------------------------------------------------------------

def paho_publish(device, addr, path, bodies, tls=False, protocol=paho.MQTTv311):
    """Connect over WebSockets, publish `bodies` QoS 1, wait for every PUBACK.
    Returns (connack rc, number acknowledged, error text)."""
    result = {"rc": None}
    connected = threading.Event()
    kwargs = {"client_id": device, "transport": "websockets", "protocol": protocol}
    if protocol != paho.MQTTv5:
        kwargs["clean_session"] = True
    c = paho.Client(**kwargs)
    c.username_pw_set(username(device), TOKEN[device])
    c.ws_set_options(path=path)
    if tls:
        c.tls_set(ca_certs=CA)

    def on_connect(client, userdata, flags, rc, properties=None):
        result["rc"] = rc if isinstance(rc, int) else rc.value
        connected.set()

    c.on_connect = on_connect
    try:
        c.connect(HOST if tls else addr[0], addr[1], keepalive=30)
    except Exception as e:  # noqa: BLE001 (any failure is the test's answer)
        return None, 0, repr(e)
    c.loop_start()
    acked = 0
    try:
        if not connected.wait(10) or result["rc"] != 0:
            return result["rc"], 0, "no CONNACK 0"
        infos = [c.publish("devices/%s/messages/events/" % device, b, qos=1) for b in bodies]
        for info in infos:
            info.wait_for_publish(10)
            if info.is_published():
                acked += 1
        return result["rc"], acked, None
    finally:
        c.disconnect()
        c.loop_stop()


sent = {}
cases = [
    ("dev1", https, "/mqtt", False, paho.MQTTv311, "ws /mqtt, MQTT 3.1.1"),
    ("dev1", https, "/$iothub/websocket?iothub-no-client-cert=true", False, paho.MQTTv5,
     "ws /$iothub/websocket, MQTT 5"),
    ("dev2", httpss, "/$iothub/websocket?iothub-no-client-cert=true", True, paho.MQTTv311,
     "wss /$iothub/websocket (the hub's certificate as CA), MQTT 3.1.1"),
    ("dev2", httpss, "/mqtt", True, paho.MQTTv5, "wss /mqtt, MQTT 5"),
]
for i, (device, addr, path, tls, proto, what) in enumerate(cases):
    bodies = ["%s-%d-%d" % (device, i, n) for n in range(20)]
    rc, acked, err = paho_publish(device, addr, path, bodies, tls=tls, protocol=proto)
    tap.ok(rc == 0 and acked == len(bodies),
           "paho %s: CONNACK 0 and a PUBACK for each of %d QoS 1 messages"
           % (what, len(bodies)), (rc, acked, err))
    sent.setdefault(device, []).extend(bodies)

for device in ("dev1", "dev2"):
    recs = wait_records(device, len(sent[device]))
    tap.eq(sorted(r.get("body") for r in recs), sorted(sent[device]),
           "%s: every message published over WebSockets reads back over HTTPS" % device)
    props = recs[0].get("properties", {}) if recs else {}
    tap.ok(props.get("iothub-connection-device-id") == device
           and props.get("mqtt-topic", "").startswith("devices/%s/messages/events/" % device),
           "%s: the records carry the device id and the MQTT topic" % device, props)

rc, acked, err = paho_publish("dev3", https, "/mqtt", ["x"], protocol=paho.MQTTv311)
tap.ok(rc == 0 and acked == 1, "a third paho client after the others is served", (rc, err))


# --- a raw WebSocket client -------------------------------------------------------------------

def varint(n):
    out = b""
    while True:
        b = n % 128
        n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect_packet(client_id, user, password, keepalive=30):
    body = mqtt_str("MQTT") + bytes([4, 0xC2]) + keepalive.to_bytes(2, "big")
    return packet(0x10, body + mqtt_str(client_id) + mqtt_str(user) + mqtt_str(password))


def publish_packet(topic, payload, pid):
    return packet(0x32, mqtt_str(topic) + pid.to_bytes(2, "big") + payload)


class Ws:
    """A minimal RFC 6455 client: handshake, masked frames out, frames in."""

    def __init__(self, addr, path="/mqtt", protocol="mqtt", tls=False, upgrade=True):
        self.sock = socket.create_connection(addr, timeout=10)
        if tls:
            ctx = ssl.create_default_context(cafile=CA)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=HOST)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (HOST, addr[1])]
        if upgrade:
            lines += ["Upgrade: websocket", "Connection: Upgrade",
                      "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append("Sec-WebSocket-Protocol: " + protocol)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in rest.split(b"\r\n"):
            if b":" in line:
                k, _, v = line.partition(b":")
                self.headers[k.decode().lower()] = v.decode().strip()
        self.body = b""
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            self.body, self.buf = self.buf[:n], self.buf[n:]

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def send_frame(self, payload, opcode=2, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def frame(self, timeout=5.0):
        """(opcode, payload) of the next frame, or None when the socket closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                at = 2
                if n == 126:
                    n, at = int.from_bytes(self.buf[2:4], "big"), 4
                elif n == 127:
                    n, at = int.from_bytes(self.buf[2:10], "big"), 10
                if len(self.buf) >= at + n and len(self.buf) >= at:
                    op, data = self.buf[0] & 0x0F, self.buf[at:at + n]
                    self.buf = self.buf[at + n:]
                    return op, data
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame within %.1f s" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def mqtt_bytes(self, n, timeout=5.0):
        """`n` bytes of MQTT from binary frames (whatever their split)."""
        out = b""
        while len(out) < n:
            f = self.frame(timeout)
            if f is None or f[0] == 8:
                return out
            if f[0] == 2:
                out += f[1]
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# Packets split across frames and several packets in one frame.
ws = Ws(https)
tap.eq(ws.status, 101, "a raw upgrade on /mqtt with subprotocol mqtt is answered 101")
tap.eq(ws.headers.get("sec-websocket-protocol"), "mqtt", "the answer names subprotocol mqtt")
cp = connect_packet("dev4", username("dev4"), TOKEN["dev4"])
ws.send_frame(cp[:5])
ws.send_frame(cp[5:])
tap.eq(ws.mqtt_bytes(4), b"\x20\x02\x00\x00",
       "a CONNECT split over two binary frames is answered with CONNACK 0")
two = publish_packet("devices/dev4/messages/events/", b"raw-1", 1) + \
    publish_packet("devices/dev4/messages/events/", b"raw-2", 2)
third = publish_packet("devices/dev4/messages/events/", b"raw-3", 3)
ws.send_frame(two + third[:3])
ws.send_frame(third[3:])
tap.eq(ws.mqtt_bytes(12), b"\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\x00\x03",
       "three PUBLISH QoS 1 (two in one frame, the third spanning two) get three PUBACKs")
ws.send_frame(b"\xe0\x00")   # DISCONNECT
f = ws.frame()
tap.ok(f is None or f[0] == 8, "after DISCONNECT the server closes the WebSocket", f)
ws.close()
recs = wait_records("dev4", 3)
tap.eq(sorted(r.get("body") for r in recs), ["raw-1", "raw-2", "raw-3"],
       "the raw client's messages read back over HTTPS")

# The client's close frame is answered with one, and the connection ends.
ws = Ws(httpss, path="/$iothub/websocket?iothub-no-client-cert=true", tls=True)
tap.eq(ws.status, 101, "a raw upgrade over TLS on /$iothub/websocket is answered 101")
ws.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
tap.eq(ws.mqtt_bytes(4), b"\x20\x02\x00\x00", "wss: CONNACK 0")
ws.send_frame((1000).to_bytes(2, "big"), opcode=8)
f = ws.frame()
tap.ok(f is not None and f[0] == 8, "a close frame from the client is answered with a close frame",
       f)
ws.close()

# A burst: more QoS 1 publishes than the transport keeps in flight (it
# pauses reading, which here stops reading the WebSocket, then resumes).
BURST = 3000
ws = Ws(https)
ws.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
tap.eq(ws.mqtt_bytes(4), b"\x20\x02\x00\x00", "burst client: CONNACK 0")
stream = b"".join(publish_packet("devices/dev4/messages/events/", b"burst-%d" % i, i % 65535 + 1)
                  for i in range(BURST))
sender = threading.Thread(target=lambda: [ws.send_frame(stream[i:i + 50000])
                                          for i in range(0, len(stream), 50000)])
sender.start()
acks = ws.mqtt_bytes(4 * BURST, timeout=30)
sender.join(30)
tap.ok(len(acks) == 4 * BURST and all(acks[i] == 0x40 for i in range(0, len(acks), 4)),
       "%d PUBLISH QoS 1 in 50 kB frames get %d PUBACKs" % (BURST, BURST), len(acks))
ws.close()
recs = wait_records("dev4", 3 + BURST, timeout=20)
tap.eq(len([r for r in recs if r.get("body", "").startswith("burst-")]), BURST,
       "every message of the burst reads back over HTTPS")
with open(hub.log_path, errors="replace") as log:
    text = log.read()
tap.ok("WebSocket mqtt: reading paused" in text and "WebSocket mqtt: reading resumed" in text,
       "the transport's back-pressure paused and resumed reading the WebSocket")

# A message over websocket-max-message (1 MiB by default).
ws = Ws(https)
ws.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
ws.mqtt_bytes(4)
try:
    ws.send_frame(b"\x00" * (2 << 20))
except OSError:
    pass
f = ws.frame(timeout=10)
tap.ok(f is None or (f[0] == 8 and f[1][:2] == (1009).to_bytes(2, "big")),
       "a 2 MiB message is answered with close code 1009 (too big)", f and f[1][:40])
ws.close()

# MQTT is binary only.
ws = Ws(https)
ws.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
ws.mqtt_bytes(4)
ws.send_frame(b"hello", opcode=1)
f = ws.frame()
tap.ok(f is not None and f[0] == 8 and f[1][:2] == (1003).to_bytes(2, "big"),
       "a text frame is answered with close code 1003 (unsupported data)", f)
ws.close()

# A bad CONNECT over WebSockets ends that connection (and only that one).
ws = Ws(https)
ws.send_frame(connect_packet("dev4", username("dev4"), "SharedAccessSignature sr=x&sig=y&se=1"))
rest = ws.mqtt_bytes(4)
tap.ok(rest[:1] == b"\x20" and rest[3:4] not in (b"\x00", b""),
       "a CONNECT with a bad token gets a refusing CONNACK", rest)
f = ws.frame()
tap.ok(f is None or f[0] == 8, "then the server closes the WebSocket with a close frame", f)
ws.close()

# A client that vanishes in the middle of a packet does not hurt the others.
stop = threading.Event()
results = []


def steady_publisher():
    while not stop.is_set():
        results.append(paho_publish("dev3", https, "/mqtt", ["steady-%d" % len(results)]))


th = threading.Thread(target=steady_publisher)
th.start()
for i in range(10):
    ws = Ws(https)
    ws.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
    ws.mqtt_bytes(4)
    half = publish_packet("devices/dev4/messages/events/", b"x" * 5000, 9)
    ws.send_frame(half[:2500])
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.close()
    ws = Ws(https)
    ws.send_frame(b"\x82\x05ab", opcode=2, fin=False)   # a fragment, never finished
    ws.close()
time.sleep(0.2)   # let the steady publisher overlap the last abrupt closes
stop.set()
th.join(60)
tap.ok(len(results) > 0 and all(r[0] == 0 and r[1] == 1 for r in results),
       "a client publishing meanwhile keeps working (%d publishes) while 20 others vanish "
       "mid-packet and mid-frame" % len(results), results[:3])
ws = Ws(https)
ws.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
tap.eq(ws.mqtt_bytes(4), b"\x20\x02\x00\x00", "and the hub still accepts a new client")
ws.close()

# --- refused upgrades -------------------------------------------------------------------------

ws = Ws(https, protocol="chat")
tap.ok(ws.status == 400 and b"mqtt" in ws.body,
       "an upgrade with subprotocol chat is refused with 400 naming mqtt", (ws.status, ws.body))
ws.close()
ws = Ws(https, protocol=None)
tap.ok(ws.status == 400 and b"mqtt" in ws.body,
       "an upgrade without a subprotocol is refused with 400", (ws.status, ws.body))
ws.close()
ws = Ws(https, upgrade=False)
tap.ok(ws.status == 400, "a plain GET /mqtt is refused with 400", (ws.status, ws.body))
ws.close()
ws = Ws(https, path="/$servicebus/websocket", protocol="AMQPWSB10")
tap.ok(ws.status == 501 and b"amqp" in ws.body,
       "/$servicebus/websocket without an AMQP transport: 501 saying so", (ws.status, ws.body))
ws.close()
status, _, _ = call("GET", "/healthz")
tap.eq(status, 200, "the HTTP API still answers on the same port")

# Stopping with WebSocket clients connected: they get a close frame and
# sluiced exits cleanly (under ASan: no leak, no use after free).
idle = Ws(https)
idle.send_frame(connect_packet("dev4", username("dev4"), TOKEN["dev4"]))
tap.eq(idle.mqtt_bytes(4), b"\x20\x02\x00\x00", "a client stays connected over ws")
idle_tls = Ws(httpss, tls=True)
idle_tls.send_frame(connect_packet("dev3", username("dev3"), TOKEN["dev3"]))
tap.eq(idle_tls.mqtt_bytes(4), b"\x20\x02\x00\x00", "and one over wss")
half = Ws(https)
half.send_frame(connect_packet("dev2", username("dev2"), TOKEN["dev2"])[:7])


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# Closes of earlier clients may still be on their way: poll a little.
deadline = time.monotonic() + 5
while True:
    status, _, body = call("GET", "/metrics")
    text = body.decode(errors="replace")
    if metric(text, "sluice_http_websockets") == 3 or time.monotonic() > deadline:
        break
    time.sleep(0.05)
tap.ok(status == 200 and metric(text, "sluice_http_websockets") == 3,
       "/metrics: sluice_http_websockets counts the 3 open WebSockets",
       metric(text, "sluice_http_websockets"))
tap.ok((metric(text, "sluice_http_websockets_refused_total") or 0) >= 4,
       "/metrics: sluice_http_websockets_refused_total counts the refused upgrades",
       metric(text, "sluice_http_websockets_refused_total"))
tap.ok(hub.running(), "sluiced is still running")
code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly with WebSocket clients connected", )
for name, c in (("ws", idle), ("wss", idle_tls)):
    try:
        f = c.frame(timeout=5)
    except (TimeoutError, OSError) as e:
        f = e
    tap.ok(f is None or (isinstance(f, tuple) and f[0] == 8),
           "the %s client was sent a close frame (or the connection ended)" % name, f)
    c.close()
half.close()
tap.done()
