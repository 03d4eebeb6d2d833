//! Shared HTTP/1.1 layer for Jawas engines (stub).
