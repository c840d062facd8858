//! One sequence's state: every cache and scratch buffer carved from ONE arena allocated when the
//! session is created. See docs/engine.md for the state machine and what stays bounded.
use super::config::{ModelKind, MAX_C};
use super::stack::{Env, Scratch};
use super::Model;
use crate::cache::{
    as_blocks, as_kv, as_kv_ref, as_tokens, carve, Arena, CachePolicy, CacheType, KvOwned, KvRef,
    KvState, KvView, Planner,
};
use crate::kernels::{act_blocks, Kernels};
use crate::{err, Result};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Generation mode (PHOTON; the vanilla model ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Hierarchical generation: sampled units are encoded bottom-up (the default).
    #[default]
    HierGen,
    /// Recursive generation: the level-2 decoder runs on its own outputs, the unfinished units of
    /// a meta-context are decoded as one batch, the coarse stream advances from reconstructions.
    RecGen,
}

/// Session options.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Bytes for the arena (all caches and scratch). Above [`Model::max_useful_memory`] only that
    /// much is allocated; below [`Model::min_memory`] [`Session::new`] fails.
    pub memory_budget: usize,
    /// Worker threads for the kernels (1 = the calling thread only).
    pub threads: usize,
    pub mode: Mode,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            memory_budget: 64 << 20,
            threads: 1,
            mode: Mode::HierGen,
        }
    }
}

/// Exact memory of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes of tensor data mapped from the model file (shared by all sessions).
    pub weights_mapped: usize,
    /// Bytes of the session's one arena allocation.
    pub arena_bytes: usize,
    /// Arena bytes carved into buffers (≤ `arena_bytes`; the rest is alignment padding).
    pub arena_used: usize,
    /// Bytes of all key/value caches in the arena.
    pub cache_bytes: usize,
    /// Positions per layer the coarse cache (F2; vanilla: the KV cache) can hold.
    pub coarse_capacity: usize,
    /// Positions per layer it holds now.
    pub coarse_len: usize,
    /// Coarse positions evicted so far (attention sink + sliding window).
    pub coarse_evicted: u64,
    /// Bytes of a shared coarse prefix this session reads ([`SharedPrefix`]; held once for all
    /// the sessions sharing it, not part of `arena_bytes`).
    pub shared_prefix_bytes: usize,
}

/// An arena region (offset and length in f32 elements).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Region {
    pub off: usize,
    pub len: usize,
}

fn reg(p: &mut Planner, len: usize) -> Region {
    Region {
        off: p.take(len),
        len,
    }
}

/// Positions kept at the start of a coarse cache when it slides.
pub(crate) const SINK: usize = 4;

/// Arena layout of a session, computed from the model and the budget.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub rows: usize,
    pub xb: Region,
    pub q: Region,
    pub k: Region,
    pub v: Region,
    pub att: Region,
    pub hb: Region,
    pub hb2: Region,
    pub cs: Region,
    pub scores: Region,
    pub act: Region,
    pub x: Region,
    pub logits: Region,
    pub wide: Region,
    pub cond2: Region,
    pub mc_lat: Region,
    pub xhat: Region,
    pub snap_cond: Region,
    pub snap_mc: Region,
    pub utok: Region,
    pub reply: Region,
    /// Caches: F1, F2, G2, G1 × C2 (PHOTON) or the KV cache (vanilla).
    pub f1: KvState,
    pub f2: KvState,
    pub g2: KvState,
    pub g1: [Option<KvState>; MAX_C],
    pub kv: KvState,
    pub min_bytes: usize,
    /// Bytes one more coarse position costs.
    pub per_pos_bytes: usize,
    pub arena_bytes: usize,
    pub cache_bytes: usize,
}

impl Plan {
    /// Lays out the arena for `budget` bytes (the coarse cache takes what the fixed part leaves,
    /// up to the trained range). `min_bytes` is the smallest budget that runs.
    pub(crate) fn new(model: &Model, budget: usize) -> Plan {
        Plan::with_prefix(model, budget, 0, CacheType::F32)
    }

    /// [`Plan::new`] for a session whose coarse cache follows a shared prefix of `prefix`
    /// positions (its own positions then stop at the trained range minus the prefix).
    pub(crate) fn with_prefix(model: &Model, budget: usize, prefix: usize, ty: CacheType) -> Plan {
        let c = model.config();
        // f32 arena slots taken by `n` cache values.
        let slots = |n: usize| match ty {
            CacheType::F32 => n,
            CacheType::F16 => n.div_ceil(2),
        };
        let (d, ffn, v, hd) = (c.d, c.ffn, c.vocab, c.head_dim);
        let photon = c.kind == ModelKind::Photon;
        let mut p = Planner::default();
        let mut pl = Plan::default();
        let (rows, out_rows, max_cols) = if photon {
            let rows = 32.max(c.c2 * (c.r + c.c1 - 1)).max(c.r + c.c2 - 1);
            (rows, c.c2, d.max(ffn).max(c.c2 * d))
        } else {
            (32, 1, d.max(ffn))
        };
        pl.rows = rows;
        // Per coarse position: keys + values of every layer (+ one score, + tokens for replay).
        let (fixed_caches, per_pos, limit, min_pos) = if photon {
            let b = c.meta_tokens();
            let mut per = 2 * slots(c.layers[1] * d) + 1 + b;
            let mut fixed = 2 * slots(c.layers[2] * d * (c.r + c.c2 - 1))
                + c.c2 * 2 * slots(c.layers[3] * d * (c.r + c.c1 - 1));
            if c.w1 == 0 {
                per += c.c2 * (2 * slots(c.layers[0] * d) + 1);
            } else {
                fixed += 2 * slots(c.layers[0] * d * c.w1);
            }
            (fixed, per, c.context / b, SINK + 4)
        } else {
            (0, 2 * slots(c.layers[0] * d) + 1, c.context, SINK + rows)
        };
        // Fixed part.
        let plan_fixed = |p: &mut Planner, pl: &mut Plan, scores_len: usize| {
            pl.xb = reg(p, rows * d);
            pl.q = reg(p, rows * d);
            pl.k = reg(p, rows * d);
            pl.v = reg(p, rows * d);
            pl.att = reg(p, rows * d);
            pl.hb = reg(p, rows * ffn);
            pl.hb2 = reg(p, rows * ffn);
            pl.cs = reg(p, rows * hd);
            pl.scores = reg(p, scores_len);
            pl.act = reg(p, act_blocks(max_cols, rows) * 10);
            pl.x = reg(p, rows * d);
            pl.logits = reg(p, out_rows * v);
            if photon {
                pl.wide = reg(p, c.c2 * d);
                pl.cond2 = reg(p, d);
                pl.mc_lat = reg(p, c.c2 * d);
                pl.xhat = reg(p, c.c2 * d);
                pl.snap_cond = reg(p, d);
                pl.snap_mc = reg(p, c.c2 * d);
                pl.utok = reg(p, c.c2 * c.c1);
            }
        };
        let mut probe = Planner::default();
        plan_fixed(
            &mut probe,
            &mut pl,
            rows + if photon { c.w1.max(c.r + c.c1) } else { 0 },
        );
        let fixed = probe.total + fixed_caches + 64 * 16;
        let budget_elems = budget / 4;
        let pos = budget_elems.saturating_sub(fixed) / per_pos;
        let cap = pos.clamp(min_pos, limit.saturating_sub(prefix).max(min_pos));
        pl.min_bytes = (fixed + per_pos * min_pos + 64 * 16) * 4;
        pl.per_pos_bytes = per_pos * 4;
        // The real layout.
        // Attention scores of one row: every coarse position (a shared prefix's included).
        let span = if photon {
            (cap + prefix)
                .max(c.r + c.c1)
                .max(if c.w1 == 0 { cap * c.c2 } else { c.w1 })
                + rows
        } else {
            cap + prefix + rows
        };
        plan_fixed(&mut p, &mut pl, span);
        let evict = (cap / 8).max(1);
        let kv = |p: &mut Planner, st: &mut KvState| {
            st.ty = ty;
            st.off_k = p.take(st.elems());
            st.off_v = p.take(st.elems());
        };
        if photon {
            let b = c.meta_tokens();
            pl.reply = reg(&mut p, cap * b);
            pl.f1 = if c.w1 > 0 {
                KvState::new(CachePolicy::Ring, c.layers[0], d, c.w1, c.context / c.c1)
            } else {
                let cap1 = cap * c.c2;
                KvState::new(
                    CachePolicy::Linear {
                        sink: SINK,
                        evict: (cap1 / 8).max(1),
                    },
                    c.layers[0],
                    d,
                    cap1,
                    c.context / c.c1,
                )
            };
            pl.f2 = KvState::new(
                CachePolicy::Linear { sink: SINK, evict },
                c.layers[1],
                d,
                cap,
                limit,
            );
            let dec = |layers: usize, n: usize| {
                KvState::new(CachePolicy::Linear { sink: 0, evict: 0 }, layers, d, n, n)
            };
            pl.g2 = dec(c.layers[2], c.r + c.c2 - 1);
            kv(&mut p, &mut pl.f1);
            kv(&mut p, &mut pl.f2);
            kv(&mut p, &mut pl.g2);
            for u in 0..c.c2 {
                let mut st = dec(c.layers[3], c.r + c.c1 - 1);
                kv(&mut p, &mut st);
                pl.g1[u] = Some(st);
            }
            pl.cache_bytes = pl.f1.bytes()
                + pl.f2.bytes()
                + pl.g2.bytes()
                + pl.g1.iter().flatten().map(|s| s.bytes()).sum::<usize>();
        } else {
            pl.kv = KvState::new(
                CachePolicy::Linear { sink: SINK, evict },
                c.layers[0],
                d,
                cap,
                limit,
            );
            kv(&mut p, &mut pl.kv);
            pl.cache_bytes = pl.kv.bytes();
        }
        pl.arena_bytes = p.total * 4;
        pl
    }
}

impl Plan {
    /// Regions holding sequence state other than the coarse cache (what a session made from a
    /// shared prefix copies), in a fixed order.
    pub(crate) fn state_regions(&self) -> Vec<Region> {
        let mut v = alloc::vec![
            self.logits,
            self.cond2,
            self.mc_lat,
            self.xhat,
            self.snap_cond,
            self.snap_mc,
            self.utok
        ];
        for st in [&self.f1, &self.g2]
            .into_iter()
            .chain(self.g1.iter().flatten())
        {
            v.push(Region {
                off: st.off_k,
                len: st.elems(),
            });
            v.push(Region {
                off: st.off_v,
                len: st.elems(),
            });
        }
        v
    }

    /// Positions per layer of the coarse cache.
    pub(crate) fn coarse_cap(&self) -> usize {
        self.f2.cap.max(self.kv.cap)
    }
}

/// Caches' bookkeeping (the data is in the arena).
#[derive(Debug, Clone)]
pub(crate) struct Caches {
    pub f1: KvState,
    pub f2: KvState,
    pub g2: KvState,
    pub g1: [KvState; MAX_C],
    pub kv: KvState,
}

/// Every arena buffer, borrowed at once.
pub(crate) struct Parts<'a> {
    pub s: Scratch<'a>,
    pub x: &'a mut [f32],
    pub logits: &'a mut [f32],
    pub wide: &'a mut [f32],
    pub cond2: &'a mut [f32],
    pub mc_lat: &'a mut [f32],
    pub xhat: &'a mut [f32],
    pub snap_cond: &'a mut [f32],
    pub snap_mc: &'a mut [f32],
    pub utok: &'a mut [u32],
    pub reply: &'a mut [u32],
    pub f1: KvView<'a>,
    pub f2: KvView<'a>,
    pub g2: KvView<'a>,
    pub g1: [Option<KvView<'a>>; MAX_C],
    pub kv: KvView<'a>,
}

pub(crate) fn carve_parts<'a>(
    arena: &'a mut [f32],
    pl: &Plan,
    c: &'a mut Caches,
    n_g1: usize,
    shared: Option<&'a SharedKv>,
) -> Parts<'a> {
    let mut rest = arena;
    let mut cur = 0usize;
    let mut r = |reg: Region| carve(&mut rest, reg.off, reg.len, &mut cur);
    let xb = r(pl.xb);
    let q = r(pl.q);
    let k = r(pl.k);
    let v = r(pl.v);
    let att = r(pl.att);
    let hb = r(pl.hb);
    let hb2 = r(pl.hb2);
    let cs = r(pl.cs);
    let scores = r(pl.scores);
    let act = as_blocks(r(pl.act));
    let x = r(pl.x);
    let logits = r(pl.logits);
    let wide = r(pl.wide);
    let cond2 = r(pl.cond2);
    let mc_lat = r(pl.mc_lat);
    let xhat = r(pl.xhat);
    let snap_cond = r(pl.snap_cond);
    let snap_mc = r(pl.snap_mc);
    let utok = as_tokens(r(pl.utok));
    let reply = as_tokens(r(pl.reply));
    let mut view = |st: &'a mut KvState| {
        let n = st.elems();
        let (ok, ov) = (st.off_k, st.off_v);
        let k = as_kv(r(Region { off: ok, len: n }), st.ty, st.values());
        let v = as_kv(r(Region { off: ov, len: n }), st.ty, st.values());
        KvView {
            st,
            k,
            v,
            pk: KvRef::F32(&[]),
            pv: KvRef::F32(&[]),
        }
    };
    let f1 = view(&mut c.f1);
    let mut f2 = view(&mut c.f2);
    let g2 = view(&mut c.g2);
    let mut g1: [Option<KvView<'a>>; MAX_C] = Default::default();
    for (slot, st) in g1.iter_mut().zip(c.g1.iter_mut()).take(n_g1) {
        *slot = Some(view(st));
    }
    let mut kv = view(&mut c.kv);
    if let Some(sh) = shared {
        let coarse = if n_g1 > 0 { &mut f2 } else { &mut kv };
        coarse.pk = sh.k.view();
        coarse.pv = sh.v.view();
    }
    Parts {
        s: Scratch {
            rows: pl.rows,
            xb,
            q,
            k,
            v,
            att,
            hb,
            hb2,
            cs,
            scores,
            act,
        },
        x,
        logits,
        wide,
        cond2,
        mc_lat,
        xhat,
        snap_cond,
        snap_mc,
        utok,
        reply,
        f1,
        f2,
        g2,
        g1,
        kv,
    }
}

/// Bookkeeping of a PHOTON session (see docs/engine.md).
#[derive(Debug, Clone, Default)]
pub(crate) struct PhotonSt {
    /// Complete level-1 units encoded bottom-up (F1 has seen them).
    pub units: usize,
    /// Tokens known of unit j of the current meta-context.
    pub ulen: [usize; MAX_C],
    /// G2 rows run for the current meta-context (0: not started).
    pub g2_rows: usize,
    /// x̂1 known for units `< xhat_n` of the current meta-context.
    pub xhat_n: usize,
    /// G1 rows run for unit j of the current meta-context.
    pub g1_rows: [usize; MAX_C],
    /// RecGen: a batch of units `rec_j0..C2` is in flight.
    pub rec: bool,
    pub rec_j0: usize,
    /// RecGen has produced tokens since the encoder was last in sync.
    pub dirty: bool,
    pub snap_units: usize,
    pub f2_added: usize,
    pub reply_len: usize,
    pub reply_overflow: bool,
}

/// One sequence's state. All caches and scratch live in ONE arena allocated by [`Session::new`];
/// `feed`, `accept`, `pending_rows` and `logits` allocate nothing.
pub struct Session<'m> {
    pub(crate) model: &'m Model,
    pub(crate) kern: Kernels,
    pub(crate) mode: Mode,
    pub(crate) arena: Arena,
    pub(crate) plan: Plan,
    pub(crate) caches: Caches,
    pub(crate) ph: PhotonSt,
    /// Tokens consumed (history length).
    pub(crate) pos: usize,
    /// Logits rows ready and the unit (PHOTON) each row belongs to.
    pub(crate) n_pending: usize,
    pub(crate) pending: [usize; MAX_C],
    /// Read-only coarse-cache prefix shared with other sessions.
    pub(crate) shared: Option<SharedKv>,
}

/// Keys and values of a shared coarse-cache prefix: `layers × len × dim` each.
#[derive(Debug, Clone)]
pub(crate) struct SharedKv {
    pub k: Arc<KvOwned>,
    pub v: Arc<KvOwned>,
    pub len: usize,
}

/// A session frozen after a prompt: its coarse cache becomes a read-only prefix that any number
/// of sessions made with [`Session::from_shared`] read without copying (N continuations of one
/// prompt); each keeps only its own small state and the coarse positions it adds.
#[derive(Debug, Clone)]
pub struct SharedPrefix {
    kv: SharedKv,
    caches: Caches,
    ph: PhotonSt,
    pos: usize,
    n_pending: usize,
    pending: [usize; MAX_C],
    mode: Mode,
    /// Contents of the base session's state regions ([`Plan::state_regions`]).
    regions: Vec<f32>,
}

impl SharedPrefix {
    /// Coarse positions (per layer) in the prefix.
    pub fn positions(&self) -> usize {
        self.kv.len
    }
    /// Bytes of the shared keys and values (held once, whatever the number of sessions).
    pub fn bytes(&self) -> usize {
        self.kv.k.bytes() + self.kv.v.bytes()
    }
}

impl core::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("mode", &self.mode)
            .field("position", &self.pos)
            .field("memory", &self.memory())
            .finish()
    }
}

impl<'m> Session<'m> {
    /// Allocates the arena from `opts.memory_budget`; `Error::Memory` states the minimum.
    pub fn new(model: &'m Model, opts: &EngineOptions) -> Result<Session<'m>> {
        Session::with_plan(model, opts, Plan::new(model, opts.memory_budget))
    }

    /// [`Session::new`] with caches of element type `cache` (F16 halves cache memory and
    /// bandwidth; keys and values are rounded to half precision).
    pub fn new_with_cache(
        model: &'m Model,
        opts: &EngineOptions,
        cache: CacheType,
    ) -> Result<Session<'m>> {
        let plan = Plan::with_prefix(model, opts.memory_budget, 0, cache);
        Session::with_plan(model, opts, plan)
    }

    fn with_plan(model: &'m Model, opts: &EngineOptions, plan: Plan) -> Result<Session<'m>> {
        if opts.memory_budget < plan.min_bytes {
            return Err(err!(
                Memory,
                "a budget of {} bytes is too small for this model: the minimum is {} bytes",
                opts.memory_budget,
                plan.min_bytes
            ));
        }
        let arena = Arena::new(plan.arena_bytes / 4);
        let blank = KvState::new(CachePolicy::Ring, 0, 0, 0, 0);
        let caches = Caches {
            f1: plan.f1.clone(),
            f2: plan.f2.clone(),
            g2: plan.g2.clone(),
            g1: core::array::from_fn(|i| plan.g1[i].clone().unwrap_or_else(|| blank.clone())),
            kv: plan.kv.clone(),
        };
        let mut s = Session {
            model,
            kern: super::kernels(opts.threads),
            mode: opts.mode,
            arena,
            plan,
            caches,
            ph: PhotonSt::default(),
            pos: 0,
            n_pending: 0,
            pending: [0; MAX_C],
            shared: None,
        };
        s.reset();
        Ok(s)
    }

    /// Freezes this session's state after a prompt for sharing: see [`SharedPrefix`]. Not
    /// during a RecGen reply (feed first), nor for PHOTON files with an unbounded F1 window.
    pub fn share(&self) -> Result<SharedPrefix> {
        let c = self.model.config();
        let photon = c.kind == ModelKind::Photon;
        if self.ph.dirty && (self.ph.f2_added > 0 || self.ph.reply_len > 0) {
            return Err(err!(
                Input,
                "share a session after feed, not in the middle of a RecGen reply"
            ));
        }
        if photon && c.w1 == 0 {
            return Err(err!(
                Unsupported,
                "sharing a PHOTON model with an unbounded F1 window"
            ));
        }
        let st = if photon {
            &self.caches.f2
        } else {
            &self.caches.kv
        };
        let (p0, own, d, layers) = (st.prefix, st.len, st.dim, st.layers);
        let n = p0 + own;
        let a = self.arena.slice();
        let mut k = KvOwned::new(st.ty);
        let mut v = KvOwned::new(st.ty);
        let ak = as_kv_ref(&a[st.off_k..st.off_k + st.elems()], st.ty, st.values());
        let av = as_kv_ref(&a[st.off_v..st.off_v + st.elems()], st.ty, st.values());
        for l in 0..layers {
            if let Some(sh) = &self.shared {
                k.extend(sh.k.view().slice(l * p0 * d..(l + 1) * p0 * d));
                v.extend(sh.v.view().slice(l * p0 * d..(l + 1) * p0 * d));
            }
            let o = l * st.cap * d;
            k.extend(ak.slice(o..o + own * d));
            v.extend(av.slice(o..o + own * d));
        }
        let mut regions = Vec::new();
        for r in self.plan.state_regions() {
            regions.extend_from_slice(&a[r.off..r.off + r.len]);
        }
        Ok(SharedPrefix {
            kv: SharedKv {
                k: Arc::new(k),
                v: Arc::new(v),
                len: n,
            },
            caches: self.caches.clone(),
            ph: self.ph.clone(),
            pos: self.pos,
            n_pending: self.n_pending,
            pending: self.pending,
            mode: self.mode,
            regions,
        })
    }

    /// A session continuing from a [`SharedPrefix`]: the arena (from `opts.memory_budget`) holds
    /// only this sequence's own state; the prefix is read in place.
    pub fn from_shared(
        model: &'m Model,
        opts: &EngineOptions,
        sh: &SharedPrefix,
    ) -> Result<Session<'m>> {
        let c = model.config();
        let photon = c.kind == ModelKind::Photon;
        let limit = if photon {
            c.context / c.meta_tokens()
        } else {
            c.context
        };
        let ty = match &*sh.kv.k {
            KvOwned::F32(_) => CacheType::F32,
            KvOwned::F16(_) => CacheType::F16,
        };
        let plan = Plan::with_prefix(model, opts.memory_budget, sh.kv.len, ty);
        if sh.kv.len + plan.coarse_cap() > limit {
            return Err(err!(
                Input,
                "the shared prefix ({} coarse positions) leaves no room in the trained range of {limit}",
                sh.kv.len
            ));
        }
        let mut s = Session::with_plan(model, opts, plan.clone())?;
        let keep = |mut st: KvState, fresh: &KvState| {
            st.off_k = fresh.off_k;
            st.off_v = fresh.off_v;
            st
        };
        s.caches.f1 = keep(sh.caches.f1.clone(), &plan.f1);
        s.caches.g2 = keep(sh.caches.g2.clone(), &plan.g2);
        for (i, g) in plan.g1.iter().enumerate() {
            if let Some(g) = g {
                s.caches.g1[i] = keep(sh.caches.g1[i].clone(), g);
            }
        }
        let mut coarse = if photon {
            plan.f2.clone()
        } else {
            plan.kv.clone()
        };
        coarse.prefix = sh.kv.len;
        if photon {
            s.caches.f2 = coarse;
        } else {
            s.caches.kv = coarse;
        }
        let a = s.arena.slice_mut();
        let mut o = 0;
        for r in plan.state_regions() {
            a[r.off..r.off + r.len].copy_from_slice(&sh.regions[o..o + r.len]);
            o += r.len;
        }
        s.ph = sh.ph.clone();
        s.pos = sh.pos;
        s.n_pending = sh.n_pending;
        s.pending = sh.pending;
        s.mode = sh.mode;
        s.shared = Some(sh.kv.clone());
        s.set_mode(opts.mode);
        Ok(s)
    }

    /// A copy of this session (its own arena: one allocation), e.g. to run several continuations
    /// of one prompt.
    pub fn fork(&self) -> Session<'m> {
        Session {
            model: self.model,
            kern: self.kern.clone(),
            mode: self.mode,
            arena: self.arena.clone(),
            plan: self.plan.clone(),
            caches: self.caches.clone(),
            ph: self.ph.clone(),
            pos: self.pos,
            n_pending: self.n_pending,
            pending: self.pending,
            shared: self.shared.clone(),
        }
    }

    /// Makes this session a copy of `other` (same model and budget) without allocating.
    pub fn copy_from(&mut self, other: &Session<'m>) -> Result<()> {
        if !core::ptr::eq(self.model, other.model) || self.arena.bytes() != other.arena.bytes() {
            return Err(err!(
                Input,
                "copy_from needs a session of the same model and memory budget"
            ));
        }
        self.arena.copy_from(&other.arena);
        self.caches.clone_from(&other.caches);
        self.ph.clone_from(&other.ph);
        self.mode = other.mode;
        self.pos = other.pos;
        self.n_pending = other.n_pending;
        self.pending = other.pending;
        self.shared.clone_from(&other.shared);
        Ok(())
    }

    /// Forgets the sequence (caches emptied; the arena is kept).
    pub fn reset(&mut self) {
        self.caches.f1.clear();
        self.caches.f2.clear();
        self.caches.g2.clear();
        for c in self.caches.g1.iter_mut() {
            c.clear();
        }
        self.caches.kv.clear();
        self.caches.f2.prefix = 0;
        self.caches.kv.prefix = 0;
        self.shared = None;
        self.ph = PhotonSt::default();
        self.pos = 0;
        self.n_pending = 0;
        if self.model.kind() == ModelKind::Photon {
            let off = self.plan.cond2.off;
            let start = match &self.model.w {
                super::weights::Weights::Photon(w) => &w.start,
                _ => unreachable!(),
            };
            self.arena.slice_mut()[off..off + start.len()].copy_from_slice(start);
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switches the generation mode. From HierGen, the pending rows are recomputed for RecGen at
    /// once; leaving RecGen re-encodes what RecGen produced (as `feed` does).
    pub fn set_mode(&mut self, mode: Mode) {
        if mode == self.mode {
            return;
        }
        self.mode = mode;
        if self.model.kind() == ModelKind::Photon && self.n_pending > 0 {
            self.photon_mode_changed();
        }
    }

    /// Known tokens (a prompt, the next user turn): encoded bottom-up, caches filled; then the
    /// next token's logits (HierGen, vanilla) or the unfinished units' rows (RecGen) are ready.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<()> {
        self.check_tokens(tokens)?;
        match self.model.kind() {
            ModelKind::Photon => self.photon_feed(tokens),
            ModelKind::Llama => self.llama_feed(tokens),
        }
        Ok(())
    }

    /// Rows whose next-token logits are ready: 1 for HierGen and vanilla, up to C2 under RecGen
    /// (the unfinished units of the current meta-context, in unit order).
    pub fn pending_rows(&self) -> usize {
        self.n_pending
    }

    /// The level-1 unit (index in the whole sequence) each pending row belongs to (PHOTON).
    pub fn pending_unit(&self, row: usize) -> usize {
        let c = self.model.config();
        (self.ph.units / c.c2.max(1)) * c.c2 + self.pending[row]
    }

    /// Logits of pending row `row`.
    pub fn logits(&self, row: usize) -> &[f32] {
        assert!(row < self.n_pending, "row {row} is not pending");
        let v = self.model.vocab_size();
        let o = self.plan.logits.off + row * v;
        &self.arena.slice()[o..o + v]
    }

    /// Mutable logits of pending row `row` (samplers that penalize or mask in place).
    pub fn logits_mut(&mut self, row: usize) -> &mut [f32] {
        assert!(row < self.n_pending, "row {row} is not pending");
        let v = self.model.vocab_size();
        let o = self.plan.logits.off + row * v;
        &mut self.arena.slice_mut()[o..o + v]
    }

    /// Accepts one sampled token per pending row (same order).
    pub fn accept(&mut self, tokens: &[u32]) -> Result<()> {
        if tokens.len() != self.n_pending {
            return Err(err!(
                Input,
                "accept got {} tokens for {} pending rows",
                tokens.len(),
                self.n_pending
            ));
        }
        self.check_tokens(tokens)?;
        match self.model.kind() {
            ModelKind::Photon => self.photon_accept(tokens),
            ModelKind::Llama => self.llama_feed(tokens),
        }
        Ok(())
    }

    /// Ends a RecGen reply after `len` tokens of history: the unfinished units' rows are dropped
    /// and the history is the first `len` tokens in unit order (units before the cut must be
    /// complete). Afterwards no row is pending; `feed` (a next turn, or `&[]` to go on
    /// generating) re-encodes the kept reply bottom-up. Use it when an EOS appears in unit k: step
    /// until the units before k are complete, then cut after the EOS. In other states only
    /// `len == position()` is accepted (a no-op).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        match self.model.kind() {
            ModelKind::Photon => self.photon_truncate(len),
            ModelKind::Llama if len == self.pos => Ok(()),
            ModelKind::Llama => Err(err!(
                Unsupported,
                "truncate to {len} of {}: the vanilla model does not rewind",
                self.pos
            )),
        }
    }

    /// Tokens consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Exact memory: weights mapped, the arena, its caches.
    pub fn memory(&self) -> MemoryReport {
        let coarse = match self.model.kind() {
            ModelKind::Photon => &self.caches.f2,
            ModelKind::Llama => &self.caches.kv,
        };
        MemoryReport {
            weights_mapped: self.model.weight_bytes(),
            arena_bytes: self.arena.bytes(),
            arena_used: self.plan.arena_bytes,
            cache_bytes: self.plan.cache_bytes,
            coarse_capacity: coarse.cap,
            coarse_len: coarse.len,
            coarse_evicted: coarse.evicted,
            shared_prefix_bytes: self
                .shared
                .as_ref()
                .map_or(0, |s| s.k.bytes() + s.v.bytes()),
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// **Benchmarks only.** Makes a fresh vanilla (llama) session look as if it had consumed
    /// `positions` tokens without running them: its KV cache is filled with pseudo-random keys
    /// and values (a pool of rows drawn from `seed`, |x| < 0.5), and `position()` becomes
    /// `positions`. No logits are pending afterwards: `feed` one token to get some. The cost
    /// of every later step (attention over `positions` cached entries, one weight pass) is
    /// that of a real session at that context length; the outputs are meaningless. This is how
    /// `photon-bench` measures vanilla decode at 32K–128K without an O(n²) prefill that takes
    /// hours on a small CPU (docs/results.md says where it is used). Errors: PHOTON models
    /// (`Unsupported`: their prefill is cheap, use `feed`), a session that is not fresh or is
    /// made from a shared prefix, or more positions than the cache holds (`Input`).
    pub fn fill_kv_for_bench(&mut self, positions: usize, seed: u64) -> Result<()> {
        if self.model.kind() != ModelKind::Llama {
            return Err(err!(
                Unsupported,
                "fill_kv_for_bench is for vanilla models (PHOTON prefill is cheap: use feed)"
            ));
        }
        if self.pos != 0 || self.shared.is_some() {
            return Err(err!(
                Input,
                "fill_kv_for_bench needs a fresh session (reset it first)"
            ));
        }
        let st = &mut self.caches.kv;
        if positions > st.cap {
            return Err(err!(
                Input,
                "{positions} positions do not fit the KV cache of {} positions (raise the memory budget)",
                st.cap
            ));
        }
        const POOL: usize = 251;
        let dim = st.dim;
        let mut rng = super::testing::Rng::new(seed);
        let pool: Vec<f32> = (0..POOL * dim).map(|_| rng.uniform()).collect();
        let a = self.arena.slice_mut();
        for off in [st.off_k, st.off_v] {
            let mut kv = as_kv(&mut a[off..off + st.elems()], st.ty, st.values());
            for l in 0..st.layers {
                for p in 0..positions {
                    let r = (p * 7 + l * 13 + (off == st.off_v) as usize) % POOL;
                    kv.write((l * st.cap + p) * dim, &pool[r * dim..(r + 1) * dim]);
                }
            }
        }
        st.len = positions;
        st.abs = positions as u64;
        self.pos = positions;
        self.n_pending = 0;
        Ok(())
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let v = self.model.vocab_size();
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= v) {
            return Err(err!(Input, "token id {t} is outside the vocabulary of {v}"));
        }
        Ok(())
    }
}

/// Splits a session's fields into the environment and every arena buffer (a free function so the
/// caller keeps the bookkeeping fields borrowable).
pub(crate) fn split<'a>(
    model: &'a Model,
    kern: &'a Kernels,
    arena: &'a mut Arena,
    plan: &'a Plan,
    caches: &'a mut Caches,
    shared: Option<&'a SharedKv>,
) -> (Env<'a>, Parts<'a>) {
    let c = model.config();
    let env = Env {
        kern,
        bytes: model.bytes(),
        d: c.d,
        ffn: c.ffn,
        head_dim: c.head_dim,
        eps: c.eps,
        inv_freq: &model.inv_freq,
    };
    let n_g1 = if c.kind == ModelKind::Photon { c.c2 } else { 0 };
    let parts = carve_parts(arena.slice_mut(), plan, caches, n_g1, shared);
    (env, parts)
}
