//! Token sampler (in progress).
