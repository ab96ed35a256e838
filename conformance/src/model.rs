//! The shadow model: every live block the allocator handed out, with the pattern written into
//! it, checked after every operation.
//!
//! Before a block is written, the model checks it is aligned, long enough, disjoint from every
//! live block (of this model, and of every other thread's model when they share a
//! [`SharedSpans`]), and inside memory the allocator says it owns (where it can say). After
//! operations it runs the allocator's heap validator (where it has one). Blocks are freed, and
//! resized from, a layout whose size is anywhere between the size asked for and the length
//! returned (allocator_api2's "fits"), not only the size asked for.

use crate::heap::Heap;
use crate::ops::{decode_align, decode_size, Op};
use alloc_core::Corruption;
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Why an allocator was rejected.
#[derive(Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of a property.
pub type Outcome = Result<(), Failure>;

/// Builds a failure from format arguments.
macro_rules! fail {
    ($($t:tt)*) => { Err($crate::model::Failure(format!($($t)*))) };
}
pub(crate) use fail;

/// An allocator's heap validator, as a hook.
pub type ValidateFn<A> = fn(&A) -> Result<(), Corruption>;

/// What the model may ask an allocator beyond allocating and freeing.
pub struct Hooks<A> {
    /// The allocator's heap validator.
    pub validate: Option<ValidateFn<A>>,
    /// Whether an address lies in memory the allocator manages.
    pub owns: Option<fn(&A, NonNull<u8>) -> bool>,
}

impl<A> Default for Hooks<A> {
    fn default() -> Self {
        Hooks { validate: None, owns: None }
    }
}

impl<A> Clone for Hooks<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for Hooks<A> {}

/// The live blocks of several models driving one shared allocator from several threads: a block
/// one thread gets must not overlap a block another thread holds.
#[derive(Default)]
pub struct SharedSpans {
    /// start -> (end, model id) of every live non-empty block of every model.
    spans: Mutex<BTreeMap<usize, (usize, u32)>>,
    next_id: std::sync::atomic::AtomicU32,
}

impl SharedSpans {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(SharedSpans::default())
    }
}

/// A block the model believes is live.
#[derive(Copy, Clone, Debug)]
struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    /// The usable length the allocator returned (>= layout.size()); the pattern covers it all.
    len: usize,
    /// Unique per allocation; seeds the block's byte pattern.
    tag: u64,
}

impl Live {
    /// A layout that fits the block: its alignment, and a size between the size asked for and
    /// the length returned, chosen from the tag so runs are repeatable.
    fn fitting(&self) -> Layout {
        let extra = self.len - self.layout.size();
        let size =
            if extra == 0 { self.layout.size() } else { self.layout.size() + seed_of(self.tag) as usize % (extra + 1) };
        Layout::from_size_align(size, self.layout.align()).expect("a size between two valid sizes")
    }
}

/// The byte at offset `i` of the pattern for `tag`: distinct tags give distinct patterns, and
/// neighbouring bytes differ, so an overlap or a shifted copy is seen.
#[inline(always)]
fn pattern_byte(seed: u64, i: usize) -> u8 {
    ((seed >> ((i & 7) * 8)) as u8) ^ ((i >> 3) as u8).wrapping_mul(0x9d)
}

fn seed_of(tag: u64) -> u64 {
    // splitmix64 finaliser
    let mut z = tag.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31) | 1
}

/// Drives an allocator and checks it against the shadow model.
pub struct Machine<A: Heap> {
    /// The allocator; `None` only after `finish` took it.
    heap: Option<A>,
    live: Vec<Live>,
    /// tag -> index in `live`.
    index: HashMap<u64, usize>,
    /// start -> end of every live non-empty block; disjoint by invariant.
    spans: BTreeMap<usize, usize>,
    /// Other threads' blocks, when several models share one allocator.
    shared: Option<(Arc<SharedSpans>, u32)>,
    next_tag: u64,
    /// When set, a refused allocation is a failure (the allocator has no memory limit).
    strict: bool,
    reset: Option<fn(&mut A)>,
    /// Called for [`Op::Reset`] instead of freeing, when set: gives memory back to the page
    /// source (trim, scavenge) while every block stays live.
    trim: Option<fn(&mut A)>,
    hooks: Hooks<A>,
    /// Operations so far, for the validator's pace.
    ops: u64,
    /// Allocations refused so far.
    pub refused: usize,
}

/// A live block in transit from one model to another, its pattern intact.
#[derive(Debug)]
pub struct Parcel(Live);

// SAFETY: a parcel is the only handle to its block; whoever holds it owns the block.
unsafe impl Send for Parcel {}

/// A live block's identity in the model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle(u64);

impl<A: Heap> Machine<A> {
    /// A model over `heap`. With `strict`, any refused allocation is a failure.
    pub fn new(heap: A, strict: bool) -> Self {
        Machine {
            heap: Some(heap),
            live: Vec::new(),
            index: HashMap::new(),
            spans: BTreeMap::new(),
            shared: None,
            next_tag: 1,
            strict,
            reset: None,
            trim: None,
            hooks: Hooks::default(),
            ops: 0,
            refused: 0,
        }
    }

    /// Lets [`Op::Reset`] call the allocator's reset instead of freeing block by block.
    pub fn with_reset(mut self, reset: Option<fn(&mut A)>) -> Self {
        self.reset = reset;
        self
    }

    /// Makes [`Op::Reset`] call `trim` (give memory back, keep every block) instead: the model
    /// then checks that every live block kept its contents and that the heap validates.
    pub fn with_trim(mut self, trim: Option<fn(&mut A)>) -> Self {
        self.trim = trim;
        self
    }

    /// Gives memory back through the allocator's trim, then checks every live block's contents
    /// and the heap's own structures.
    pub fn trim(&mut self) -> Outcome {
        if let Some(trim) = self.trim {
            trim(self.heap.as_mut().expect("heap"));
        }
        self.verify_all("after a trim")?;
        self.validate("after a trim")
    }

    /// Checks that every live block still holds its pattern.
    pub fn verify_all(&self, what: &str) -> Outcome {
        self.live.iter().try_for_each(|b| verify(b, b.len, what))
    }

    /// Uses the allocator's validator and ownership test.
    pub fn with_hooks(mut self, hooks: Hooks<A>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Checks blocks against the other models registered in `shared` too.
    pub fn sharing(mut self, shared: &Arc<SharedSpans>) -> Self {
        let id = shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Tags differ between models, so their patterns differ too.
        self.next_tag = (u64::from(id) << 40) + 1;
        self.shared = Some((shared.clone(), id));
        self
    }

    /// The allocator.
    pub fn heap(&self) -> &A {
        self.heap.as_ref().expect("the machine holds its heap until finish")
    }

    /// Live blocks in the model.
    pub fn live_blocks(&self) -> usize {
        self.live.len()
    }

    /// Sum of the requested sizes of live blocks.
    pub fn live_bytes(&self) -> usize {
        self.live.iter().map(|b| b.layout.size()).sum()
    }

    /// Sum of the usable lengths of live blocks.
    pub fn live_usable(&self) -> usize {
        self.live.iter().map(|b| b.len).sum()
    }

    /// The address, layout and usable length of every live block.
    pub fn blocks(&self) -> Vec<(NonNull<u8>, Layout, usize)> {
        self.live.iter().map(|b| (b.ptr, b.layout, b.len)).collect()
    }

    /// Applies one fuzz/proptest operation.
    pub fn apply(&mut self, op: Op) -> Outcome {
        let r = match op {
            Op::Alloc { size, align, zeroed } => {
                let layout = layout(decode_size(size), decode_align(align))?;
                self.allocate(layout, zeroed).map(|_| ())
            }
            Op::Free { slot } => match self.pick(slot) {
                Some(h) => self.free(h),
                None => Ok(()),
            },
            Op::Realloc { slot, size, zeroed } => match self.pick(slot) {
                Some(h) => self.resize(h, decode_size(size), zeroed).map(|_| ()),
                None => Ok(()),
            },
            Op::ReallocAligned { slot, size, align, zeroed } => match self.pick(slot) {
                Some(h) => {
                    let new = layout(decode_size(size), decode_align(align))?;
                    self.resize_to(h, new, zeroed).map(|_| ())
                }
                None => Ok(()),
            },
            Op::Reset if self.trim.is_some() => self.trim(),
            Op::Reset => self.reset(),
        };
        r?;
        self.after_op()
    }

    /// Runs the validator at a pace that keeps large heaps affordable: after every operation
    /// while few blocks are live, every 64th otherwise.
    fn after_op(&mut self) -> Outcome {
        self.ops += 1;
        if self.live.len() <= 256 || self.ops.is_multiple_of(64) {
            self.validate("after an operation")?;
        }
        Ok(())
    }

    /// Runs the allocator's heap validator, if it has one.
    pub fn validate(&self, when: &str) -> Outcome {
        if let Some(v) = self.hooks.validate {
            if let Err(c) = v(self.heap()) {
                return fail!("{when}: {c}");
            }
        }
        Ok(())
    }

    fn pick(&self, slot: u16) -> Option<Handle> {
        (!self.live.is_empty()).then(|| Handle(self.live[slot as usize % self.live.len()].tag))
    }

    /// Allocates `layout` (zeroed if asked) and checks the block. `Ok(None)` when the allocator
    /// refused and the model is not strict.
    pub fn allocate(&mut self, layout: Layout, zeroed: bool) -> Result<Option<Handle>, Failure> {
        let result = if zeroed { self.heap().allocate_zeroed(layout) } else { self.heap().allocate(layout) };
        let block = match result {
            Ok(b) => b,
            Err(_) => return self.refused(layout),
        };
        let tag = self.fresh_tag();
        let b = Live { ptr: block.cast(), layout, len: block.len(), tag };
        self.check_shape(&b, "allocate")?;
        if zeroed {
            check_zero(&b, 0, "allocate_zeroed")?;
        }
        self.insert(b)?;
        Ok(Some(Handle(tag)))
    }

    fn refused(&mut self, layout: Layout) -> Result<Option<Handle>, Failure> {
        self.refused += 1;
        if self.strict {
            return fail!(
                "refused a {}-byte request aligned to {} with no memory limit and {} bytes live",
                layout.size(),
                layout.align(),
                self.live_bytes()
            );
        }
        Ok(None)
    }

    fn fresh_tag(&mut self) -> u64 {
        let t = self.next_tag;
        self.next_tag += 1;
        t
    }

    /// Non-null is given by the type; aligned, long enough, and (where the allocator can say)
    /// inside its own memory are checked here, before anything is written.
    fn check_shape(&self, b: &Live, what: &str) -> Outcome {
        let addr = b.ptr.as_ptr() as usize;
        if !addr.is_multiple_of(b.layout.align()) {
            return fail!(
                "{what}: block {addr:#x} of {} bytes is not aligned to {}",
                b.layout.size(),
                b.layout.align()
            );
        }
        if b.len < b.layout.size() {
            return fail!("{what}: block {addr:#x} is {} bytes long, {} were asked for", b.len, b.layout.size());
        }
        if let (Some(owns), true) = (self.hooks.owns, b.len > 0) {
            let last = addr + b.len - 1;
            // SAFETY: only the addresses are asked about; `owns` never reads through them.
            let last_ptr = unsafe { NonNull::new_unchecked(last as *mut u8) };
            if !owns(self.heap(), b.ptr) || !owns(self.heap(), last_ptr) {
                return fail!(
                    "{what}: block {addr:#x}..{:#x} ({} bytes) extends past the memory the allocator owns",
                    addr + b.len,
                    b.layout.size()
                );
            }
        }
        Ok(())
    }

    /// Checks `b` is disjoint from every live block (this model's and, when shared, every other
    /// model's), records it, and fills it with its pattern.
    fn insert(&mut self, b: Live) -> Outcome {
        if b.len > 0 {
            let start = b.ptr.as_ptr() as usize;
            let end = start + b.len;
            if let Some((&s, &e)) = self.spans.range(..end).next_back() {
                if e > start {
                    return fail!(
                        "block {start:#x}..{end:#x} ({} bytes, align {}) overlaps the live block {s:#x}..{e:#x}",
                        b.layout.size(),
                        b.layout.align()
                    );
                }
            }
            if let Some((shared, id)) = &self.shared {
                let mut spans = shared.spans.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((&s, &(e, other))) = spans.range(..end).next_back() {
                    if e > start {
                        return fail!(
                            "block {start:#x}..{end:#x} ({} bytes) overlaps the live block {s:#x}..{e:#x} that another \
                             thread holds (model {other}, this is model {id})",
                            b.layout.size()
                        );
                    }
                }
                spans.insert(start, (end, *id));
            }
            self.spans.insert(start, end);
        }
        fill(&b);
        self.index.insert(b.tag, self.live.len());
        self.live.push(b);
        Ok(())
    }

    /// Checks the block still holds its pattern, then takes it out of the model (in that order:
    /// while it is registered, no other thread's model accepts a block over it).
    fn take_verified(&mut self, h: Handle, what: &str) -> Result<Live, Failure> {
        let b = self.live[self.index[&h.0]];
        verify(&b, b.len, what)?;
        Ok(self.take(h))
    }

    fn take(&mut self, h: Handle) -> Live {
        let i = self.index.remove(&h.0).expect("handle of a live block");
        let b = self.live.swap_remove(i);
        if i < self.live.len() {
            self.index.insert(self.live[i].tag, i);
        }
        if b.len > 0 {
            let start = b.ptr.as_ptr() as usize;
            self.spans.remove(&start);
            if let Some((shared, _)) = &self.shared {
                shared.spans.lock().unwrap_or_else(|e| e.into_inner()).remove(&start);
            }
        }
        b
    }

    /// Takes the live block at `slot % live` out of this model, its pattern verified, to be
    /// [`receive`](Self::receive)d by another model (another thread's) over the same allocator,
    /// which then frees it: a free from a thread other than the allocating one.
    pub fn send(&mut self, slot: u16) -> Result<Option<Parcel>, Failure> {
        let Some(h) = self.pick(slot) else { return Ok(None) };
        self.take_verified(h, "send to another thread").map(|b| Some(Parcel(b)))
    }

    /// Adopts a block another model [`send`](Self::send)s: its pattern must have survived the
    /// trip, and it must not overlap any block live in this model (or, shared, any other).
    pub fn receive(&mut self, parcel: Parcel) -> Outcome {
        let b = parcel.0;
        verify(&b, b.len, "receive from another thread")?;
        self.insert(b)
    }

    /// Verifies the block's pattern and frees it, with a layout that fits it.
    pub fn free(&mut self, h: Handle) -> Outcome {
        let b = self.take_verified(h, "free")?;
        // SAFETY: the block is live (the model tracks it) and `fitting` fits it.
        unsafe { self.heap().deallocate(b.ptr, b.fitting()) };
        Ok(())
    }

    /// Verifies the block's pattern and frees it with the size `size(asked, returned length)`,
    /// which must fit the block.
    pub fn free_as(&mut self, h: Handle, size: impl FnOnce(usize, usize) -> usize) -> Outcome {
        let b = self.take_verified(h, "free")?;
        let s = size(b.layout.size(), b.len);
        if s < b.layout.size() || s > b.len.max(b.layout.size()) {
            return fail!(
                "the suite chose a size {s} that does not fit a block of {} asked, {} returned",
                b.layout.size(),
                b.len
            );
        }
        let l = layout(s, b.layout.align())?;
        // SAFETY: the block is live and `l` fits it (checked above).
        unsafe { self.heap().deallocate(b.ptr, l) };
        Ok(())
    }

    /// Grows or shrinks a block, keeping its alignment.
    pub fn resize(&mut self, h: Handle, new_size: usize, zeroed: bool) -> Result<Option<Handle>, Failure> {
        let align = self.live[self.index[&h.0]].layout.align();
        self.resize_to(h, layout(new_size, align)?, zeroed)
    }

    /// Grows or shrinks a block to `new_layout` (size and alignment), checking the kept prefix
    /// (and zeroes for `zeroed` growth); on a refusal, checks the block is untouched.
    pub fn resize_to(&mut self, h: Handle, new_layout: Layout, zeroed: bool) -> Result<Option<Handle>, Failure> {
        let old = self.take_verified(h, "realloc (before)")?;
        let old_fit = old.fitting();
        let growing = new_layout.size() >= old_fit.size();
        // SAFETY: the block is live, `old_fit` fits it, and the size order matches the call.
        let result = unsafe {
            if growing {
                self.heap().grow(old.ptr, old_fit, new_layout, zeroed)
            } else {
                self.heap().shrink(old.ptr, old_fit, new_layout)
            }
        };
        let block = match result {
            Ok(b) => b,
            Err(_) => {
                // The old block must be intact and still ours.
                verify(&old, old.len, "failed realloc")?;
                self.insert(old)?;
                return self.refused(new_layout).map(|_| Some(h));
            }
        };
        let tag = self.fresh_tag();
        let nb = Live { ptr: block.cast(), layout: new_layout, len: block.len(), tag };
        self.check_shape(&nb, "realloc")?;
        let kept = old_fit.size().min(new_layout.size());
        let moved = Live { tag: old.tag, ..nb };
        verify(&moved, kept, "realloc (kept prefix)")?;
        if zeroed && growing {
            // allocator_api2's grow_zeroed: bytes past the old block's whole length read as zero;
            // bytes between the old layout's size and that length are either kept or zeroed.
            check_kept_or_zero(&moved, kept, old.len.min(nb.len), "grow_zeroed")?;
            check_zero(&nb, old.len.max(kept), "grow_zeroed")?;
        }
        self.insert(nb)?;
        Ok(Some(Handle(tag)))
    }

    /// Frees everything: through the allocator's reset where it has one, else block by block.
    pub fn reset(&mut self) -> Outcome {
        match self.reset {
            Some(reset) => {
                let tags: Vec<u64> = self.live.iter().map(|b| b.tag).collect();
                for t in tags {
                    self.take_verified(Handle(t), "reset")?;
                }
                reset(self.heap.as_mut().expect("heap"));
                Ok(())
            }
            None => self.free_all(),
        }
    }

    /// Frees every live block, newest first (LIFO lets bump-style allocators reclaim).
    pub fn free_all(&mut self) -> Outcome {
        while let Some(b) = self.live.last() {
            self.free(Handle(b.tag))?;
        }
        Ok(())
    }

    /// Frees everything, validates, and hands the allocator back.
    pub fn finish(mut self) -> Result<A, Failure> {
        self.free_all()?;
        self.validate("after everything was freed")?;
        Ok(self.heap.take().expect("finish takes the heap once"))
    }
}

impl<A: Heap> Drop for Machine<A> {
    fn drop(&mut self) {
        // A failed property leaves blocks live; give them back without checking, so the
        // allocator's own drop sees a consistent heap.
        let Some(heap) = self.heap.as_ref() else { return };
        for b in std::mem::take(&mut self.live) {
            if let Some((shared, _)) = &self.shared {
                shared.spans.lock().unwrap_or_else(|e| e.into_inner()).remove(&(b.ptr.as_ptr() as usize));
            }
            // SAFETY: every block in the model is live and `fitting` fits it.
            unsafe { heap.deallocate(b.ptr, b.fitting()) };
        }
    }
}

/// A layout, or a failure naming the bad request.
pub(crate) fn layout(size: usize, align: usize) -> Result<Layout, Failure> {
    Layout::from_size_align(size, align).map_err(|_| Failure(format!("bad layout {size}/{align}")))
}

fn fill(b: &Live) {
    let seed = seed_of(b.tag);
    let p = b.ptr.as_ptr();
    for i in 0..b.len {
        // SAFETY: the allocator returned this block as valid for `len` bytes; it is live.
        unsafe { p.add(i).write(pattern_byte(seed, i)) };
    }
}

fn verify(b: &Live, upto: usize, what: &str) -> Outcome {
    let seed = seed_of(b.tag);
    let p = b.ptr.as_ptr();
    for i in 0..upto {
        // SAFETY: `upto` never exceeds the block's valid length.
        let got = unsafe { p.add(i).read() };
        let want = pattern_byte(seed, i);
        if got != want {
            return fail!(
                "{what}: block {p:p} ({} bytes, align {}) lost its contents: byte {i} is {got:#04x}, expected {want:#04x}",
                b.layout.size(),
                b.layout.align()
            );
        }
    }
    Ok(())
}

fn check_kept_or_zero(b: &Live, from: usize, to: usize, what: &str) -> Outcome {
    let seed = seed_of(b.tag);
    let p = b.ptr.as_ptr();
    for i in from..to {
        // SAFETY: `to` never exceeds the block's valid length.
        let got = unsafe { p.add(i).read() };
        if got != 0 && got != pattern_byte(seed, i) {
            return fail!("{what}: block {p:p} has byte {i} = {got:#04x}, neither kept nor zeroed");
        }
    }
    Ok(())
}

fn check_zero(b: &Live, from: usize, what: &str) -> Outcome {
    let p = b.ptr.as_ptr();
    for i in from..b.len {
        // SAFETY: within the block's valid length.
        let got = unsafe { p.add(i).read() };
        if got != 0 {
            return fail!("{what}: block {p:p} ({} bytes) has byte {i} = {got:#04x}, expected zero", b.layout.size());
        }
    }
    Ok(())
}
