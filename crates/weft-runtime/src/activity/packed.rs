//! A 0.3.0 `run` made ready to copy into a module: the run's activity
//! records laid out as the canonical ABI lays them out in the module's
//! memory, so that passing a run is three copies (the text, the records,
//! the addressees) instead of a store per field of every record, which
//! was most of what folding an activity the module ignores cost.
//!
//! The layout is computed from the ABI of the types `bindgen!` generates
//! for 0.3.0 (checked against them when this compiles), and the lowering
//! is typechecked as the generated `run` is: a module of another shape is
//! refused when the node prepares it, as before. This relies on wasmtime's
//! lowering traits (`ComponentType`, `Lower`), which wasmtime documents as
//! its own and exports hidden; the workspace pins wasmtime's version, and
//! a change to them fails to compile rather than lowering wrongly. It is
//! the shape only: what the fields say is `super::Fields`'.

#![allow(
    unsafe_code,
    reason = "implementing wasmtime's lowering traits is unsafe: the type's layout is this code's promise"
)]

use std::mem::MaybeUninit;

use wasmtime::Store;

use wasmtime::ValRaw;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, ComponentVariant, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Lower};

use super::FieldRefs;
use crate::bindings::v0_3;
use crate::bindings::v0_3::types::{Activity, Addressed, Run, Span};
use crate::host::HostState;

/// Where each field of a 0.3.0 `activity` lies in its record.
struct Layout {
    id: usize,
    kind: usize,
    verb: usize,
    actor: usize,
    seq: usize,
    published: usize,
    backfilled: usize,
    object_type: usize,
    object_id: usize,
    in_reply_to: usize,
    to: usize,
    cc: usize,
    /// The record's size, a multiple of its alignment.
    size: usize,
}

const fn align_to(n: usize, align: u32) -> usize {
    let align = align as usize;
    n.div_ceil(align) * align
}

/// The offset of the next field of type `abi` after `at`, moving `at`
/// past it.
const fn field(at: &mut usize, abi: &CanonicalAbiInfo) -> usize {
    let start = align_to(*at, abi.align32);
    *at = start + abi.size32 as usize;
    start
}

const SPAN: CanonicalAbiInfo = <Span as ComponentType>::ABI;
const OPTION_SPAN: CanonicalAbiInfo = <Option<Span> as ComponentType>::ABI;
/// Where an `option<span>`'s span lies after its discriminant.
const OPTION_PAYLOAD: usize = <Option<Span> as ComponentVariant>::PAYLOAD_OFFSET32;

/// The fields in the order the WIT declares them.
const LAYOUT: Layout = {
    let mut at = 0;
    let id = field(&mut at, &SPAN);
    let kind = field(&mut at, &SPAN);
    let verb = field(&mut at, &SPAN);
    let actor = field(&mut at, &SPAN);
    let seq = field(&mut at, &<u64 as ComponentType>::ABI);
    let published = field(&mut at, &SPAN);
    let backfilled = field(&mut at, &<bool as ComponentType>::ABI);
    let object_type = field(&mut at, &OPTION_SPAN);
    let object_id = field(&mut at, &OPTION_SPAN);
    let in_reply_to = field(&mut at, &OPTION_SPAN);
    let to = field(&mut at, &<Addressed as ComponentType>::ABI);
    let cc = field(&mut at, &<Addressed as ComponentType>::ABI);
    Layout {
        id,
        kind,
        verb,
        actor,
        seq,
        published,
        backfilled,
        object_type,
        object_id,
        in_reply_to,
        to,
        cc,
        size: align_to(at, <Activity as ComponentType>::ABI.align32),
    }
};

// The records as laid out here are the generated `activity`'s, in size and
// alignment (wasmtime computes those from the same fields), and a span and
// an `addressed` are two u32s each, in that order.
const _: () = {
    assert!(LAYOUT.size == <Activity as ComponentType>::ABI.size32 as usize);
    assert!(SPAN.size32 == 8 && SPAN.align32 == 4);
    assert!(<Addressed as ComponentType>::ABI.size32 == 8);
    assert!(OPTION_SPAN.size32 as usize == OPTION_PAYLOAD + 8);
};

/// Where every string of a run lies: its `text`, each record's spans in
/// the text, and the addressees' spans.
#[derive(Debug, Default)]
pub(crate) struct PackedRun {
    text: String,
    /// The `activity` records, [`LAYOUT`] each.
    records: Vec<u8>,
    /// The `addressees` spans, 8 bytes each.
    addressees: Vec<u8>,
}

/// A length or offset as the record holds it. Past `u32::MAX` (a run of
/// over 4 GiB, which the node's limits on an activity's size rule out) it
/// reads as an empty span in the module.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put(record: &mut [u8], at: usize, (first, second): (u32, u32)) {
    record[at..at + 4].copy_from_slice(&first.to_le_bytes());
    record[at + 4..at + 8].copy_from_slice(&second.to_le_bytes());
}

fn put_option(record: &mut [u8], at: usize, span: Option<(u32, u32)>) {
    if let Some(span) = span {
        record[at] = 1;
        put(record, at + OPTION_PAYLOAD, span);
    }
}

impl PackedRun {
    pub(super) fn with_capacity(activities: usize) -> Self {
        Self {
            text: String::with_capacity(activities * 256),
            records: Vec::with_capacity(activities * LAYOUT.size),
            addressees: Vec::new(),
        }
    }

    /// The number of activities.
    pub(crate) fn len(&self) -> usize {
        self.records.len() / LAYOUT.size
    }

    /// Appends `s` to the text: its (start, len).
    fn span(&mut self, s: &str) -> (u32, u32) {
        let start = offset(self.text.len());
        self.text.push_str(s);
        (start, offset(s.len()))
    }

    /// Appends `list`'s entries to the addressees: (first, len).
    fn addressed(&mut self, list: &[String]) -> (u32, u32) {
        let first = offset(self.addressees.len() / 8);
        for entry in list {
            let span = self.span(entry);
            self.addressees.extend_from_slice(&span.0.to_le_bytes());
            self.addressees.extend_from_slice(&span.1.to_le_bytes());
        }
        (first, offset(list.len()))
    }

    /// Appends an activity.
    pub(super) fn push(&mut self, a: &FieldRefs<'_>) {
        let to = self.addressed(a.to);
        let cc = self.addressed(a.cc);
        let id = self.span(a.id);
        let kind = self.span(a.kind);
        let verb = self.span(a.verb);
        let actor = self.span(a.actor);
        let published = self.span(a.published);
        let object_type = a.object_type.map(|s| self.span(s));
        let object_id = a.object_id.map(|s| self.span(s));
        let in_reply_to = a.in_reply_to.map(|s| self.span(s));

        let at = self.records.len();
        self.records.resize(at + LAYOUT.size, 0);
        let record = &mut self.records[at..];
        put(record, LAYOUT.id, id);
        put(record, LAYOUT.kind, kind);
        put(record, LAYOUT.verb, verb);
        put(record, LAYOUT.actor, actor);
        record[LAYOUT.seq..LAYOUT.seq + 8].copy_from_slice(&a.seq.to_le_bytes());
        put(record, LAYOUT.published, published);
        record[LAYOUT.backfilled] = u8::from(a.backfilled);
        put_option(record, LAYOUT.object_type, object_type);
        put_option(record, LAYOUT.object_id, object_id);
        put_option(record, LAYOUT.in_reply_to, in_reply_to);
        put(record, LAYOUT.to, to);
        put(record, LAYOUT.cc, cc);
    }

    /// The run as the generated type holds it, read back from the records
    /// (for tests of what a run carries).
    #[cfg(test)]
    pub(crate) fn unpack(&self) -> Run {
        let pair = |bytes: &[u8], at: usize| {
            let word =
                |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            (word(at), word(at + 4))
        };
        let span = |bytes: &[u8], at: usize| {
            let (start, len) = pair(bytes, at);
            Span { start, len }
        };
        let option = |r: &[u8], at: usize| (r[at] == 1).then(|| span(r, at + OPTION_PAYLOAD));
        let addressed = |r: &[u8], at: usize| {
            let (first, len) = pair(r, at);
            Addressed { first, len }
        };
        Run {
            text: self.text.clone(),
            activities: self
                .records
                .chunks_exact(LAYOUT.size)
                .map(|r| Activity {
                    id: span(r, LAYOUT.id),
                    kind: span(r, LAYOUT.kind),
                    verb: span(r, LAYOUT.verb),
                    actor: span(r, LAYOUT.actor),
                    seq: u64::from_le_bytes(
                        r[LAYOUT.seq..LAYOUT.seq + 8].try_into().expect("8 bytes"),
                    ),
                    published: span(r, LAYOUT.published),
                    backfilled: r[LAYOUT.backfilled] == 1,
                    object_type: option(r, LAYOUT.object_type),
                    object_id: option(r, LAYOUT.object_id),
                    in_reply_to: option(r, LAYOUT.in_reply_to),
                    to: addressed(r, LAYOUT.to),
                    cc: addressed(r, LAYOUT.cc),
                })
                .collect(),
            addressees: self
                .addressees
                .chunks_exact(8)
                .map(|s| span(s, 0))
                .collect(),
        }
    }

    /// Calls a 0.3.0 module's `fold` with this run, copied into its memory
    /// rather than lowered a field at a time as the generated `run` is.
    pub(crate) fn fold(
        &self,
        bindings: &v0_3::projection::Projection,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Vec<Result<(), String>>> {
        // SAFETY: this type's component type is the generated `run`'s (its
        // typecheck and ABI are that type's), and `func_fold` was
        // typechecked with that type when the instance was made.
        let fold = unsafe {
            wasmtime::component::TypedFunc::<(&Self,), (Vec<Result<(), String>>,)>::new_unchecked(
                *bindings.func_fold().func(),
            )
        };
        let (results,) = fold.call(store, (self,))?;
        Ok(results)
    }

    /// Copies the records and the addressees into the module's memory:
    /// the (pointer, count) of each list.
    fn copy_lists<T>(&self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<[(usize, usize); 2]> {
        let records = copy(cx, &self.records, <Activity as ComponentType>::ABI.align32)?;
        let addressees = copy(cx, &self.addressees, SPAN.align32)?;
        Ok([
            (records, self.len()),
            (addressees, self.addressees.len() / 8),
        ])
    }
}

/// Allocates `bytes.len()` bytes aligned to `align` in the module's memory
/// (with its `realloc`, which wasmtime checks lands within the memory and
/// aligned) and copies `bytes` there: the pointer.
fn copy<T>(cx: &mut LowerContext<'_, T>, bytes: &[u8], align: u32) -> wasmtime::Result<usize> {
    let at = cx.realloc(0, 0, align, bytes.len())?;
    let memory = cx
        .as_slice_mut()
        .get_mut(at..)
        .and_then(|m| m.get_mut(..bytes.len()))
        .ok_or_else(|| wasmtime::format_err!("realloc return: beyond end of memory"))?;
    memory.copy_from_slice(bytes);
    Ok(at)
}

/// Lowered flat: the text's, the records' and the addressees' (pointer,
/// length), as the generated `run` lowers.
const FLAT: usize = 6;

const _: () = assert!(
    size_of::<<Run as ComponentType>::Lower>() == size_of::<[ValRaw; FLAT]>(),
    "a run lowers to six core values"
);

// SAFETY: `Lower` is six `ValRaw`s (any byte pattern is one), the ABI and
// the typecheck are the generated `run`'s, and the lowering below writes
// what the generated one writes: the text as a string, then two lists of
// records whose layout is checked against the generated types above.
unsafe impl ComponentType for PackedRun {
    type Lower = [ValRaw; FLAT];

    const ABI: CanonicalAbiInfo = <Run as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Run as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: see `ComponentType` above; every value of `dst` is written.
unsafe impl Lower for PackedRun {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; FLAT]>,
    ) -> wasmtime::Result<()> {
        let mut text = MaybeUninit::<[ValRaw; 2]>::uninit();
        self.text
            .as_str()
            .linear_lower_to_flat(cx, InterfaceType::String, &mut text)?;
        // SAFETY: `str`'s lowering wrote both values.
        let [text_ptr, text_len] = unsafe { text.assume_init() };
        let [(records, count), (addressees, entries)] = self.copy_lists(cx)?;
        // Pointers and lengths are stored as 64-bit values, as wasmtime's
        // own lowering of lists and strings stores them.
        let word = |n: usize| ValRaw::i64(n as i64);
        dst.write([
            text_ptr,
            text_len,
            word(records),
            word(count),
            word(addressees),
            word(entries),
        ]);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        // A `run` is three pointer pairs of 32-bit memory: the text at 0,
        // the records at 8, the addressees at 16.
        self.text
            .as_str()
            .linear_lower_to_memory(cx, InterfaceType::String, offset)?;
        let [(records, count), (addressees, entries)] = self.copy_lists(cx)?;
        for (at, (pointer, len)) in [(8, (records, count)), (16, (addressees, entries))] {
            *cx.get::<4>(offset + at) = u32::try_from(pointer)?.to_le_bytes();
            *cx.get::<4>(offset + at + 4) = u32::try_from(len)?.to_le_bytes();
        }
        Ok(())
    }
}
