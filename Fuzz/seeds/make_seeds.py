#!/usr/bin/env python3
"""Writes the seed corpora seeds/<target>/ (real packets; see README.md). Re-run after editing."""
import base64, hashlib, hmac, os, struct

here = os.path.dirname(os.path.abspath(__file__))

def put(target, name, data):
    os.makedirs(os.path.join(here, target), exist_ok=True)
    with open(os.path.join(here, target, name), "wb") as f:
        f.write(data)

def msg(t, payload): return t + struct.pack(">I", len(payload) + 4) + payload
def cstr(s): return s.encode() + b"\0"
def startup(params):
    body = struct.pack(">I", 196608) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return struct.pack(">I", len(body) + 4) + body

startup_msg = startup([("user", "app"), ("database", "app"), ("application_name", "psql"),
                       ("client_encoding", "UTF8"), ("options", "-c search_path=public")])
ssl = struct.pack(">II", 8, 80877103)
gss = struct.pack(">II", 8, 80877104)
cancel = struct.pack(">IIii", 16, 80877102, 4242, -123456789)
query = msg(b"Q", cstr("SELECT 1;"))
sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
parse = msg(b"P", cstr("") + cstr(sql) + struct.pack(">hI", 1, 23))
bind = msg(b"B", cstr("") + cstr("") + struct.pack(">hh", 1, 0) + struct.pack(">h", 1)
           + struct.pack(">i", 5) + b"12345" + struct.pack(">hh", 1, 0))
describe = msg(b"D", b"P" + cstr(""))
execute = msg(b"E", cstr("") + struct.pack(">i", 0))
sync = msg(b"S", b"")
pipeline = parse + bind + describe + execute + sync
error = msg(b"E", b"SERROR\0C42P01\0Mrelation does not exist\0\0")
backend = msg(b"R", struct.pack(">I", 0)) + msg(b"S", cstr("TimeZone") + cstr("UTC")) \
    + msg(b"K", struct.pack(">ii", 1, 2)) + msg(b"Z", b"I")

# frames: selector byte (index into the size limits; 0x02 = 8, 0x05 = 1 MiB) + buffer
for name, data in [("query", query), ("pipeline", pipeline), ("error", error), ("backend", backend),
                   ("terminate", msg(b"X", b"")), ("split", pipeline[:17])]:
    put("frames", name, b"\x05" + data)
put("frames", "small-limit", b"\xf0\x00\x10" + pipeline)
put("frames", "startup", b"\x05" + startup_msg)

for name, data in [("startup", startup_msg), ("ssl", ssl), ("gss", gss), ("cancel", cancel),
                   ("replication", startup([("user", "u"), ("replication", "true")])),
                   ("protocol2", struct.pack(">II", 8, 0x00020000)), ("empty-startup", startup([]))]:
    put("startup", name, data)

# SCRAM, RFC 7677
salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
cnonce, snonce = "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
server_first = f"r={cnonce}{snonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"

def client_final(gs2, cb, user="user"):
    bare = f"n={user},r={cnonce}"
    without = "c=" + base64.b64encode(gs2.encode() + cb).decode() + f",r={cnonce}{snonce}"
    auth = f"{bare},{server_first},{without}".encode()
    sig = hmac.new(stored_key, auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_sig = hmac.new(server_key, auth, "sha256").digest()
    return (gs2 + bare).encode(), (without + ",p=" + base64.b64encode(proof).decode()).encode(), \
        ("v=" + base64.b64encode(server_sig).decode()).encode()

first, final, sfinal = client_final("n,,", b"")
assert final.endswith(b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
put("scram-server", "rfc7677", b"\x00" + first + b"\0" + final)
put("scram-server", "y-flag", b"\x00" + b"\0".join(client_final("y,,", b"")[:2]))
cb = bytes((i * 7 + 1) & 0xff for i in range(32))
put("scram-server", "plus", b"\x01" + b"\0".join(client_final("p=tls-server-end-point,,", cb)[:2]))
put("scram-server", "mock", b"\x02" + first + b"\0" + final)
put("scram-server", "extensions", b"\x00" + first + b",x=1\0" + final)
put("scram-server", "final-first", b"\x00" + first + b"\0\xff" + final)
secret = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + base64.b64encode(stored_key).decode() + ":" \
    + base64.b64encode(server_key).decode()
put("scram-server", "secret", b"\x03" + secret.encode())

put("scram-client", "rfc7677", b"\x00" + server_first.encode() + b"\0" + sfinal)
put("scram-client", "passthrough", b"\x01" + server_first.encode() + b"\0" + client_final("n,,", b"", user="")[2])
put("scram-client", "low-iterations", b"\x00" + server_first.replace("4096", "2").encode() + b"\0v=abc")
put("scram-client", "server-error", b"\x00e=invalid-proof\0e=other-error")
put("scram-client", "e2e", b"\x02pencil\0\x10" + salt + b"\x03")

for i, cmd in enumerate(["SHOW POOLS;", "show stats", "SHOW CLIENTS", "SET default_pool_size = 5",
                         "SET server_reset_query = 'DISCARD ALL'", "PAUSE app;", "RESUME", 'KILL "my db"',
                         "KILL_CLIENT 0x12", "SHUTDOWN WAIT_FOR_CLIENTS", "RELOAD;", "SELECT client_encoding",
                         "set \"a\"\"b\" to 'it''s'", "  WAIT_CLOSE\tapp ; "]):
    put("admin", f"cmd{i:02}", cmd.encode())

for i, q in enumerate(["SET search_path TO public, app", "set session timezone = 'UTC'; select 1",
                       "SET TIME ZONE 'Europe/Berlin'", "RESET ALL", "DISCARD ALL", "DEALLOCATE PREPARE ALL",
                       "SELECT set_config('search_path', 'x', false)", "/* c */ SET a.b = $$x;y$$ -- z",
                       "SELECT 1; RESET search_path;", "SET LOCAL x = 1", "set statement_timeout to default"]):
    put("session", f"q{i:02}", q.encode() + b"\0")
for i, o in enumerate(["-c search_path=public", "--statement-timeout=5s -c a=b\\ c", "-csearch_path=x\\\\y"]):
    put("session", f"opt{i}", b"\x01" + o.encode())
