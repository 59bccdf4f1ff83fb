"""`python scripts/hung_store.py [--seconds 45]`: issue #21's targets for a hung store,
measured in full (tests/test_store_hung.py proves them with a 6 s outage).

A `booth serve`-like process (the web app in waitress, 8 threads, and its janitor) on a real
PostgreSQL 15 and SeaweedFS bucket (devtools/services.py), one photo uploaded by a station.
10 phones ask for the photo's page and image in turn, one more asks for `/` every 0.2 s
(devtools/hung.py). PostgreSQL, then the bucket, is stopped with SIGSTOP for --seconds; then
continued. While the bucket hangs, a second photo's visitor deletes it with the real form.

Reported per outage: the slowest `/`, the slowest photo request and their statuses, whether
every 503 carried Retry-After, and how long after SIGCONT the last failed request started;
for the delete: how long it took, what the visitor read, and when its objects left the
bucket after SIGCONT. Targets: `/` <= 1 s, photo pages 503 with Retry-After <= 4 s, all
working within 5 s of SIGCONT, the delete says "deleted", its objects gone within 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

import common  # noqa: F401  (this checkout first on sys.path)

from booth.config import Config
from booth.store import Shared, Store
from booth.store.outbox import Uploader
from booth.webapp import create_app
from booth.webapp.server import Janitor, WebServer
from devtools.hung import Crowd, hung, pg_processes, s3_processes
from devtools.services import S3_ENV, postgres_server, s3_server

JPEG = b"\xff\xd8" + bytes(range(256)) * 400 + b"\xff\xd9"


def _publish(station: Store) -> str:
    token = station.publish(JPEG, ttl_seconds=3600, thumb_jpeg=JPEG, raw_jpeg=JPEG).token
    Uploader(station, station.outbox).upload_all()
    return token


def _objects(s3, bucket: str) -> int:
    return len(s3.client.list_objects_v2(Bucket=bucket).get("Contents", []))


def _delete(app, token: str) -> dict:
    """The visitor's delete with the real form, timed (Flask's client: no thread of ours)."""
    client = app.test_client()
    form = client.get(f"/p/{token}/delete").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    start = time.monotonic()
    page = client.post(f"/p/{token}/delete", data={"csrf_token": csrf})
    return {"seconds": round(time.monotonic() - start, 2), "status": page.status_code,
            "reads_deleted": "Your photo is deleted" in page.get_data(as_text=True)}


def _outage(port: int, token: str, processes, seconds: float, during=None) -> dict:
    with Crowd(port, token) as crowd:
        time.sleep(2.0)
        with hung(processes(), at_most=seconds + 30):
            stopped = time.monotonic()
            extra = during() if during else None
            time.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
        continued = time.monotonic()
        waited = extra.pop("wait_for", None) if extra else None
        result = waited(continued) if waited else {}
        time.sleep(8.0)
    hung_photos = [r for r in crowd.photos if stopped <= r[0] < continued]
    failed_after = [r[0] - continued for r in crowd.photos
                    if r[0] >= continued and r[2] != 200]
    homes = [r[1] for r in crowd.homes if r[0] >= stopped]
    statuses: dict[int, int] = {}
    for r in hung_photos:
        statuses[r[2]] = statuses.get(r[2], 0) + 1
    return {"home_max_s": round(max(homes), 2), "homes": len(homes),
            "photo_max_s": round(max(r[1] for r in hung_photos), 2),
            "photo_statuses": statuses,
            "every_503_has_retry_after": all(r[3] for r in hung_photos if r[2] == 503),
            "last_failure_after_sigcont_s": round(max(failed_after), 2) if failed_after
            else None, **(extra or {}), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0)
    args = parser.parse_args()
    os.environ.update(S3_ENV)
    with postgres_server() as pg, s3_server() as s3:
        bucket = s3.new_bucket()
        shared = Shared(pg.new_database(), f"s3://{bucket}/booth", s3.endpoint_url)
        station = Store(s3.root / "station", shared=shared, outbox=True)
        server = Store(None, shared=shared)
        cfg = Config()
        cfg.server.photo_requests_per_minute = 1_000_000
        app = create_app(cfg, server)
        web = WebServer(app, "127.0.0.1", 0)
        janitor = Janitor(server)
        web.start()
        janitor.start()
        try:
            token, doomed = _publish(station), _publish(station)
            before = _objects(s3, bucket)

            def delete() -> dict:
                done = _delete(app, doomed)

                def gone(continued: float) -> dict:
                    while _objects(s3, bucket) > before - 3 and time.monotonic() - continued < 90:
                        time.sleep(0.2)
                    return {"objects_gone_after_sigcont_s": round(time.monotonic() - continued, 2)}
                return {"delete": done, "wait_for": gone}

            report = {"seconds": args.seconds,
                      "database": _outage(web.port, token, lambda: pg_processes(pg),
                                          args.seconds),
                      "bucket": _outage(web.port, token, lambda: s3_processes(s3),
                                        args.seconds, during=delete)}
        finally:
            janitor.stop()
            web.close()
            station.close()
            server.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
