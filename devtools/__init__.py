"""What the tests and the contributor scripts share, and nothing the booth itself needs (the
package never imports it): real PostgreSQL and S3 servers on loopback (services), the load
tools' HTTP client and phones (loadclient), the CPU meter (cpu), and the cut-out's quality
measures (quality)."""
