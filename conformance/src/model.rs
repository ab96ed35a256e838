//! The shadow model: every live block the allocator handed out, with the pattern written into
//! it, checked after every operation.

use crate::heap::Heap;
use crate::ops::{decode_align, decode_size, Op};
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use std::collections::{BTreeMap, HashMap};

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
    next_tag: u64,
    /// When set, a refused allocation is a failure (the allocator has no memory limit).
    strict: bool,
    reset: Option<fn(&mut A)>,
    /// Allocations refused so far.
    pub refused: usize,
}

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
            next_tag: 1,
            strict,
            reset: None,
            refused: 0,
        }
    }

    /// Lets [`Op::Reset`] call the allocator's reset instead of freeing block by block.
    pub fn with_reset(mut self, reset: Option<fn(&mut A)>) -> Self {
        self.reset = reset;
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

    /// Applies one fuzz/proptest operation.
    pub fn apply(&mut self, op: Op) -> Outcome {
        match op {
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
            Op::Reset => self.reset(),
        }
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

    /// Non-null is given by the type; aligned and long enough is checked here.
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
        Ok(())
    }

    /// Checks `b` is disjoint from every live block, records it, and fills it with its pattern.
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
            self.spans.insert(start, end);
        }
        fill(&b);
        self.index.insert(b.tag, self.live.len());
        self.live.push(b);
        Ok(())
    }

    fn take(&mut self, h: Handle) -> Live {
        let i = self.index.remove(&h.0).expect("handle of a live block");
        let b = self.live.swap_remove(i);
        if i < self.live.len() {
            self.index.insert(self.live[i].tag, i);
        }
        if b.len > 0 {
            self.spans.remove(&(b.ptr.as_ptr() as usize));
        }
        b
    }

    /// Verifies the block's pattern and frees it.
    pub fn free(&mut self, h: Handle) -> Outcome {
        let b = self.take(h);
        verify(&b, b.len, "free")?;
        // SAFETY: the block is live (the model tracks it) and `b.layout` is what it was
        // allocated or last resized with.
        unsafe { self.heap().deallocate(b.ptr, b.layout) };
        Ok(())
    }

    /// Grows or shrinks a block, checking the kept prefix (and zeroes for `zeroed` growth); on a
    /// refusal, checks the block is untouched.
    pub fn resize(&mut self, h: Handle, new_size: usize, zeroed: bool) -> Result<Option<Handle>, Failure> {
        let align = self.live[self.index[&h.0]].layout.align();
        let new_layout = layout(new_size, align)?;
        let old = self.take(h);
        verify(&old, old.len, "realloc (before)")?;
        let growing = new_size >= old.layout.size();
        // SAFETY: the block is live, its layout fits, and the size order matches the call.
        let result = unsafe {
            if growing {
                self.heap().grow(old.ptr, old.layout, new_layout, zeroed)
            } else {
                self.heap().shrink(old.ptr, old.layout, new_layout)
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
        let kept = old.layout.size().min(new_size);
        let moved = Live { tag: old.tag, ..nb };
        verify(&moved, kept, "realloc (kept prefix)")?;
        if zeroed && growing {
            check_zero(&nb, old.layout.size(), "grow_zeroed")?;
        }
        self.insert(nb)?;
        Ok(Some(Handle(tag)))
    }

    /// Frees everything: through the allocator's reset where it has one, else block by block.
    pub fn reset(&mut self) -> Outcome {
        match self.reset {
            Some(reset) => {
                for b in &self.live {
                    verify(b, b.len, "reset")?;
                }
                self.live.clear();
                self.index.clear();
                self.spans.clear();
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

    /// Frees everything and hands the allocator back.
    pub fn finish(mut self) -> Result<A, Failure> {
        self.free_all()?;
        Ok(self.heap.take().expect("finish takes the heap once"))
    }
}

impl<A: Heap> Drop for Machine<A> {
    fn drop(&mut self) {
        // A failed property leaves blocks live; give them back without checking, so the
        // allocator's own drop sees a consistent heap.
        let Some(heap) = self.heap.as_ref() else { return };
        for b in self.live.drain(..) {
            // SAFETY: every block in the model is live with this layout.
            unsafe { heap.deallocate(b.ptr, b.layout) };
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
