#!/usr/bin/python3
# The lines transport (examples/transport-lines, built in-tree as
# tests/plugins/transport-lines.la) against a real sluiced: token first, bad
# tokens, properties as headers, murmur2 partitioning, answer order, errors
# that keep the connection usable, oversize lines, revocation. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import http.client
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
HOST = "localhost"
PARTITIONS = 4

keys = {name: st.new_key() for name in ("sender", "listener", "scoped", "revokeme", "owner")}
policies = {
    "sender": {"primary-key": keys["sender"], "rights": ["Send"]},
    "listener": {"primary-key": keys["listener"], "rights": ["Listen"]},
    "scoped": {"primary-key": keys["scoped"], "rights": ["Send"], "streams": ["small"]},
    "revokeme": {"primary-key": keys["revokeme"], "rights": ["Send"]},
    "owner": {"primary-key": keys["owner"],
              "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect", "Send", "Listen"]},
}
streams = {
    "events": {"partitions": PARTITIONS, "durability": "batch"},
    "small": {"partitions": 1, "durability": "batch", "max-message": "1KiB"},
}

https_plugin = os.path.join(st.builddir(), "plugins", "transport-https", "transport-https.la")
have_https = os.path.exists(https_plugin)


def build_config(data_dir, with_revokeme=True):
    pol = dict(policies)
    if not with_revokeme:
        del pol["revokeme"]
    extra = [
        ("transport.lines-small", {"plugin": "lines", "listen": "127.0.0.1:0",
                                   "stream": "small"}),
        ("transport.lines-nowhere", {"plugin": "lines", "listen": "127.0.0.1:0",
                                     "stream": "nosuchstream"}),
        ("transport.lines-narrow", {"plugin": "lines", "listen": "127.0.0.1:0",
                                    "tls-listen": "127.0.0.1:0", "stream": "events",
                                    "max-inflight": 4}),
    ]
    if have_https:
        extra.append(("transport.https", {"plugin": "https", "listen": "127.0.0.1:0"}))
    return st.lines_hub_config(data_dir, pol, streams, lines={"max-line": "4KiB"},
                               extra=extra)


def token(policy, expiry=None, key=None):
    return st.sas_token(HOST, key or keys[policy], skn=policy, expiry=expiry)


def connect(hub, transport="lines", policy="sender"):
    c = st.LinesClient(hub.address(transport))
    answer = c.auth(token(policy))
    if answer != "ok":
        raise AssertionError("token of %s refused: %r" % (policy, answer))
    return c


work = st.tempdir()
data_dir = os.path.join(work, "data")
hub = st.Hub(build_config(data_dir), workdir=work, data_dir=data_dir)
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
tap.ok(True, "sluiced started with the lines transport")
addr = hub.address("lines")
tap.ok(addr[1] > 0, "lines listener reported on %s:%d" % addr)

# Records we expect to find afterwards: (partition, offset) -> checks.
expect = {}

# --- token first ---------------------------------------------------------------
with st.LinesClient(addr) as c:
    c.send(json.dumps({"body": "too early"}))
    tap.eq(c.recv_line(), "error expected a SharedAccessSignature token first",
           "a JSON line before the token is refused")
    tap.ok(c.closed_by_peer(), "and the connection is closed")

with st.LinesClient(addr) as c:
    c.send("hello")
    tap.eq(c.recv_line(), "error expected a SharedAccessSignature token first",
           "a plain line before the token is refused")
    tap.ok(c.closed_by_peer(), "and the connection is closed")

bad_tokens = [
    ("wrong key", token("sender", key=st.new_key())),
    ("expired token", token("sender", expiry=int(time.time()) - 60)),
    ("unknown policy", st.sas_token(HOST, keys["sender"], skn="nosuchpolicy")),
    ("tampered signature", token("sender").replace("sig=", "sig=AA", 1)),
    ("token without skn for a policy key", st.sas_token(HOST, keys["sender"])),
]
for what, tok in bad_tokens:
    with st.LinesClient(addr) as c:
        answer = c.auth(tok)
        tap.eq(answer, "error unauthorized", "%s: unauthorized" % what)
        tap.ok(c.closed_by_peer(), "%s: connection closed" % what)

with st.LinesClient(addr) as c:
    tap.eq(c.auth(token("sender")), "ok", "a valid policy token is accepted")
    c.send(json.dumps({"body": "hello"}))
    ans = st.parse_ok(c.recv_line())
    tap.ok(ans is not None and 0 <= ans[0] < PARTITIONS, "a line is answered ok P O: %r" % (ans,))
    if ans:
        expect[ans] = {"body": "hello", "key": None, "headers": {}}

# --- properties, keys, bodies ------------------------------------------------------
with connect(hub) as c:
    props = {"unit": "C", "message-id": "m-1", "empty": "", "utf8": "h\u00e9llo \u2603"}
    c.send_json({"key": "sensor-7", "properties": props, "body": "21.5"})
    ans = st.parse_ok(c.recv_line())
    tap.ok(ans is not None, "line with key and properties answered ok")
    if ans:
        tap.eq(ans[0], st.partition_for_key("sensor-7", PARTITIONS),
               "key sensor-7 lands on murmur2 partition")
        expect[ans] = {"body": "21.5", "key": "sensor-7", "headers": props}

    c.send_json({"body": {"a": 1, "b": [True, None]}})
    ans = st.parse_ok(c.recv_line())
    tap.ok(ans is not None, "a JSON object body is accepted")
    if ans:
        expect[ans] = {"body": '{"a":1,"b":[true,null]}', "key": None, "headers": {}}

    c.send_json({"body": 42, "key": None})
    ans = st.parse_ok(c.recv_line())
    tap.ok(ans is not None, "a number body and a null key are accepted")
    if ans:
        expect[ans] = {"body": "42", "key": None, "headers": {}}

    wrong = 0
    for i in range(40):
        key = "device-%d" % i
        c.send_json({"key": key, "body": "k%d" % i})
        ans = st.parse_ok(c.recv_line())
        if ans is None or ans[0] != st.partition_for_key(key, PARTITIONS):
            wrong += 1
        if ans:
            expect[ans] = {"body": "k%d" % i, "key": key, "headers": {}}
    tap.eq(wrong, 0, "40 keyed lines land on murmur2(key) % 4")

# --- errors keep the connection usable -----------------------------------------------
with connect(hub) as c:
    cases = [
        ("bad JSON", "{not json", "error bad JSON"),
        ("not an object", "[1,2,3]", "error bad JSON"),
        ("missing body", json.dumps({"key": "x"}), "error missing body"),
        ("non-string property", json.dumps({"properties": {"n": 1}, "body": "x"}), "error bad JSON"),
        ("non-string key", json.dumps({"key": 5, "body": "x"}), "error bad JSON"),
        ("unknown member", json.dumps({"body": "x", "colour": "red"}), "error bad JSON"),
    ]
    for what, line, prefix in cases:
        c.send(line)
        answer = c.recv_line()
        tap.ok(answer is not None and answer.startswith(prefix),
               "%s answers %s" % (what, prefix), "got %r" % answer)
        c.send_json({"body": "after " + what})
        ans = st.parse_ok(c.recv_line())
        tap.ok(ans is not None, "the connection stays usable after %s" % what)
        if ans:
            expect[ans] = {"body": "after " + what, "key": None, "headers": {}}

# --- answer order with many lines in flight ------------------------------------------
with connect(hub) as c:
    sent = []
    lines = []
    for i in range(600):
        if i % 97 == 13:
            lines.append("{broken %d" % i)
            sent.append(None)
            continue
        obj = {"body": "order-%d" % i}
        if i % 3:
            obj["key"] = "ord-%d" % (i % 11)
        lines.append(json.dumps(obj))
        sent.append(obj)
    c.send(*lines)  # all at once: many appends complete while others wait
    answers = [c.recv_line() for _ in lines]
    bad = [i for i, (obj, a) in enumerate(zip(sent, answers))
           if (obj is None) != (a is not None and a.startswith("error bad JSON"))
           or (obj is not None and st.parse_ok(a) is None)]
    tap.eq(bad, [], "600 pipelined lines: one answer each, errors exactly at the bad lines")
    last = {}
    regress = 0
    for obj, a in zip(sent, answers):
        ans = st.parse_ok(a)
        if obj is None or ans is None:
            continue
        if ans[1] <= last.get(ans[0], -1):
            regress += 1
        last[ans[0]] = ans[1]
        if "key" in obj and ans[0] != st.partition_for_key(obj["key"], PARTITIONS):
            regress += 1
        expect[ans] = {"body": obj["body"], "key": obj.get("key"), "headers": {}}
    tap.eq(regress, 0, "offsets grow per partition in line order; keys on their partition")

# --- back-pressure: max-inflight 4 pauses and resumes reading many times -------------
with connect(hub, transport="lines-narrow") as c:
    n = 3000
    c.send(*[json.dumps({"key": "narrow-%d" % (i % 5), "body": "narrow-%d" % i})
             for i in range(n)])
    answers = [c.recv_line() for _ in range(n)]
    oks = [st.parse_ok(a) for a in answers]
    tap.ok(all(oks), "%d pipelined lines through max-inflight 4: all answered ok" % n,
           "first bad: %r" % next((a for a in answers if st.parse_ok(a) is None), None))
    last = {}
    regress = 0
    for i, pos in enumerate(oks):
        if pos is None:
            continue
        if pos[1] <= last.get(pos[0], -1):
            regress += 1
        last[pos[0]] = pos[1]
        expect[pos] = {"body": "narrow-%d" % i, "key": "narrow-%d" % (i % 5), "headers": {}}
    tap.eq(regress, 0, "and in line order")

# --- TLS (the core terminates it; the transport does not know) ------------------------
tls_addr = hub.address("lines-narrow", "tls")
with st.LinesClient(tls_addr, tls=True) as c:
    tap.eq(c.auth(token("sender")), "ok", "the token is accepted over TLS")
    c.send_json({"key": "over-tls", "body": "secret"})
    pos = st.parse_ok(c.recv_line())
    tap.ok(pos is not None, "a line over TLS is answered ok P O")
    if pos:
        expect[pos] = {"body": "secret", "key": "over-tls", "headers": {}}

# --- authorization and stream errors ------------------------------------------------
with connect(hub, policy="listener") as c:
    c.send_json({"body": "no send right"})
    answer = c.recv_line()
    tap.ok(answer is not None and answer.startswith("error forbidden"),
           "a policy without Send gets error forbidden", "got %r" % answer)
    c.send_json({"body": "still no send right"})
    answer = c.recv_line()
    tap.ok(answer is not None and answer.startswith("error forbidden"),
           "and the connection stays open", "got %r" % answer)

with connect(hub, policy="scoped") as c:
    c.send_json({"body": "wrong stream"})
    answer = c.recv_line()
    tap.ok(answer is not None and answer.startswith("error forbidden"),
           "a policy scoped to another stream gets error forbidden", "got %r" % answer)

with connect(hub, transport="lines-small", policy="scoped") as c:
    c.send_json({"body": "fits"})
    tap.ok(st.parse_ok(c.recv_line()) is not None, "the scoped policy may send to its stream")
    c.send_json({"body": "x" * 2000})
    answer = c.recv_line()
    tap.ok(answer is not None and answer.startswith("error too large"),
           "a body over the stream's max-message gets error too large", "got %r" % answer)

with connect(hub, transport="lines-nowhere") as c:
    c.send_json({"body": "lost"})
    answer = c.recv_line()
    tap.ok(answer is not None and answer.startswith("error stream unknown"),
           "a transport pointing at no stream answers error stream unknown", "got %r" % answer)

# --- oversize lines -------------------------------------------------------------------
with connect(hub) as other, connect(hub) as c:
    c.send(json.dumps({"body": "before the long one"}), json.dumps({"body": "y" * 5000}),
           json.dumps({"body": "never read"}))
    ans = st.parse_ok(c.recv_line())
    tap.ok(ans is not None, "the line before an oversize one is still answered ok")
    if ans:
        expect[ans] = {"body": "before the long one", "key": None, "headers": {}}
    tap.eq(c.recv_line(), "error line too long", "an oversize line answers error line too long")
    tap.ok(c.closed_by_peer(), "and closes the connection")
    other.send_json({"body": "unaffected"})
    ans = st.parse_ok(other.recv_line())
    tap.ok(ans is not None, "another connection is unaffected")
    if ans:
        expect[ans] = {"body": "unaffected", "key": None, "headers": {}}

with connect(hub) as c:
    c.sock.sendall(b"z" * 9000)  # no newline at all
    tap.eq(c.recv_line(), "error line too long", "an endless line is cut off at max-line")
    tap.ok(c.closed_by_peer(), "and closes the connection")

# --- revocation: the policy disappears on SIGHUP ---------------------------------------
with connect(hub, policy="revokeme") as c:
    c.send_json({"body": "before revocation"})
    ans = st.parse_ok(c.recv_line())
    tap.ok(ans is not None, "revokeme may send before the reload")
    if ans:
        expect[ans] = {"body": "before revocation", "key": None, "headers": {}}
    with open(hub.config_path, "w") as f:
        f.write(build_config(data_dir, with_revokeme=False))
    os.kill(hub.pid, signal.SIGHUP)
    try:
        answer = c.recv_line(timeout=5)
    except socket.timeout:
        answer = None
    tap.ok(answer is not None and answer.startswith("error revoked"),
           "removing the policy on SIGHUP closes its live connection with error revoked",
           "got %r" % answer)
    tap.ok(c.closed_by_peer(timeout=5), "the revoked connection is closed")
with st.LinesClient(addr) as c:
    tap.eq(c.auth(token("revokeme")), "error unauthorized", "the removed policy's token is refused")

# --- devices: need the registry, which only the service API writes ---------------------
if have_https:
    https_addr = hub.address("https")
    device_id = "lines-dev-1"

    def registry_put(device):
        conn = http.client.HTTPConnection(*https_addr, timeout=10)
        conn.request("PUT", "/devices/%s?api-version=2021-04-12" % device_id,
                     body=json.dumps(device),
                     headers={"Authorization": token("owner"),
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, json.loads(body) if body else None

    status, dev = registry_put({"deviceId": device_id, "status": "enabled"})
    tap.eq(status, 200, "a device is created over the service API")
    dkey = (((dev or {}).get("authentication") or {}).get("symmetricKey") or {}).get("primaryKey")
    dtoken = st.sas_token("%s/devices/%s" % (HOST, device_id), dkey or st.new_key())
    with st.LinesClient(addr) as c:
        tap.eq(c.auth(dtoken), "ok", "the device's own token is accepted")
        status, _ = registry_put({"deviceId": device_id, "status": "disabled",
                                  "authentication": dev.get("authentication") if dev else None})
        tap.eq(status, 200, "the device is disabled")
        try:
            answer = c.recv_line(timeout=5)
        except socket.timeout:
            answer = None
        tap.ok(answer is not None and answer.startswith("error revoked"),
               "disabling the device revokes its live connection", "got %r" % answer)
    with st.LinesClient(addr) as c:
        tap.eq(c.auth(dtoken), "error unauthorized", "a disabled device's token is refused")
else:
    tap.ok(False, "disabled device token refused and live connection revoked",
           todo="needs the HTTPS service API (plugins/transport-https) to create devices")

# --- stop and read everything back ---------------------------------------------------
code = hub.stop()
tap.eq(code, 0, "SIGTERM stops sluiced with exit status 0")
try:
    records = hub.dump("events")
except st.HubError as e:
    tap.ok(False, "sluice-dump reads the stream back", str(e))
    records = []
by_pos = {(r["partition"], r["offset"]): r for r in records}
missing, mismatched = [], []
for pos, want in expect.items():
    got = by_pos.get(pos)
    if got is None:
        missing.append(pos)
    elif (got["body"] != want["body"] or got["key"] != want["key"]
          or got["headers"] != want["headers"]):
        mismatched.append((pos, want, {k: got[k] for k in ("body", "key", "headers")}))
tap.ok(len(expect) > 3600 and not missing,
       "all %d acknowledged lines are stored at their answered offsets" % len(expect),
       "missing: %r" % missing[:10])
tap.ok(not mismatched, "stored key, headers (= properties) and body match what was sent",
       "\n".join(repr(m) for m in mismatched[:5]))
tap.ok(all(isinstance(r.get("timestamp"), int) and r["timestamp"] > 0 for r in records),
       "every record has an append timestamp")
tap.done()
