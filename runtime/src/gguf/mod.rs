//! GGUF v3 container (in progress).
