//! Teacher-forced evaluation (perplexity, KL divergence, top-1 agreement).
