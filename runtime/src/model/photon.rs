//! PHOTON inference: bottom-up encoding of known tokens (prefill, HierGen, new turns), the local
//! decoders G2 and G1, and RecGen's batched decoding. The state machine is described in
//! docs/engine.md; numerics follow ../shared/docs/photon-model.md exactly.
use super::config::{Config, MAX_C};
use super::session::{split, Mode, Parts, PhotonSt, Session};
use super::stack::{forward, rmsnorm, Env, Seg};
use super::weights::{PhotonW, Weights};

/// A PHOTON session's fields, borrowed at once.
pub(crate) struct Ph<'a> {
    pub env: Env<'a>,
    pub p: Parts<'a>,
    pub w: &'a PhotonW,
    pub c: &'a Config,
    pub st: &'a mut PhotonSt,
    pub pos: &'a mut usize,
    pub n_pending: &'a mut usize,
    pub pending: &'a mut [usize; MAX_C],
}

macro_rules! ph {
    ($s:expr) => {{
        let w = match &$s.model.w {
            Weights::Photon(w) => w,
            _ => unreachable!("PHOTON call on a vanilla model"),
        };
        let (env, p) = split(
            $s.model,
            &$s.kern,
            &mut $s.arena,
            &$s.plan,
            &mut $s.caches,
            $s.shared.as_ref(),
        );
        Ph {
            env,
            p,
            w,
            c: $s.model.config(),
            st: &mut $s.ph,
            pos: &mut $s.pos,
            n_pending: &mut $s.n_pending,
            pending: &mut $s.pending,
        }
    }};
}

impl Session<'_> {
    pub(crate) fn photon_feed(&mut self, tokens: &[u32]) {
        let mode = self.mode;
        let mut ph = ph!(self);
        if ph.st.dirty {
            ph.rollback();
        }
        if !tokens.is_empty() {
            *ph.n_pending = 0;
        }
        ph.encode(tokens);
        ph.ready(mode);
    }

    pub(crate) fn photon_accept(&mut self, tokens: &[u32]) {
        let mode = self.mode;
        let mut ph = ph!(self);
        if ph.st.rec {
            ph.rec_accept(tokens);
        } else {
            *ph.n_pending = 0;
            ph.encode(tokens);
            ph.ready(mode);
        }
    }

    pub(crate) fn photon_truncate(&mut self, len: usize) -> crate::Result<()> {
        let mut ph = ph!(self);
        if !ph.st.dirty {
            if len == *ph.pos {
                return Ok(());
            }
            return Err(crate::err!(
                Unsupported,
                "truncate to {len} of {}: only tokens produced by RecGen since the last feed can be dropped",
                *ph.pos
            ));
        }
        let (first, last) = ph.history_range();
        if ph.st.reply_overflow || len < first || len > last {
            return Err(crate::err!(
                Input,
                "truncate to {len}: the history can end between {first} and {last} (units in order)"
            ));
        }
        ph.rollback_to(Some(len));
        Ok(())
    }

    pub(crate) fn photon_mode_changed(&mut self) {
        let mode = self.mode;
        let mut ph = ph!(self);
        if ph.st.dirty {
            ph.rollback();
        }
        *ph.n_pending = 0;
        ph.st.rec = false;
        ph.ready(mode);
    }
}

impl Ph<'_> {
    /// Converter `U(cond)` into rows `at..at+R` of `x`.
    fn converter(&mut self, level2: bool, cond_from: CondSrc, at: usize) {
        let d = self.c.d;
        let r = self.c.r;
        let (m, b) = if level2 {
            (self.w.dec2_conv, &self.w.dec2_conv_b)
        } else {
            (self.w.dec1_conv, &self.w.dec1_conv_b)
        };
        let cond: &[f32] = match cond_from {
            CondSrc::Cond2 => self.p.cond2,
            CondSrc::Xhat(j) => &self.p.xhat[j * d..(j + 1) * d],
        };
        let out = &mut self.p.x[at * d..(at + r) * d];
        self.env.matmul(&m, cond, 1, out, self.p.s.act);
        for (o, v) in out.iter_mut().zip(b.iter()) {
            *o += v;
        }
    }

    /// E_dec row of `t` into row `at` of `x`.
    fn embed_dec(&mut self, t: u32, at: usize) {
        let d = self.c.d;
        self.w
            .dec1_embd
            .view(self.env.bytes)
            .row_f32(t as usize, &mut self.p.x[at * d..(at + 1) * d])
            .expect("embedding row");
    }

    /// A1 of the unit whose tokens are `utok[j·C1..]` into row `at` of `x`.
    fn embed_unit(&mut self, j: usize, at: usize) {
        let (d, c1, d0) = (self.c.d, self.c.c1, self.c.d0());
        let e = self.w.enc_embd.view(self.env.bytes);
        for q in 0..c1 {
            let t = self.p.utok[j * c1 + q] as usize;
            let o = at * d + q * d0;
            e.row_f32(t, &mut self.p.x[o..o + d0])
                .expect("embedding row");
        }
    }

    /// Level-2 chunker over `mc_lat` into row `at` of `x`.
    fn chunker(&mut self, at: usize) {
        let d = self.c.d;
        rmsnorm(self.p.wide, self.p.mc_lat, &self.w.chunk_norm, self.env.eps);
        let out = &mut self.p.x[at * d..(at + 1) * d];
        self.env
            .matmul(&self.w.chunk_w, self.p.wide, 1, out, self.p.s.act);
        for (o, v) in out.iter_mut().zip(&self.w.chunk_b) {
            *o += v;
        }
    }

    /// LM head over `n` rows of `src` into logits rows `0..n`.
    fn lm_head_x(&mut self, first_row: usize, n: usize) {
        let d = self.c.d;
        let x = &self.p.x[first_row * d..(first_row + n) * d];
        self.env
            .matmul(&self.w.output, x, n, self.p.logits, self.p.s.act);
    }

    /// Bottom-up encoding of known tokens: complete units go through E_enc and F1 (batched),
    /// complete meta-contexts through the chunker and F2 (batched).
    pub(crate) fn encode(&mut self, toks: &[u32]) {
        let (c1, c2, d) = (self.c.c1, self.c.c2, self.c.d);
        let f1_room = match self.p.f1.st.policy {
            crate::cache::CachePolicy::Ring => self.p.f1.st.limit.saturating_sub(self.p.f1.st.cap),
            _ => self.p.f1.st.max_batch(),
        };
        let maxb = self
            .p
            .s
            .rows
            .min(f1_room)
            .min(self.p.f2.st.max_batch() * c2)
            .max(1);
        let mut i = 0;
        while i < toks.len() {
            let mut nb = 0;
            while i < toks.len() && nb < maxb {
                let j = (self.st.units + nb) % c2;
                self.p.utok[j * c1 + self.st.ulen[j]] = toks[i];
                self.st.ulen[j] += 1;
                i += 1;
                *self.pos += 1;
                if self.st.ulen[j] == c1 {
                    self.embed_unit(j, nb);
                    self.st.ulen[j] = 0;
                    self.st.ulen[(j + 1) % c2] = 0;
                    nb += 1;
                }
            }
            if nb == 0 {
                break;
            }
            let mut segs: [Seg; 1] = [Seg {
                n: nb,
                cache: Some(reborrow(&mut self.p.f1)),
                pos0: 0,
            }];
            forward(&self.env, &self.w.enc1, self.p.x, &mut segs, &mut self.p.s);

            let mut na2 = 0;
            for r in 0..nb {
                let j = self.st.units % c2;
                self.p.mc_lat[j * d..(j + 1) * d].copy_from_slice(&self.p.x[r * d..(r + 1) * d]);
                self.st.units += 1;
                if j == c2 - 1 {
                    self.chunker(na2);
                    na2 += 1;
                }
            }
            let j = self.st.units % c2;
            self.st.g1_rows[j] = 0;
            if na2 > 0 {
                let mut segs: [Seg; 1] = [Seg {
                    n: na2,
                    cache: Some(reborrow(&mut self.p.f2)),
                    pos0: 0,
                }];
                forward(&self.env, &self.w.enc2, self.p.x, &mut segs, &mut self.p.s);

                self.p
                    .cond2
                    .copy_from_slice(&self.p.x[(na2 - 1) * d..na2 * d]);
                self.st.g2_rows = 0;
                self.st.xhat_n = 0;
            }
        }
    }

    /// Runs G2 until x̂1 of unit `j` of the current meta-context is known (inputs `mc_lat`).
    fn g2_upto(&mut self, j: usize) {
        let (r, d) = (self.c.r, self.c.d);
        if self.st.g2_rows > 0 && self.st.xhat_n == j + 1 {
            return;
        }
        let mut n = 0;
        let from = if self.st.g2_rows == 0 || self.st.g2_rows > r + j {
            self.p.g2.st.clear();
            self.converter(true, CondSrc::Cond2, 0);
            n = r;
            0
        } else {
            self.st.g2_rows - r
        };
        for jj in from..j {
            self.p.x[n * d..(n + 1) * d].copy_from_slice(&self.p.mc_lat[jj * d..(jj + 1) * d]);
            n += 1;
        }
        let mut segs: [Seg; 1] = [Seg {
            n,
            cache: Some(reborrow(&mut self.p.g2)),
            pos0: 0,
        }];
        forward(&self.env, &self.w.dec2, self.p.x, &mut segs, &mut self.p.s);

        self.p.xhat[j * d..(j + 1) * d].copy_from_slice(&self.p.x[(n - 1) * d..n * d]);
        self.st.g2_rows = r + j;
        self.st.xhat_n = j + 1;
    }

    /// Makes the pending rows for `mode` (no-op when they are ready).
    pub(crate) fn ready(&mut self, mode: Mode) {
        if *self.n_pending > 0 {
            return;
        }
        match mode {
            Mode::HierGen => self.ready_hier(),
            Mode::RecGen => self.rec_start(),
        }
    }

    fn ready_hier(&mut self) {
        let (r, c1) = (self.c.r, self.c.c1);
        let j = self.st.units % self.c.c2;
        self.g2_upto(j);
        let k = self.st.ulen[j];
        let mut done = self.st.g1_rows[j];
        if done == 0 || done >= r + k {
            done = 0;
        }
        let mut n = 0;
        if done == 0 {
            self.p.g1[j].as_mut().expect("g1 cache").st.clear();
            self.converter(false, CondSrc::Xhat(j), 0);
            n = r;
        }
        for q in done.max(r) - r..k {
            let t = self.p.utok[j * c1 + q];
            self.embed_dec(t, n);
            n += 1;
        }
        let mut segs: [Seg; 1] = [Seg {
            n,
            cache: self.p.g1[j].as_mut().map(reborrow),
            pos0: 0,
        }];
        forward(&self.env, &self.w.dec1, self.p.x, &mut segs, &mut self.p.s);

        self.st.g1_rows[j] = r + k;
        self.lm_head_x(n - 1, 1);
        self.pending[0] = j;
        *self.n_pending = 1;
    }

    /// RecGen: G2 on its own outputs for the rest of the meta-context, then the unfinished
    /// units' first rows decoded as one batch.
    #[allow(clippy::needless_range_loop)]
    fn rec_start(&mut self) {
        let (r, c1, c2, d) = (self.c.r, self.c.c1, self.c.c2, self.c.d);
        if !self.st.dirty {
            self.st.snap_units = self.st.units;
            self.p.snap_cond.copy_from_slice(self.p.cond2);
            self.p.snap_mc.copy_from_slice(self.p.mc_lat);
            self.st.f2_added = 0;
            self.st.reply_len = 0;
            self.st.reply_overflow = false;
            self.st.dirty = true;
        }
        let j0 = self.st.units % c2;
        self.g2_upto(j0);
        for jj in j0 + 1..c2 {
            let prev = (jj - 1) * d..jj * d;
            self.p.mc_lat[prev.clone()].copy_from_slice(&self.p.xhat[prev.clone()]);
            self.p.x[..d].copy_from_slice(&self.p.xhat[prev]);
            let mut segs: [Seg; 1] = [Seg {
                n: 1,
                cache: Some(reborrow(&mut self.p.g2)),
                pos0: 0,
            }];
            forward(&self.env, &self.w.dec2, self.p.x, &mut segs, &mut self.p.s);
            self.p.xhat[jj * d..(jj + 1) * d].copy_from_slice(&self.p.x[..d]);
            self.st.g2_rows += 1;
            self.st.xhat_n = jj + 1;
        }
        let last = (c2 - 1) * d..c2 * d;
        self.p.mc_lat[last.clone()].copy_from_slice(&self.p.xhat[last]);
        // G1 for every unfinished unit, one batch.
        let mut n = 0;
        let mut seg_n = [0usize; MAX_C];
        for jj in j0..c2 {
            if jj > j0 {
                self.st.ulen[jj] = 0;
            }
            self.p.g1[jj].as_mut().expect("g1 cache").st.clear();
            let start = n;
            self.converter(false, CondSrc::Xhat(jj), n);
            n += r;
            for q in 0..self.st.ulen[jj] {
                let t = self.p.utok[jj * c1 + q];
                self.embed_dec(t, n);
                n += 1;
            }
            seg_n[jj] = n - start;
            self.st.g1_rows[jj] = n - start;
        }
        self.g1_batch(j0, &seg_n, n);
        self.st.rec = true;
        self.st.rec_j0 = j0;
    }

    /// Runs G1 over segments `seg_n[jj]` (units `j0..C2`, zero-row units skipped), then the LM
    /// head over each segment's last row; pending rows = units with a non-empty segment.
    fn g1_batch(&mut self, j0: usize, seg_n: &[usize; MAX_C], n: usize) {
        let (c2, d) = (self.c.c2, self.c.d);
        let mut segs: [Seg; MAX_C] = Default::default();
        let mut ns = 0;
        let mut rows = 0;
        let mut np = 0;
        {
            let mut g1_iter = self.p.g1.iter_mut().enumerate();
            for (jj, cache) in g1_iter.by_ref() {
                if jj >= c2 {
                    break;
                }
                if jj < j0 || seg_n[jj] == 0 {
                    continue;
                }
                segs[ns] = Seg {
                    n: seg_n[jj],
                    cache: cache.as_mut().map(reborrow),
                    pos0: 0,
                };
                ns += 1;
                rows += seg_n[jj];
                // Gather position of this unit's last row.
                self.pending[np] = jj;
                np += 1;
            }
        }
        debug_assert_eq!(rows, n);
        forward(
            &self.env,
            &self.w.dec1,
            self.p.x,
            &mut segs[..ns],
            &mut self.p.s,
        );

        // Last row of each segment → wide (contiguous), then one LM-head pass.
        let mut end = 0;
        for (i, &jj) in self.pending[..np].iter().enumerate() {
            end += seg_n[jj];
            self.p.wide[i * d..(i + 1) * d].copy_from_slice(&self.p.x[(end - 1) * d..end * d]);
        }
        let wide = &self.p.wide[..np * d];
        self.env
            .matmul(&self.w.output, wide, np, self.p.logits, self.p.s.act);
        *self.n_pending = np;
    }

    /// RecGen: one token per pending row.
    fn rec_accept(&mut self, toks: &[u32]) {
        let (c1, c2, d) = (self.c.c1, self.c.c2, self.c.d);
        let j0 = self.st.rec_j0;
        let mut seg_n = [0usize; MAX_C];
        let mut n = 0;
        for (row, &t) in toks.iter().enumerate() {
            let jj = self.pending[row];
            self.p.utok[jj * c1 + self.st.ulen[jj]] = t;
            self.st.ulen[jj] += 1;
            *self.pos += 1;
            if self.st.ulen[jj] < c1 {
                self.embed_dec(t, n);
                n += 1;
                seg_n[jj] = 1;
                self.st.g1_rows[jj] += 1;
            }
        }
        if n > 0 {
            self.g1_batch(j0, &seg_n, n);
            return;
        }
        // The meta-context is complete: record its tokens, advance the top stream from x̂1.
        for jj in j0..c2 {
            self.record(jj, c1);
        }
        self.chunker(0);
        let mut segs: [Seg; 1] = [Seg {
            n: 1,
            cache: Some(reborrow(&mut self.p.f2)),
            pos0: 0,
        }];
        forward(&self.env, &self.w.enc2, self.p.x, &mut segs, &mut self.p.s);

        self.p.cond2.copy_from_slice(&self.p.x[..d]);
        self.st.f2_added += 1;
        self.st.units += c2 - j0;
        self.st.ulen = [0; MAX_C];
        self.st.g2_rows = 0;
        self.st.xhat_n = 0;
        self.st.g1_rows = [0; MAX_C];
        self.st.rec = false;
        *self.n_pending = 0;
        self.rec_start();
    }

    /// Appends the first `n` tokens of unit `jj` to the reply buffer (for re-encoding).
    fn record(&mut self, jj: usize, n: usize) {
        let c1 = self.c.c1;
        if self.st.reply_len + n > self.p.reply.len() {
            self.st.reply_overflow = true;
            return;
        }
        let o = self.st.reply_len;
        self.p.reply[o..o + n].copy_from_slice(&self.p.utok[jj * c1..jj * c1 + n]);
        self.st.reply_len += n;
    }

    /// Undoes what RecGen did to the coarse stream and re-encodes its tokens bottom-up, so the
    /// state equals a fresh prefill of the whole history.
    pub(crate) fn rollback(&mut self) {
        self.rollback_to(None)
    }

    /// Tokens of history in unit order that RecGen has produced and a rollback would keep:
    /// `(first, last)` positions that [`Session::truncate`] accepts.
    pub(crate) fn history_range(&self) -> (usize, usize) {
        let (c1, c2) = (self.c.c1, self.c.c2);
        let first = self.st.snap_units * c1;
        let mut last = first + self.st.reply_len;
        if self.st.rec {
            for jj in self.st.rec_j0..c2 {
                last += self.st.ulen[jj];
                if self.st.ulen[jj] < c1 {
                    break;
                }
            }
        }
        (first, last)
    }

    /// [`Self::rollback`], keeping only the first `keep` tokens of the history.
    pub(crate) fn rollback_to(&mut self, keep: Option<usize>) {
        let (c1, c2) = (self.c.c1, self.c.c2);
        if self.st.rec {
            for jj in self.st.rec_j0..c2 {
                let n = self.st.ulen[jj];
                self.record(jj, n);
                if n < c1 {
                    break;
                }
            }
        }
        self.st.rec = false;
        self.st.dirty = false;
        self.st.g2_rows = 0;
        self.st.xhat_n = 0;
        self.st.g1_rows = [0; MAX_C];
        self.st.ulen = [0; MAX_C];
        *self.n_pending = 0;
        if self.st.reply_overflow {
            // Too long to re-encode: keep the reconstruction-made coarse entries, drop the
            // meta-context in flight, continue from its start.
            *self.pos = self.st.units * c1;
            return;
        }
        self.p.f2.truncate_newest(self.st.f2_added);
        self.st.units = self.st.snap_units;
        self.p.cond2.copy_from_slice(self.p.snap_cond);
        self.p.mc_lat.copy_from_slice(self.p.snap_mc);
        *self.pos = self.st.units * c1;
        if let Some(k) = keep {
            self.st.reply_len = self.st.reply_len.min(k.saturating_sub(*self.pos));
        }
        let total = self.st.reply_len;
        let mut buf = [0u32; 64];
        let mut o = 0;
        while o < total {
            let m = (total - o).min(buf.len());
            buf[..m].copy_from_slice(&self.p.reply[o..o + m]);
            self.encode(&buf[..m]);
            o += m;
        }
        self.st.reply_len = 0;
    }
}

#[derive(Clone, Copy)]
enum CondSrc {
    Cond2,
    Xhat(usize),
}

/// A shorter-lived view of a cache.
pub(crate) fn reborrow<'b>(v: &'b mut crate::cache::KvView<'_>) -> crate::cache::KvView<'b> {
    crate::cache::KvView {
        st: &mut *v.st,
        k: v.k.reborrow(),
        v: v.v.reborrow(),
        pk: v.pk,
        pv: v.pv,
    }
}
