//! core tests (stub).
