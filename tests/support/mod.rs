//! Test support (stub).
