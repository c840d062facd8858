//! The vanilla LLaMA baseline (also llama.cpp's `llama` files): token embedding, one stack with
//! a sink + sliding-window KV cache in the arena, LM head.
use super::photon::reborrow;
use super::session::{split, Session};
use super::stack::{forward, Seg};
use super::weights::Weights;

impl Session<'_> {
    /// Feeds known or sampled tokens; afterwards the next token's logits are ready.
    pub(crate) fn llama_feed(&mut self, tokens: &[u32]) {
        if tokens.is_empty() {
            return;
        }
        let w = match &self.model.w {
            Weights::Llama(w) => w,
            _ => unreachable!("vanilla call on a PHOTON model"),
        };
        let (env, mut p) = split(
            self.model,
            &self.kern,
            &mut self.arena,
            &self.plan,
            &mut self.caches,
            self.shared.as_ref(),
        );
        let d = env.d;
        let maxb = p.s.rows.min(p.kv.st.max_batch());
        let embd = w.embd.view(env.bytes);
        let mut last = 0;
        for chunk in tokens.chunks(maxb) {
            for (i, &t) in chunk.iter().enumerate() {
                embd.row_f32(t as usize, &mut p.x[i * d..(i + 1) * d])
                    .expect("embedding row");
            }
            let mut segs: [Seg; 1] = [Seg {
                n: chunk.len(),
                cache: Some(reborrow(&mut p.kv)),
                pos0: 0,
            }];
            forward(&env, &w.stack, p.x, &mut segs, &mut p.s);
            last = chunk.len() - 1;
        }
        self.pos += tokens.len();
        env.matmul(
            &w.output,
            &p.x[last * d..(last + 1) * d],
            1,
            p.logits,
            p.s.act,
        );
        self.n_pending = 1;
        self.pending[0] = 0;
    }
}
