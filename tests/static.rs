//! static tests (stub).
