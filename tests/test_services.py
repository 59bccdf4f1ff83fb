"""The real servers that the store's tests use (devtools/services.py, the fixtures in conftest):
data goes in and comes back, survives a stop and start, and stays in its own database or
bucket."""

from __future__ import annotations

import os

import boto3
import botocore.exceptions
import psycopg
import pytest

from tests.conftest import S3Bucket


def _row(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, name FROM visit ORDER BY id").fetchall()


def _make_table(url: str, name: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE visit (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO visit (name) VALUES (%s)", (name,))


def test_postgres_row_comes_back(pg_url):
    _make_table(pg_url, "Ingenuity")
    assert _row(pg_url) == [(1, "Ingenuity")]
    assert pg_url.startswith("postgresql://postgres@127.0.0.1:")


def test_postgres_keeps_data_across_stop_and_start(pg_server, pg_url):
    _make_table(pg_url, "Perseverance")
    pg_server.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_url, connect_timeout=2)
    finally:
        pg_server.start()
    assert _row(pg_url) == [(1, "Perseverance")]


def test_postgres_databases_are_isolated(pg_server):
    first, second = pg_server.new_database(), pg_server.new_database()
    assert first != second
    _make_table(first, "Jezero")
    with psycopg.connect(second) as conn, pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM visit")


def test_bucket_object_comes_back(s3_bucket: S3Bucket, s3_store_url):
    photo = os.urandom(300_000)
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="photos/a.jpg", Body=photo)
    # Read back as the product would: credentials from the environment, signed requests.
    client = boto3.session.Session().client("s3", endpoint_url=s3_bucket.endpoint_url)
    assert client.get_object(Bucket=s3_bucket.name, Key="photos/a.jpg")["Body"].read() == photo
    assert s3_store_url == f"s3://{s3_bucket.name}"


@pytest.mark.slow
def test_bucket_keeps_data_across_stop_and_start(s3_server, s3_bucket: S3Bucket):
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="a.jpg", Body=b"sol 46")
    s3_server.stop()
    try:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            s3_bucket.client.get_object(Bucket=s3_bucket.name, Key="a.jpg")
    finally:
        s3_server.start()
    reply = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key="a.jpg")
    assert reply["Body"].read() == b"sol 46"


def test_buckets_are_isolated(s3_server):
    first, second = s3_server.new_bucket(), s3_server.new_bucket()
    assert first != second
    s3_server.client.put_object(Bucket=first, Key="a.jpg", Body=b"first")
    assert s3_server.client.list_objects_v2(Bucket=second).get("Contents", []) == []
    with pytest.raises(botocore.exceptions.ClientError, match="NoSuchKey"):
        s3_server.client.get_object(Bucket=second, Key="a.jpg")
