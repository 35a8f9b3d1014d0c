//! Transport detection (placeholder).
