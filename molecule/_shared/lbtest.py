"""Helpers the load-balancer scenarios share: devices (paho MQTT over TLS and secure WebSocket), TLS
probes, the EMQX REST API, sslyze, a certificate that expired, and ansible-playbook runs.

Nothing here knows a scenario's names or addresses: each test module passes its own. Every helper
talks only to the addresses it is given (the scenario's own containers) and to loopback.
Import it with the scenario's tests directory's parent's sibling on sys.path:

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
    import lbtest
"""

import base64
import contextlib
import datetime
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid

import paho.mqtt.client as mqtt

TLS_NAMES = {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}

# The users every scenario's inventory provisions (emq_node_authn_users in its molecule.yml): a back-end
# superuser, which the ACL does not restrict, and a device, which it does.
BACKEND = ("molecule-backend", "molecule-backend-pw")
SENSOR = ("sensor-1", "sensor-1 pw#\"x")


def tls_context(ca):
    """A client context that verifies the chain against ca and the name (or address) it connects to."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = True
    return ctx


class Device:
    """A paho MQTT client through a load balancer: MQTT over TLS ("mqtts") or over secure WebSocket ("wss")."""

    def __init__(self, host, port, ca, transport="mqtts", clientid=None, keepalive=60, ws_path="/mqtt", credentials=BACKEND,
                 certificate=None):
        self.clientid = clientid or "molecule-%s-%s" % (transport, uuid.uuid4().hex[:8])
        self.messages = []
        self.connected = threading.Event()
        self.disconnects = []
        ws = transport == "wss"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.clientid,
                                  protocol=mqtt.MQTTv311, transport="websockets" if ws else "tcp")
        if ws:
            self.client.ws_set_options(path=ws_path)
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        # paho verifies the chain (the lab CA) and the address it connects to (an IP SAN).
        ctx = tls_context(ca)
        if certificate is not None:
            ctx.load_cert_chain(*certificate)
        self.client.tls_set_context(ctx)
        self.refused = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p=None: self.disconnects.append(str(rc))
        self.client.on_message = lambda c, u, msg: self.messages.append((msg.topic, msg.payload))
        self.client.reconnect_delay_set(60, 60)  # a drop must show, not be hidden by a reconnect
        self.client.connect(host, port, keepalive=keepalive)
        self.client.loop_start()
        if not self.connected.wait(10) or self.refused is not None:
            self.close()
            raise AssertionError("no CONNACK through the load balancer %s:%d for %s (%s)" % (host, port, self.clientid, self.refused))

    def _on_connect(self, client, userdata, flags, reason, properties=None):
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def subscribe(self, topic):
        done = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rc, p=None: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK for %s" % self.clientid

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def wait_for(self, expected, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and expected not in self.messages:
            time.sleep(0.1)
        return expected in self.messages

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class SessionTraffic:
    """QoS 1 traffic to a persistent session across a rollout: a subscriber with a fixed client id and
    clean session off through one load balancer, a publisher through another sending a numbered message
    every interval seconds. Both reconnect by themselves (within a second), as devices do; the subscriber
    subscribes again when the broker has no session for it (session present 0). Bounded by limit messages.
    report() gives the figures: messages acknowledged to the publisher, received, lost (and the numbers of
    the first five lost), duplicated, the subscriber's reconnects and its longest time without a connection."""

    def __init__(self, sub_lb, pub_lb, port, ca, interval=0.05, limit=20000):
        self.topic = "molecule/session/%s" % uuid.uuid4().hex[:8]
        self.received, self.acked, self.outages, self.fresh_sessions = [], set(), [], 0
        self._pending, self._lock, self._down_since = {}, threading.Lock(), None
        self._interval, self._limit, self._stop = interval, limit, threading.Event()
        self.sub = self._client("molecule-session-sub-%s" % uuid.uuid4().hex[:6], ca, clean=False)
        self.sub.on_connect = self._sub_connected
        self.sub.on_disconnect = self._sub_disconnected
        self.sub.on_subscribe = lambda c, u, mid, codes, p=None: self._subscribed.set()
        self.sub.on_message = lambda c, u, msg: self.received.append(int(msg.payload))
        self.pub = self._client("molecule-session-pub-%s" % uuid.uuid4().hex[:6], ca, clean=True)
        self.pub.on_publish = self._published
        # set on the SUBACK: subscribe() from on_connect only queues the packet for the network thread,
        # so a publisher started on the CONNACK could reach the broker before the subscription does
        self._subscribed = threading.Event()
        self.sub.connect(sub_lb, port, keepalive=30)
        self.sub.loop_start()
        self.pub.connect(pub_lb, port, keepalive=30)
        self.pub.loop_start()
        assert self._subscribed.wait(10), "the persistent subscriber did not subscribe"
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _client(clientid, ca, clean):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=clientid, protocol=mqtt.MQTTv311, clean_session=clean)
        client.username_pw_set(*BACKEND)
        if ca is not None:  # None: plain MQTT, straight to a node
            client.tls_set_context(tls_context(ca))
        client.reconnect_delay_set(0.2, 1)
        client.max_inflight_messages_set(100)
        return client

    def _sub_connected(self, client, userdata, flags, reason, properties=None):
        if reason.is_failure:
            return
        if self._down_since is not None:
            self.outages.append(round(time.monotonic() - self._down_since, 2))
            self._down_since = None
        if not flags.session_present:
            self.fresh_sessions += 1
            client.subscribe(self.topic, qos=1)

    def _sub_disconnected(self, client, userdata, flags, reason, properties=None):
        if self._down_since is None:
            self._down_since = time.monotonic()

    def _published(self, client, userdata, mid, reason=None, properties=None):
        with self._lock:
            seq = self._pending.pop(mid, None)
        if seq is not None:
            self.acked.add(seq)

    def _run(self):
        seq = 0
        while not self._stop.is_set() and seq < self._limit:
            seq += 1
            with self._lock:
                info = self.pub.publish(self.topic, str(seq).encode(), qos=1)
                if info.rc == mqtt.MQTT_ERR_SUCCESS or info.rc == mqtt.MQTT_ERR_NO_CONN:
                    self._pending[info.mid] = seq
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self, settle=5):
        self._stop.set()
        self._thread.join(10)
        deadline = time.time() + settle
        while time.time() < deadline and not self.acked <= set(self.received):
            time.sleep(0.2)
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_stop()

    def report(self):
        got = set(self.received)
        lost = sorted(self.acked - got)
        return dict(acked=len(self.acked), received=len(got), lost=len(lost), lost_first=lost[:5],
                    duplicated=len(self.received) - len(got), reconnects=len(self.outages),
                    longest_outage_s=max(self.outages, default=0.0), fresh_sessions=self.fresh_sessions - 1)


def publish_and_receive(sub, pub, topic=None, payload=b"through the load balancer"):
    """Subscribe with one device, publish with another; True when the message arrived."""
    topic = topic or "molecule/lb/%s" % uuid.uuid4().hex
    sub.subscribe(topic)
    time.sleep(0.5)  # the route reaches the other node
    pub.publish(topic, payload)
    return sub.wait_for((topic, payload))


def peer_names(host, port, ca, server_name):
    """TLS version and DNS names of the certificate, verified against ca for server_name."""
    with socket.create_connection((host, port), timeout=10) as raw:
        with tls_context(ca).wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.version(), [v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"]


def verify_fails(host, port, ctx, server_name):
    """True when the handshake fails certificate verification (wrong name, or an unknown CA)."""
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            ctx.wrap_socket(raw, server_hostname=server_name).close()
    except ssl.SSLCertVerificationError:
        return True
    return False


# ---- old TLS versions -------------------------------------------------------------------------

def old_tls_context(version):
    """A client that offers exactly one old TLS version (and the old ciphers it needs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.0/1.1 at all
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


@contextlib.contextmanager
def old_tls_server(workdir):
    """A loopback server that accepts TLS 1.0 and 1.1: proof that old_tls_context can speak them.
    Yields its port."""
    workdir = pathlib.Path(workdir)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem")], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(workdir / "cert.pem"), str(workdir / "key.pem"))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            try:
                ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def old_tls_version_speaks(port, version):
    """The version old_tls_context negotiates with the loopback old_tls_server (the control)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with old_tls_context(version).wrap_socket(raw) as tls:
            return tls.version()


def old_tls_refusal(host, port, version):
    """The SSL error reason a server answers a client offering only this old version with."""
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            old_tls_context(version).wrap_socket(raw).close()
    except ssl.SSLError as err:
        return err.reason
    return None


# ---- sslyze -----------------------------------------------------------------------------------

SSLYZE = pathlib.Path(__file__).resolve().parents[2] / ".venv" / "sslyze" / "bin" / "sslyze"


def sslyze_intermediate(name, address, ports, ca, timeout=240):
    """Run sslyze --mozilla_config=intermediate on name:port{address} for each port; the CompletedProcess."""
    assert SSLYZE.exists(), "sslyze is missing: run `make sslyze` (its own venv, .venv/sslyze)"
    targets = ["%s:%d{%s}" % (name, port, address) for port in ports]
    return subprocess.run([str(SSLYZE), "--mozilla_config=intermediate", "--certinfo_ca_file", str(ca)] + targets,
                          capture_output=True, text=True, timeout=timeout)


def _utf8(text):
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def connack(host, port, ca, timeout=2.0, clientid=None, credentials=BACKEND):
    """One new device: TCP, TLS verified against ca for host (no TLS when ca is None), MQTT 3.1.1 CONNECT (with a username and
    password unless credentials is None); None on CONNACK 0, else what went wrong (a short text, "CONNACK
    20020005" for return code 5). Cheap enough to call twice a second."""
    clientid = clientid or "probe-%s" % uuid.uuid4().hex[:10]
    flags = 0x02 | (0xC0 if credentials is not None else 0)  # clean session, username and password
    variable = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x1e"  # protocol level 4, keepalive 30 s
    payload = _utf8(clientid) + (_utf8(credentials[0]) + _utf8(credentials[1]) if credentials is not None else b"")
    connect = bytes([0x10, len(variable) + len(payload)]) + variable + payload
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with (tls_context(ca).wrap_socket(raw, server_hostname=host) if ca is not None
                  else contextlib.nullcontext(raw)) as tls:
                tls.sendall(connect)
                answer = b""
                while len(answer) < 4:
                    chunk = tls.recv(4 - len(answer))
                    if not chunk:
                        return "closed before CONNACK"
                    answer += chunk
                if answer[0] != 0x20 or answer[3] != 0:
                    return "CONNACK %s" % answer.hex()
                tls.sendall(b"\xe0\x00")  # DISCONNECT
                return None
    except (OSError, ssl.SSLError) as exc:
        return "%s: %s" % (type(exc).__name__, exc)


class Probe:
    """A new device through host:port every interval seconds, in a thread, until stop(); bounded by limit probes."""

    def __init__(self, host, port, ca, interval=0.5, limit=2400):
        self.results = []  # (seconds since start, None or the error)
        self._args, self._interval, self._limit = (host, port, ca), interval, limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        while not self._stop.is_set() and len(self.results) < self._limit:
            began = time.monotonic()
            self.results.append((round(began - self._start, 2), connack(*self._args)))
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def failures(self):
        return [(t, err) for t, err in self.results if err]

    def longest_failure_run(self):
        longest = run = 0
        for _, err in self.results:
            run = run + 1 if err else 0
            longest = max(longest, run)
        return longest


# ---- HAProxy runtime API ----------------------------------------------------------------------

def haproxy_servers_state(lb_host, backend, socket_path="/run/haproxy/admin.sock"):
    """{server name: (operational state, admin state)} from "show servers state", read on the LB
    (lb_host: a testinfra host). Operational state 2 is up, 0 is down."""
    command = "show servers state %s" % backend
    lines = lb_host.check_output("echo '%s' | socat stdio %s" % (command, socket_path)).splitlines()
    header = next(line for line in lines if line.startswith("# be_id")).lstrip("# ").split()
    out = {}
    for line in lines:
        fields = line.split()
        if len(fields) == len(header) and fields[0].isdigit():
            row = dict(zip(header, fields))
            out[row["srv_name"]] = (int(row["srv_op_state"]), int(row["srv_admin_state"]))
    return out


# ---- EMQX REST API ----------------------------------------------------------------------------

class EmqxApi:
    """The nodes' /api/v5 with an API key; nodes is {name: address}."""

    def __init__(self, nodes, key, secret, port=18083):
        self.nodes, self.port = nodes, port
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (key, secret)).encode()).decode()

    def get(self, path, node):
        req = urllib.request.Request("http://%s:%d/api/v5/%s" % (self.nodes[node], self.port, path))
        req.add_header("Authorization", self.auth)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def client_info(self, clientid, node, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            data = self.get("clients?clientid=%s" % clientid, node)["data"]
            if data:
                return data[0]
            time.sleep(0.3)
        raise AssertionError("client %s is not listed by /api/v5/clients on %s" % (clientid, node))

    def nodes_of(self, devices, node):
        """The EMQX node each device landed on, asked from node (the cluster lists every client)."""
        return [self.client_info(d.clientid, node)["node"] for d in devices]

    def wait_status(self, node, timeout=60):
        """Wait until the node's /status answers 200; the seconds it took."""
        start = time.time()
        while time.time() < start + timeout:
            try:
                with urllib.request.urlopen("http://%s:%d/status" % (self.nodes[node], self.port), timeout=3) as resp:
                    if resp.status == 200:
                        return time.time() - start
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("%s did not answer /status 200 within %ss" % (node, timeout))


# ---- certificates and playbooks ---------------------------------------------------------------

def expired_certificate(workdir, common_name):
    """A self-signed certificate that expired yesterday, and its key (made with cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    workdir = pathlib.Path(workdir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (workdir / "expired.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "expired.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    return workdir / "expired.pem", workdir / "expired.key"


def client_certificate(workdir, ca_dir, common_name):
    """A device certificate for common_name signed by the lab CA in ca_dir (ca.pem, ca.key), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    workdir, ca_dir = pathlib.Path(workdir), pathlib.Path(ca_dir)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (workdir / ("%s.pem" % common_name)).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / ("%s.key" % common_name)).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                      serialization.NoEncryption()))
    return workdir / ("%s.pem" % common_name), workdir / ("%s.key" % common_name)


def server_certificate(workdir, ca_dir, common_name, address):
    """A new load balancer certificate for common_name and IP address, signed by the lab CA in ca_dir, and
    its key: what an operator rotates to (tls_source files). Returns (cert path, key path, DER bytes)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    workdir, ca_dir = pathlib.Path(workdir), pathlib.Path(ca_dir)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(address))]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (workdir / "rotated.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "rotated.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    return workdir / "rotated.pem", workdir / "rotated.key", cert.public_bytes(serialization.Encoding.DER)


def served_certificate(host, port, ca, server_name):
    """The DER certificate a new TLS handshake gets, verified against ca for server_name."""
    with socket.create_connection((host, port), timeout=10) as raw:
        with tls_context(ca).wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def playbook(playbook_path, limit, *args, timeout=300):
    """ansible-playbook on the scenario's inventory (Molecule's), limited to one group."""
    inventory = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    cmd = ["ansible-playbook", "--inventory", str(inventory), "--limit", limit] + list(args) + [str(playbook_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def recap_unchanged(stdout, host):
    """True when the play recap shows host with changed=0 (and no failure when it got that far)."""
    return re.search(r"%s\s*:\s*ok=\d+\s+changed=0\s" % re.escape(host), stdout) is not None
