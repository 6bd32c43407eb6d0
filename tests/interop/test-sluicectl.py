#!/usr/bin/python3
# sluicectl against a real sluiced (storage-file, auth-key, transport-https):
# every command, its output and its exit status, the error lines, reading
# back what was sent (with properties), --follow, consumer-group offsets, and
# TLS with the hub's generated development certificate. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import http.client
import json
import os
import select
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
HOST = "localhost"
PARTITIONS = 4

sluicectl = st.find_sluicectl()
https_dir = os.path.join(st.builddir(), "plugins", "transport-https")
if not sluicectl:
    tap.bail_out("sluicectl not found: build it first (make core/sluicectl) or set SLUICECTL")
if not os.path.exists(os.path.join(https_dir, "transport-https.la")):
    tap.bail_out("the transport-https plugin is not built (plugins/transport-https); "
                 "sluicectl talks to the hub only over HTTPS")

owner_key = st.new_key()
reader_key = st.new_key()
config_streams = {
    "events": {"partitions": PARTITIONS, "durability": "batch"},
    "logs": {"partitions": 2, "durability": "batch"},
}
work = st.tempdir()
data_dir = os.path.join(work, "data")
config = st.config_text(
    [("hub", {"hostname": HOST, "data-dir": data_dir, "workers": 2}),
     ("storage", {"plugin": "file"}),
     ("auth", {"chain": "key"}),
     ("auth.key", {"plugin": "key"}),
     ("policy.owner", {"primary-key": owner_key,
                       "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                  "DeviceConnect", "Send", "Listen", "Manage"]}),
     ("policy.reader", {"primary-key": reader_key, "rights": ["RegistryRead"]})]
    + [("stream." + name, keys) for name, keys in config_streams.items()]
    + [("transport.https", {"plugin": "https", "listen": "127.0.0.1:0",
                            "tls-listen": "127.0.0.1:0"})])

hub = st.Hub(config, workdir=work, data_dir=data_dir,
             env={"SLUICE_PLUGIN_PATH": st.plugin_path(extra=[https_dir])})
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
plain = hub.address("https", "plain")
tls = hub.address("https", "tls")
tap.ok(plain[1] > 0 and tls[1] > 0,
       "sluiced reports its https listeners (plain %s:%d, tls %s:%d)" % (plain + tls))

URL = "http://%s:%d" % plain
CS = "HostName=%s;SharedAccessKeyName=owner;SharedAccessKey=%s" % (HOST, owner_key)


def ctl(*args, cs=CS, url=URL, cacert=None, stdin=None, timeout=60):
    """Run sluicectl; (exit status, stdout, stderr). The connection comes
    from the environment unless the arguments give it."""
    env = dict(os.environ)
    for name in ("SLUICE_CONNECTION_STRING", "SLUICE_URL", "SLUICE_CACERT"):
        env.pop(name, None)
    if cs is not None:
        env["SLUICE_CONNECTION_STRING"] = cs
    if url is not None:
        env["SLUICE_URL"] = url
    if cacert is not None:
        env["SLUICE_CACERT"] = cacert
    res = subprocess.run([sluicectl] + list(args), capture_output=True, env=env,
                         input=stdin, timeout=timeout)
    return res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")


def ok_run(result, desc):
    code, out, err = result
    tap.ok(code == 0, desc, "exit %d\nstdout: %s\nstderr: %s" % (code, out, err))
    return code == 0


def error_line(result, want_code, words, desc):
    """Exit status `want_code` and one stderr line `sluicectl: ...` holding
    every one of `words`."""
    code, out, err = result
    lines = err.strip().splitlines()
    good = (code == want_code and len(lines) == 1 and lines[0].startswith("sluicectl: ")
            and all(w in lines[0] for w in words))
    tap.ok(good, desc, "exit %d (want %d), stderr %r, want the words %r"
           % (code, want_code, err, words))
    return lines[0] if lines else ""


def json_out(result):
    try:
        return json.loads(result[1])
    except ValueError:
        return None


def http_call(method, path, token, body=None, headers=None):
    conn = http.client.HTTPConnection(*plain, timeout=30)
    h = {"Authorization": token}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def records(stream, partition, *extra):
    result = ctl("read", stream, "--partition", str(partition), *extra)
    if result[0] != 0:
        tap.diag("read %s %d failed: %s" % (stream, partition, result[2]))
        return []
    return [json.loads(line) for line in result[1].splitlines() if line.strip()]


def keys_of(device):
    sym = ((device or {}).get("authentication") or {}).get("symmetricKey") or {}
    return sym.get("primaryKey") or "", sym.get("secondaryKey") or ""


# --- help and usage ---------------------------------------------------------------

code, out, err = ctl("--help", cs=None, url=None)
tap.ok(code == 0 and all(c in out for c in (
    "device create", "device list", "device show", "device enable", "device disable",
    "device delete", "device connection-string", "token", "send", "read", "streams show",
    "offsets show", "offsets commit")), "--help lists every command", out + err)
code, out, err = ctl("read", "--help", cs=None, url=None)
tap.ok(code == 0 and "--partition" in out and "--follow" in out and "--connection-string" in out,
       "a command's --help lists its options and the connection options", out + err)
error_line(ctl("frobnicate"), 2, ["frobnicate"], "an unknown command is a usage error (exit 2)")
error_line(ctl("read", "events"), 2, ["--partition"], "read without --partition: exit 2")
error_line(ctl("device", "create", "a", "--primary-key", st.new_key()), 2,
           ["--secondary-key"], "one key without the other: exit 2")

# --- devices ------------------------------------------------------------------------

result = ctl("device", "create", "dev1")
ok_run(result, "device create dev1")
dev1 = json_out(result) or {}
dev1_primary, dev1_secondary = keys_of(dev1)
tap.ok(dev1.get("deviceId") == "dev1" and dev1.get("status") == "enabled"
       and dev1_primary and dev1_secondary and dev1_primary != dev1_secondary,
       "the created device is enabled with two generated keys", result[1])

k1, k2 = st.new_key(), st.new_key()
result = ctl("device", "create", "dev2", "--primary-key", k1, "--secondary-key", k2,
             "--disabled")
ok_run(result, "device create dev2 with keys, disabled")
dev2 = json_out(result) or {}
tap.ok(keys_of(dev2) == (k1, k2) and dev2.get("status") == "disabled",
       "dev2 keeps the given keys and is disabled", result[1])

error_line(ctl("device", "create", "dev1"), 1, ["dev1", "already exists"],
           "creating an existing device fails (exit 1) and does not replace it")
result = ctl("device", "show", "dev1")
tap.eq(keys_of(json_out(result)), (dev1_primary, dev1_secondary),
       "dev1's keys are unchanged after the refused create")

result = ctl("device", "list")
ok_run(result, "device list")
rows = {line.split()[0]: line.split()[1:] for line in result[1].splitlines() if line.strip()}
tap.ok(rows.get("dev1", [None])[0] == "enabled" and rows.get("dev2", [None])[0] == "disabled",
       "device list shows both devices with their status", result[1])
listed = json_out(ctl("device", "list", "--json"))
tap.ok(isinstance(listed, list) and {"dev1", "dev2"} <= {d.get("deviceId") for d in listed},
       "device list --json prints the hub's array")

result = ctl("device", "show", "dev1")
ok_run(result, "device show dev1")
tap.eq((json_out(result) or {}).get("deviceId"), "dev1", "device show prints the device JSON")

result = ctl("device", "connection-string", "dev1")
tap.eq(result[1].strip(), "HostName=%s;DeviceId=dev1;SharedAccessKey=%s" % (HOST, dev1_primary),
       "device connection-string prints HostName;DeviceId;SharedAccessKey (primary key)")
result = ctl("device", "connection-string", "dev1", "--key", "secondary")
tap.ok(result[1].strip().endswith("SharedAccessKey=" + dev1_secondary),
       "device connection-string --key secondary uses the secondary key", result[1])
error_line(ctl("device", "connection-string", "dev1", "--key", "tertiary"), 2, ["--key"],
           "--key takes primary or secondary")

# --- tokens -----------------------------------------------------------------------------

result = ctl("token")
policy_token = result[1].strip()
tap.ok(result[0] == 0 and policy_token.startswith("SharedAccessSignature ")
       and "skn=owner" in policy_token and "sr=%s&" % HOST in policy_token,
       "token prints a policy token for the connection string's policy", result[1] + result[2])
status, _ = http_call("GET", "/devices", policy_token)
tap.eq(status, 200, "the hub accepts sluicectl's policy token")

result = ctl("token", "--device", "dev1", "--ttl", "10m")
device_token = result[1].strip()
parsed = dict(urllib.parse.parse_qsl(device_token[len("SharedAccessSignature "):]))
se = int(parsed.get("se", "0"))
tap.ok(result[0] == 0 and parsed.get("sr") == "%s/devices/dev1" % HOST and "skn" not in parsed
       and abs(se - (time.time() + 600)) < 60,
       "token --device dev1 --ttl 10m: sr {host}/devices/dev1, no skn, expires in 10 minutes",
       device_token)
tap.eq(device_token, st.sas_token("%s/devices/dev1" % HOST, dev1_primary, expiry=se),
       "the device token is signed with the device's primary key")
status, _ = http_call("POST", "/devices/dev1/messages/events", device_token, body=b"by token",
                 headers={"iothub-app-via": "token"})
tap.eq(status, 204, "the hub accepts sluicectl's device token for telemetry")

result = ctl("token", "--resource", "sb://%s/events" % HOST)
eh_token = result[1].strip()
parsed = dict(urllib.parse.parse_qsl(eh_token[len("SharedAccessSignature "):]))
tap.eq(eh_token, st.sas_token("sb://%s/events" % HOST, owner_key, skn="owner",
                              expiry=int(parsed.get("se", "0")), key_is_base64=False),
       "token --resource sb://... is signed Event Hubs style (raw key bytes)")
error_line(ctl("token", "--ttl", "soon"), 2, ["--ttl", "soon"], "a bad --ttl is a usage error")

# --- send and read back ---------------------------------------------------------------------

p1 = st.partition_for_key("dev1", PARTITIONS)
ok_run(ctl("send", "--device", "dev1", "--property", "temp=21.5", "--property", "unit=C",
           "--message-id", "m-1", "--content-type", "application/json", '{"t":21.5}'),
       "send --device dev1 with properties")
ok_run(ctl("send", "--device", "dev1", "-", stdin=b"from stdin"), "send --device dev1 - (stdin)")

recs = records("events", p1, "--from", "0")
sent = [r for r in recs if r.get("body") == '{"t":21.5}']
props = sent[0].get("properties", {}) if sent else {}
tap.ok(len(sent) == 1 and props.get("temp") == "21.5" and props.get("unit") == "C",
       "read prints the message with its application properties", recs)
tap.ok(props.get("message-id") == "m-1" and props.get("content-type") == "application/json",
       "the message id and content type arrive as system properties", props)
tap.ok(sent and sent[0].get("key") == "dev1" and isinstance(sent[0].get("offset"), int)
       and "enqueuedTime" in sent[0], "records carry key, offset and enqueuedTime", sent)
tap.ok(any(r.get("body") == "from stdin" for r in recs), "the body read from stdin arrived")
tap.ok(any(r.get("body") == "by token" and r.get("properties", {}).get("via") == "token"
           for r in recs), "the message sent with sluicectl's token is there too")
offsets = [r["offset"] for r in recs]
tap.ok(offsets == sorted(offsets) and len(set(offsets)) == len(offsets),
       "read prints records in offset order", offsets)

limited = records("events", p1, "--from", "0", "--limit", "1")
tap.ok(len(limited) == 1 and recs and limited[0]["offset"] == recs[0]["offset"],
       "read --limit 1 prints one record", limited)

error_line(ctl("send", "--device", "dev2", "x"), 1, ["401"],
           "send as a disabled device: exit 1 with the hub's 401")
error_line(ctl("send", "--device", "ghost", "x"), 1, ["device 'ghost' not found", "404"],
           "send as an unknown device: exit 1 naming it")

# --- send to a stream ---------------------------------------------------------------------------

ok_run(ctl("send", "--stream", "logs", "--key", "k1", "--property", "level=warn", "disk full"),
       "send --stream logs --key k1")
pl = st.partition_for_key("k1", 2)
logs = records("logs", pl, "--from", "0")
tap.ok(any(r.get("body") == "disk full" and r.get("key") == "k1"
           and r.get("properties", {}).get("level") == "warn" for r in logs),
       "the stream message lands in the key's partition with its property", logs)

# --- streams show --------------------------------------------------------------------------------

result = ctl("streams", "show", "events")
info = json_out(result) or {}
parts = {p.get("id"): p for p in info.get("partitions", [])}
tap.ok(result[0] == 0 and info.get("name") == "events" and len(parts) == PARTITIONS
       and parts.get(p1, {}).get("next", 0) >= len(recs),
       "streams show prints the partitions and their bounds", result[1] + result[2])
error_line(ctl("streams", "show", "nosuchstream"), 1, ["nosuchstream", "not found", "404"],
           "streams show of an unknown stream: exit 1 naming it")
error_line(ctl("read", "nosuchstream", "--partition", "0"), 1, ["nosuchstream", "404"],
           "read of an unknown stream: exit 1 naming it")

# --- read --follow --------------------------------------------------------------------------------


class Follower:
    """`sluicectl read --follow` as a subprocess, its lines read with a deadline."""

    def __init__(self, *args):
        env = dict(os.environ, SLUICE_CONNECTION_STRING=CS, SLUICE_URL=URL)
        self.proc = subprocess.Popen([sluicectl, "read"] + list(args) + ["--follow"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.buf = b""

    def line(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


start = parts.get(p1, {}).get("next", 0)
follower = Follower("events", "--partition", str(p1), "--from", str(start))
ok_run(ctl("send", "--device", "dev1", "--property", "seq=1", "followed 1"),
       "send while read --follow runs")
got1 = follower.line()
ok_run(ctl("send", "--device", "dev1", "--property", "seq=2", "followed 2"),
       "send a second message")
got2 = follower.line()
err = follower.stop()
tap.ok(got1 is not None and got1.get("body") == "followed 1" and got1.get("offset") == start
       and got1.get("properties", {}).get("seq") == "1",
       "read --follow prints a message sent after it started", "%r %s" % (got1, err))
tap.ok(got2 is not None and got2.get("body") == "followed 2" and got1 is not None
       and got2.get("offset") == got1.get("offset") + 1,
       "read --follow continues from the last offset + 1", "%r %s" % (got2, err))

follower = Follower("events", "--partition", str(p1), "--from", "end", "--limit", "1")
# `end` is resolved when the process starts, at a moment this script cannot
# see: send until a line appears (every send after that moment is past `end`).
got = None
deadline = time.monotonic() + 20
n = 0
while got is None and time.monotonic() < deadline:
    n += 1
    ctl("send", "--device", "dev1", "tail %d" % n)
    got = follower.line(timeout=2.0)
follower.proc.wait(timeout=20)
err = follower.stop()
tap.ok(got is not None and got.get("body", "").startswith("tail ")
       and follower.proc.returncode == 0,
       "read --from end --follow --limit 1 prints one new message and exits 0",
       "%r %s" % (got, err))

# --- consumer-group offsets ----------------------------------------------------------------------


def committed(result, partition):
    """The offset of `partition` in `offsets show` output (list or object forms)."""
    doc = json_out(result)
    if isinstance(doc, dict):
        doc = doc.get("offsets", doc.get("partitions", doc))
    if isinstance(doc, dict):
        value = doc.get(str(partition))
        return value.get("offset") if isinstance(value, dict) else value
    for item in doc or []:
        if isinstance(item, dict) and item.get("partition") == partition:
            return item.get("offset")
    return None


recs = records("events", p1, "--from", "0")
mid = recs[1]["offset"] if len(recs) > 1 else 1
result = ctl("offsets", "commit", "events", "readers", str(p1), str(mid))
ok_run(result, "offsets commit events readers %d %d" % (p1, mid))
result = ctl("offsets", "show", "events", "readers")
tap.eq(committed(result, p1), mid, "offsets show prints the committed offset")
grouped = records("events", p1, "--group", "readers", "--limit", "2")
tap.ok(len(grouped) >= 1 and grouped[0]["offset"] == mid,
       "read --group starts at the group's committed offset", grouped)
error_line(ctl("offsets", "commit", "events", "readers", "x", "1"), 2, ["PARTITION"],
           "offsets commit with a bad partition: exit 2")
error_line(ctl("read", "events", "--partition", "0", "--from", "1", "--group", "g"), 2,
           ["--from", "--group"], "--from and --group together: exit 2")

# --- disable / enable / delete -------------------------------------------------------------------

ok_run(ctl("device", "disable", "dev1", "--reason", "maintenance"), "device disable dev1")
shown = json_out(ctl("device", "show", "dev1")) or {}
tap.ok(shown.get("status") == "disabled" and shown.get("statusReason") == "maintenance"
       and keys_of(shown) == (dev1_primary, dev1_secondary),
       "dev1 is disabled with the reason, keys kept", shown)
line = error_line(ctl("send", "--device", "dev1", "x"), 1, ["401"],
                  "send as the disabled device: exit 1 with a 401 line")
ok_run(ctl("device", "enable", "dev1"), "device enable dev1")
shown = json_out(ctl("device", "show", "dev1")) or {}
tap.ok(shown.get("status") == "enabled" and not shown.get("statusReason"),
       "dev1 is enabled again", shown)
ok_run(ctl("send", "--device", "dev1", "back"), "the enabled device sends again")

ok_run(ctl("device", "delete", "dev2"), "device delete dev2")
line = error_line(ctl("device", "show", "dev2"), 1, ["device 'dev2' not found (404"],
                  "device show of the deleted device: exit 1, 'device 'dev2' not found (404 ...)'")
error_line(ctl("device", "delete", "dev2"), 1, ["dev2", "404"], "deleting it again: exit 1")
listed = json_out(ctl("device", "list", "--json")) or []
tap.ok("dev2" not in {d.get("deviceId") for d in listed}, "dev2 is gone from the list")

# --- connection errors ------------------------------------------------------------------------------

error_line(ctl("device", "list", cs=None), 2, ["SLUICE_CONNECTION_STRING", "--connection-string"],
           "no connection string: exit 2, saying how to set it")
error_line(ctl("device", "list", cs="this is not one"), 2, ["connection string"],
           "a malformed connection string: exit 2")
error_line(ctl("device", "list", cs="HostName=%s;SharedAccessKey=%s" % (HOST, owner_key)), 2,
           ["SharedAccessKeyName"], "a connection string without a policy name: exit 2")
error_line(ctl("device", "list", cs="HostName=%s;SharedAccessKeyName=owner;SharedAccessKey=%%%%"
               % HOST), 2, ["base64"], "a key that is not base64: exit 2")
tap.ok(owner_key not in ctl("device", "list", cs=CS + ";Bogus")[2],
       "error lines never repeat the key")
wrong = "HostName=%s;SharedAccessKeyName=owner;SharedAccessKey=%s" % (HOST, st.new_key())
error_line(ctl("device", "list", cs=wrong), 1, ["401"], "a wrong key: exit 1 with a 401 line")
reader = "HostName=%s;SharedAccessKeyName=reader;SharedAccessKey=%s" % (HOST, reader_key)
ok_run(ctl("device", "list", cs=reader), "a RegistryRead policy may list devices")
error_line(ctl("device", "create", "dev3", cs=reader), 1, ["dev3", "403"],
           "but not create one: exit 1 with a 403 line")
error_line(ctl("device", "list", "--connection-string", CS, "--url", "ftp://x"), 2, ["URL"],
           "a --url that is not http(s): exit 2")
ok_run(ctl("--connection-string", CS, "--url", URL, "device", "list", cs=None, url=None),
       "--connection-string and --url may come before the command")

# A device connection string acts as that device without the registry.
device_cs = ctl("device", "connection-string", "dev1")[1].strip()
ok_run(ctl("send", "device cs", cs=device_cs), "send with a device connection string")
error_line(ctl("device", "list", cs=device_cs), 2, ["service connection string"],
           "registry commands need a service connection string: exit 2")

# --- TLS -----------------------------------------------------------------------------------------------

cert = os.path.join(data_dir, "tls", "dev-cert.pem")
tap.ok(os.path.exists(cert), "sluiced generated its development certificate %s" % cert)
tls_url = "https://127.0.0.1:%d" % tls[1]
ok_run(ctl("device", "list", "--url", tls_url, "--cacert", cert, url=None),
       "device list over TLS with --cacert and --url https://127.0.0.1:PORT "
       "(the certificate names 127.0.0.1)")
ok_run(ctl("send", "--device", "dev1", "over tls", url=tls_url, cacert=cert),
       "send over TLS with SLUICE_URL and SLUICE_CACERT")
ok_run(ctl("device", "list", url="https://localhost:%d" % tls[1], cacert=cert),
       "TLS with the host name localhost")
error_line(ctl("device", "list", url=tls_url), 1, ["certificate", "--cacert"],
           "TLS without --cacert: exit 1, saying to pass --cacert")
error_line(ctl("device", "list", url=tls_url, cacert=os.path.join(work, "missing.pem")), 2,
           ["missing.pem"], "a --cacert file that does not exist: exit 2")

hub.stop()
tap.done()
