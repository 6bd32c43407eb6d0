#!/usr/bin/python3
# auth-x509 against a real sluiced ([auth] chain = key;x509, transport-mqtt
# on a TLS listener without tls-ca, transport-https for the registry and the
# read-back): certificates made with openssl, CRLs with certtool; a
# selfSigned device created over the HTTPS registry API with its thumbprint
# connects with mosquitto_pub --cert/--key (IoT Hub username, no password,
# and with no username at all) and its QoS 1 telemetry reads back over
# HTTPS; a wrong certificate, a client id that is not the CN and a rogue CA
# are refused; a certificateAuthority device; a policy-mapped certificate; disabling a device closes its
# live connection; a new CRL plus SIGHUP closes a revoked device's live
# connection and leaves the others. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import hashlib
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
HOST = "localhost"
PARTITIONS = 4

for tool, package in (("mosquitto_pub", "mosquitto-clients"), ("openssl", "openssl"),
                      ("certtool", "gnutls-bin")):
    if not shutil.which(tool):
        tap.bail_out("%s not found: install the Debian package %s (apt-get install %s)"
                     % (tool, package, package))
for plugin in ("transport-https", "transport-mqtt", "auth-x509"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))

work = st.tempdir()
pki = os.path.join(work, "pki")
os.makedirs(pki)


# --- certificates -------------------------------------------------------------------------

def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, timeout=60, **kw)
    if res.returncode != 0:
        tap.bail_out("%s failed: %s" % (" ".join(cmd), res.stderr.decode(errors="replace")))
    return res


def path(name):
    return os.path.join(pki, name)


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
LEAF_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" \
           "extendedKeyUsage=clientAuth\n"


def make_ca(name, cn):
    run(["openssl", "req", "-x509"] + EC + ["-keyout", path(name + ".key"),
        "-out", path(name + ".pem"), "-days", "30", "-subj", "/CN=" + cn,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"])


def make_self_signed(name, cn):
    run(["openssl", "req", "-x509"] + EC + ["-keyout", path(name + ".key"),
        "-out", path(name + ".pem"), "-days", "10", "-subj", "/CN=" + cn,
        "-addext", "extendedKeyUsage=clientAuth"])


def make_signed(name, cn, ca, serial):
    with open(path(name + ".ext"), "w") as f:
        f.write(LEAF_EXT)
    run(["openssl", "req"] + EC + ["-keyout", path(name + ".key"), "-out", path(name + ".csr"),
        "-subj", "/CN=" + cn])
    run(["openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".pem"),
         "-CAkey", path(ca + ".key"), "-set_serial", str(serial), "-days", "10",
         "-extfile", path(name + ".ext"), "-out", path(name + ".pem")])


def make_crl(ca, revoked, out):
    """A CRL by `ca` revoking the certificates named in `revoked` (certtool)."""
    with open(path("crl.tmpl"), "w") as f:
        f.write("crl_next_update = 30\ncrl_number = %d\n" % (int(time.time()) % 100000))
    cmd = ["certtool", "--generate-crl", "--load-ca-privkey", path(ca + ".key"),
           "--load-ca-certificate", path(ca + ".pem"), "--template", path("crl.tmpl"),
           "--outfile", out]
    if revoked:
        # certtool revokes every certificate of one file.
        bundle = path("revoked-bundle.pem")
        with open(bundle, "w") as f:
            for name in revoked:
                f.write(open(path(name + ".pem")).read())
        cmd += ["--load-certificate", bundle]
    run(cmd)


def thumbprint(name):
    with open(path(name + ".pem")) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


make_ca("root", "Sluice Test Root CA")
make_ca("rogue", "Rogue CA")
make_self_signed("ss1", "ss-dev1")
make_self_signed("ss1-other", "ss-dev1")     # same CN, another key: another thumbprint
make_self_signed("ss2", "ss-dev2")
make_signed("ca1", "ca-dev1", "root", 101)
make_signed("ca2", "ca-dev2", "root", 102)
make_signed("ca1-rogue", "ca-dev1", "rogue", 103)
make_signed("app", "analytics-app", "root", 104)
CRL = path("crl.pem")
make_crl("root", [], CRL)

# --- the hub ------------------------------------------------------------------------------

owner_key = st.new_key()
data_dir = os.path.join(work, "data")
sections = [
    ("hub", {"hostname": HOST, "data-dir": data_dir, "workers": 2}),
    ("storage", {"plugin": "file"}),
    ("auth", {"chain": "key;x509"}),
    ("auth.key", {"plugin": "key"}),
    ("auth.x509", {"plugin": "x509", "ca": path("root.pem"), "crl": CRL,
                   "policy-map": "analytics-app=>owner"}),
    ("policy.owner", {"primary-key": owner_key,
                      "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                 "DeviceConnect", "Send", "Listen", "Manage"]}),
    ("stream.events", {"partitions": PARTITIONS, "durability": "batch"}),
    ("transport.https", {"plugin": "https", "listen": "127.0.0.1:0",
                         "tls-listen": "127.0.0.1:0"}),
    ("transport.mqtt", {"plugin": "mqtt", "tls-listen": "127.0.0.1:0"}),
]
x509_dir = os.path.join(st.builddir(), "plugins", "auth-x509")
hub = st.Hub(st.config_text(sections), workdir=work, data_dir=data_dir,
             env={"SLUICE_PLUGIN_PATH": st.plugin_path([x509_dir])})
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
https = hub.address("https", "plain")
mqtts = hub.address("mqtt", "tls")
SERVER_CA = os.path.join(data_dir, "tls", "dev-cert.pem")
OWNER = st.sas_token(HOST, owner_key, skn="owner")


def call(method, path_, body=None):
    h = {"Authorization": OWNER}
    if isinstance(body, dict):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    return st.http_request(https, method, path_, body=body, headers=h)


def put_device(device_id, auth, status="enabled"):
    body = {"deviceId": device_id, "status": status, "authentication": auth}
    code, _, data = call("PUT", "/devices/" + device_id, body)
    return code, (json.loads(data) if code == 200 else data)


def username(device_id):
    return "%s/%s/?api-version=2021-04-12" % (HOST, device_id)


def read_all(device_id):
    p = st.partition_for_key(device_id, PARTITIONS)
    out, offset = [], 0
    while True:
        code, _, data = call("GET", "/events/partitions/%d/messages?from=%d&limit=1000"
                             % (p, offset))
        recs = json.loads(data) if code == 200 else []
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


def log_has(text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        with open(hub.log_path, errors="replace") as f:
            if text in f.read():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def mosquitto_pub(cert, device, message, version="mqttv311", user=True, client_id=None,
                  qos=1, topic=None):
    cmd = ["mosquitto_pub", "-V", version, "-q", str(qos),
           "-t", topic or "devices/%s/messages/events/" % device, "-m", message,
           "-i", client_id or device, "-h", HOST, "-p", str(mqtts[1]),
           "--cafile", SERVER_CA, "--cert", path(cert + ".pem"), "--key", path(cert + ".key")]
    if user:
        cmd += ["-u", username(device)]
    return subprocess.run(cmd, capture_output=True, timeout=30)


def diag(res):
    return (res.returncode, res.stderr.decode(errors="replace"), hub.log_tail(5))


# --- a selfSigned device, over the registry API ---------------------------------------------

code, dev = put_device("ss-dev1", {"type": "selfSigned", "x509Thumbprint": {
    "primaryThumbprint": thumbprint("ss1").upper(), "secondaryThumbprint": None}})
tap.ok(code == 200 and dev.get("authentication", {}).get("type") == "selfSigned"
       and dev["authentication"]["x509Thumbprint"]["primaryThumbprint"].lower()
       == thumbprint("ss1"),
       "PUT /devices/ss-dev1 creates a selfSigned device with its SHA-256 thumbprint",
       (code, dev))

sent = []
for version in ("mqttv311", "mqttv5"):
    res = mosquitto_pub("ss1", "ss-dev1", "ss hello " + version, version=version)
    tap.ok(res.returncode == 0, "mosquitto_pub -V %s --cert (IoT Hub username, no password) "
           "publishes QoS 1 telemetry as ss-dev1" % version, diag(res))
    sent.append("ss hello " + version)
res = mosquitto_pub("ss1", "ss-dev1", "ss hello no username", user=False)
tap.ok(res.returncode == 0, "mosquitto_pub --cert with no username at all (TLS peer only) "
       "publishes", diag(res))
sent.append("ss hello no username")

recs = wait_records("ss-dev1", len(sent))
tap.eq(sorted(r.get("body") for r in recs), sorted(sent),
       "the telemetry reads back over HTTPS, key = the certificate's CN")
props = recs[0].get("properties", {}) if recs else {}
tap.ok(props.get("iothub-connection-device-id") == "ss-dev1"
       and json.loads(props.get("iothub-connection-auth-method", "{}")).get("type") == "x509",
       "records say iothub-connection-device-id ss-dev1 and auth method type x509", props)

res = mosquitto_pub("ss1-other", "ss-dev1", "wrong cert")
tap.ok(res.returncode != 0 and b"Connection Refused" in res.stderr,
       "a certificate with the right CN but another thumbprint is refused at CONNACK",
       diag(res))
tap.ok(log_has("neither its primary nor its secondary thumbprint"),
       "sluiced logs why (thumbprint mismatch)", hub.log_tail(5))

res = mosquitto_pub("ss1", "ss-dev1", "other client id", user=False, client_id="not-ss-dev1")
tap.ok(res.returncode != 0 and b"Connection Refused" in res.stderr,
       "the device's own certificate under another client id is refused", diag(res))

res = mosquitto_pub("ss2", "ss-dev2", "unregistered")
tap.ok(res.returncode != 0 and b"Connection Refused" in res.stderr,
       "a certificate whose CN is no registered device is refused", diag(res))

# --- a certificateAuthority device ----------------------------------------------------------

code, dev = put_device("ca-dev1", {"type": "certificateAuthority"})
tap.ok(code == 200 and dev.get("authentication", {}).get("type") == "certificateAuthority",
       "PUT /devices/ca-dev1 creates a certificateAuthority device", (code, dev))
code, dev = put_device("ca-dev2", {"type": "certificateAuthority"})
res = mosquitto_pub("ca1", "ca-dev1", "ca hello", version="mqttv5")
tap.ok(res.returncode == 0, "mosquitto_pub with a certificate signed by the configured CA "
       "publishes as ca-dev1", diag(res))
recs = wait_records("ca-dev1", 1)
tap.eq([r.get("body") for r in recs], ["ca hello"], "ca-dev1's telemetry reads back over HTTPS")

res = mosquitto_pub("ca1-rogue", "ca-dev1", "rogue")
tap.ok(res.returncode != 0 and b"Connection Refused" in res.stderr,
       "a certificate for ca-dev1 signed by another CA is refused", diag(res))
tap.ok(log_has("issuer is unknown"), "sluiced logs why (issuer unknown)", hub.log_tail(5))

# A CA-signed certificate whose CN policy-map names is that policy.
res = mosquitto_pub("app", "analytics-app", "app", user=False, client_id="app-1", qos=0,
                    topic="plain/app")
tap.ok(res.returncode == 0 and log_has("client 'app-1' connected as policy/owner"),
       "a certificate mapped by policy-map connects as that policy (any client id)", diag(res))

# A SAS device keeps working with key;x509 (the key link judges passwords).
code, _, data = call("PUT", "/devices/sas-dev", {"deviceId": "sas-dev"})
sas_key = json.loads(data)["authentication"]["symmetricKey"]["primaryKey"] if code == 200 else ""
res = subprocess.run(["mosquitto_pub", "-q", "1", "-t", "devices/sas-dev/messages/events/",
                      "-m", "sas", "-i", "sas-dev", "-u", username("sas-dev"),
                      "-P", st.sas_token("%s/devices/sas-dev" % HOST, sas_key),
                      "-h", HOST, "-p", str(mqtts[1]), "--cafile", SERVER_CA],
                     capture_output=True, timeout=30)
tap.ok(res.returncode == 0, "a SAS device still connects with a token through key;x509",
       diag(res))
res = subprocess.run(["mosquitto_pub", "-q", "1", "-t", "devices/ca-dev1/messages/events/",
                      "-m", "x", "-i", "ca-dev1", "-u", username("ca-dev1"),
                      "-h", HOST, "-p", str(mqtts[1]), "--cafile", SERVER_CA],
                     capture_output=True, timeout=30)
tap.ok(res.returncode != 0 and b"Connection Refused" in res.stderr,
       "a username without password or certificate is refused", diag(res))


# --- live connections: disable, CRL + SIGHUP -------------------------------------------------

def mqtt_str(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


class CertClient:
    """A raw MQTT 3.1.1 client over TLS with a client certificate."""

    def __init__(self, cert, device, tls12=False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(SERVER_CA)
        ctx.load_cert_chain(path(cert + ".pem"), path(cert + ".key"))
        raw = socket.create_connection(mqtts, timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname=HOST)
        user = username(device)
        body = mqtt_str("MQTT") + bytes([4, 0x82]) + (60).to_bytes(2, "big") \
            + mqtt_str(device) + mqtt_str(user)
        self.sock.sendall(bytes([0x10, len(body)]) + body)
        self.connack = self.read_exact(4)

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def closed_within(self, timeout):
        """True when the server closes the connection before `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.sock.pending() == 0:
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    return False
            try:
                if not self.sock.recv(4096):
                    return True
            except ssl.SSLWantReadError:
                continue
            except (ssl.SSLError, OSError):
                return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


CONNACK_OK = b"\x20\x02\x00\x00"
old_tls = CertClient("ss1", "ss-dev1", tls12=True)
tap.ok(old_tls.connack == CONNACK_OK and old_tls.sock.version() == "TLSv1.2",
       "the hub asks TLS 1.2 clients for their certificate too",
       (old_tls.connack, old_tls.sock.version()))
old_tls.close()
live = CertClient("ss1", "ss-dev1")
tap.eq(live.connack, CONNACK_OK, "a raw MQTT client with ss-dev1's certificate is connected")
code, dev = put_device("ss-dev1", {"type": "selfSigned", "x509Thumbprint": {
    "primaryThumbprint": thumbprint("ss1"), "secondaryThumbprint": None}}, status="disabled")
tap.ok(code == 200 and dev.get("status") == "disabled", "PUT disables ss-dev1", (code, dev))
tap.ok(live.closed_within(5.0), "disabling ss-dev1 closes its live connection")
live.close()
again = CertClient("ss1", "ss-dev1")
tap.ok(again.connack[:3] == b"\x20\x02\x00" and again.connack[3] != 0,
       "a disabled device's certificate is refused at CONNACK", again.connack)
again.close()

ca1 = CertClient("ca1", "ca-dev1")
ca2 = CertClient("ca2", "ca-dev2")
tap.ok(ca1.connack == CONNACK_OK and ca2.connack == CONNACK_OK,
       "ca-dev1 and ca-dev2 are connected with CA-signed certificates",
       (ca1.connack, ca2.connack))
make_crl("root", ["ca2"], CRL + ".new")
os.replace(CRL + ".new", CRL)
os.kill(hub.pid, signal.SIGHUP)
tap.ok(ca2.closed_within(5.0), "after a CRL revoking ca-dev2's certificate and SIGHUP, its "
       "live connection is closed", hub.log_tail(5))
tap.ok(log_has("policies reloaded"), "sluiced logs the reload", hub.log_tail(5))
tap.ok(not ca1.closed_within(0.5), "ca-dev1's connection (not revoked) stays open")
ca1.close()
ca2.close()
res = mosquitto_pub("ca2", "ca-dev2", "revoked")
tap.ok(res.returncode != 0 and b"Connection Refused" in res.stderr,
       "ca-dev2's revoked certificate is refused at CONNACK", diag(res))
tap.ok(log_has("chain is revoked"), "sluiced logs why (revoked)", hub.log_tail(5))
res = mosquitto_pub("ca1", "ca-dev1", "after reload")
tap.ok(res.returncode == 0, "ca-dev1 still publishes after the reload", diag(res))

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly")
tap.done()
