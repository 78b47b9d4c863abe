#!/usr/bin/env python3
"""Records kubectl's protobuf request bodies, for the fixtures under testdata/.

A loopback-only HTTPS proxy in front of a running `rkube server` (it reuses the server's
serving certificate): every request is forwarded to the server with the admin client
certificate; the body of each request sent as `application/vnd.kubernetes.protobuf`
(POST, PUT, and DELETE with DeleteOptions) is written to <out>/<NAME>.pb, where NAME is the
content of the file <out>/NEXT, written by the driving script before each kubectl command.

Usage: capture.py <data-dir> <listen-port> <upstream-port> <out-dir>
Then point kubectl at a copy of <data-dir>/kubeconfig.yaml whose server port is
<listen-port>; the fixtures' .json files are the same commands' `--dry-run=client -o json`.
"""

import http.client
import http.server
import os
import ssl
import sys

DATA, PORT, UPSTREAM, OUT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
TLS = os.path.join(DATA, "tls")


def upstream():
    ctx = ssl.create_default_context(cafile=os.path.join(TLS, "ca.crt"))
    ctx.load_cert_chain(os.path.join(TLS, "admin.crt"), os.path.join(TLS, "admin.key"))
    return http.client.HTTPSConnection("127.0.0.1", UPSTREAM, context=ctx, timeout=30)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        ctype = self.headers.get("Content-Type", "")
        if body and "protobuf" in ctype:
            with open(os.path.join(OUT, "NEXT")) as f:
                name = f.read().strip()
            with open(os.path.join(OUT, name + ".pb"), "wb") as f:
                f.write(body)
            sys.stderr.write(f"captured {self.command} {self.path} -> {name}.pb\n")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        conn = upstream()
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(TLS, "serving.crt"), os.path.join(TLS, "serving.key"))
server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Proxy)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
