"""pytest-benchmark throughput runs (``make bench``); not part of the test suite."""
