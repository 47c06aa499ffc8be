"""The live positive on the web: GET /live.mjpg and GET /live.json (station.capture.live).

/live.mjpg   multipart/x-mixed-replace JPEG stream of the live positive (any browser's
             <img>, VLC, ffplay); 503 while live view is off (start it with the `live`
             command: POST /api/command/live {"on": true}, or `liveview.live: true`)
/live.json   the live view's state: fps of the feed and of the positives, the tone map
             (default or learned from how many pairs), the aids (focus score and best on
             this roll, picture edges, tilt), the magnifier point
"""
from __future__ import annotations

import time

BOUNDARY = b"liveframe"
ROUTES = ("/live.mjpg", "/live.json")


def handle(h, path: str) -> None:
    """Serve a live route on the server's request handler `h`."""
    app = h.svc.source.app
    live = app.service("live") if hasattr(app, "service") else None
    if live is None:
        h._error(404, "no live view: the camera service offers none")
        return
    pos = live.positive
    if path == "/live.json":
        h._send(200, pos.snapshot_json(), "application/json", {"Cache-Control": "no-store"})
        return
    if not pos.running:
        h._error(503, "live view is off: POST /api/command/live {\"on\": true}")
        return
    h.stream_capped("multipart/x-mixed-replace; boundary=" + BOUNDARY.decode(), lambda: _mjpeg(h, pos))


def _mjpeg(h, pos) -> None:
    seq = 0
    idle_since = time.monotonic()
    while not h.svc.broker.closed:
        out = pos.wait_newer(seq, timeout=1.0)
        if out is None:
            if not pos.running and time.monotonic() - idle_since > 2.0:
                return  # live view was switched off
            continue
        idle_since = time.monotonic()
        seq, jpeg = out[0], out[1]
        h.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                      + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        h.wfile.flush()
