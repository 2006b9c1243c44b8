//! Keyed rate limiting on `governor` with bounded memory.
//!
//! It knows nothing of HTTP: callers give it a key (usually a client IP) and get an answer.
