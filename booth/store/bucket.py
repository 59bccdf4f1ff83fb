"""Photos in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, SeaweedFS), for the
shared store: any server can serve any station's photos, and no server keeps them on its
own disk. Credentials come from the standard places (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, or the AWS config files)."""

from __future__ import annotations

from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from booth.errors import BoothError, StoreUnavailable, first_line
from booth.store.photos import Photo

# A bucket that does not answer must not hold a web request or the uploader for long: a
# photo's page answers within about 4 s even while the bucket hangs, so one attempt (no
# retries: the uploader and the janitor try again on their own) waits at most 2 s to connect
# and 2 s for each read (a photo arrives in several reads, each of them quick).
_CLIENT = botocore.config.Config(connect_timeout=2, read_timeout=2,
                                 retries={"total_max_attempts": 1, "mode": "standard"})
_MISSING = {"NoSuchKey", "404", "NotFound"}


def parse_photos_url(url: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, "prefix/"); raises BoothError naming the setting."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise BoothError(f"config: store.photos_url = {url!r}; use s3://bucket or "
                         "s3://bucket/prefix (or leave it empty for the data dir)")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip(": ")
    return first_line(exc)


def _unreachable(exc: Exception) -> bool:
    """Whether head_bucket failed for want of the service (no network, the server down or
    busy: the booth starts without it) rather than for a setting that is wrong (no such
    bucket, a wrong key, no access: refused at start)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return isinstance(exc, (botocore.exceptions.ConnectionError,
                            botocore.exceptions.HTTPClientError))


class Bucket:
    """offline: why the bucket could not be reached at start ("" if it could); its calls
    raise StoreUnavailable until it answers."""

    def __init__(self, url: str, endpoint_url: str = "") -> None:
        self.url = url
        self.name, self.prefix = parse_photos_url(url)
        self.offline = ""
        where = f" at {endpoint_url}" if endpoint_url else ""
        try:
            self.client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url or None, config=_CLIENT)
            self.client.head_bucket(Bucket=self.name)
        except botocore.exceptions.NoCredentialsError:
            raise BoothError(f"bucket {url}: no credentials; set AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY (or an AWS config file)") from None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                ValueError) as exc:
            if _unreachable(exc):
                self.offline = f"bucket {url}{where} cannot be reached ({_reason(exc)})"
                return
            raise BoothError(f"bucket {url}{where} cannot be used ({_reason(exc)}); check "
                             "[store] photos_url, s3_endpoint_url and the credentials") from None

    def _call(self, method: str, **kwargs):
        try:
            return getattr(self.client, method)(Bucket=self.name, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise StoreUnavailable(f"bucket {self.url}: {_reason(exc)}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreUnavailable(f"bucket {self.url}: {_reason(exc)}") from None

    def check(self) -> None:
        """Raise StoreUnavailable unless the bucket answers now (and is there)."""
        if self._call("head_bucket") is None:
            raise StoreUnavailable(f"bucket {self.url}: it does not exist")

    def put(self, name: str, data: bytes) -> None:
        self._call("put_object", Key=self.prefix + name, Body=data,
                   ContentType="video/mp4" if name.endswith(".mp4") else "image/jpeg")

    def open(self, name: str) -> Photo | None:
        reply = self._call("get_object", Key=self.prefix + name)
        return None if reply is None else Photo(reply["Body"], reply["ContentLength"])

    def delete(self, name: str) -> bool:
        return self._call("delete_object", Key=self.prefix + name) is not None

    def listing(self) -> dict[str, float]:
        names: dict[str, float] = {}
        token: dict = {}
        while True:
            page = self._call("list_objects_v2", Prefix=self.prefix, **token) or {}
            for item in page.get("Contents", []):
                names[item["Key"][len(self.prefix):]] = item["LastModified"].timestamp()
            if not page.get("IsTruncated"):
                return names
            token = {"ContinuationToken": page["NextContinuationToken"]}
