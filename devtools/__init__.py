"""What the tests and the contributor scripts share: real PostgreSQL and S3 servers on loopback
(services), and nothing the booth itself needs (the package never imports it)."""
