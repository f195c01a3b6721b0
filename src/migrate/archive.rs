//! Tessera's own app archive (placeholder).
