//! `router.candidate` (0.2 and 0.3) as the host holds it for one call: already in the
//! words the canonical ABI lays it out in, so lowering a call's candidates is a copy.

use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::ComponentType;

use crate::bindings::latest::router;
use crate::borrowed::lower_in_lists_only;
use crate::types::Presence;

/// One candidate as four 8-byte words in the canonical ABI's layout: `agent` (u32) at 0
/// and `load` (u32) at 4, `presence` (one byte) at 8, `last-assigned-at`
/// (`option<u64>`: a tag byte at 16, the value at 24); padding zero. Built once per
/// candidate when the roster numbers the call's operators ([`CandidateRow::new`]), so the
/// rows are not walked a second time to be written into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CandidateRow([u64; 4]);

/// The size of a row as [`CandidateRow`]'s lowering writes it; `roster::self_check`
/// compares it with the derived record's.
pub(crate) const ROW_SIZE: usize = 32;

/// `router.candidate`'s shape, field by field: what a row is checked against in each
/// component (by the derived type check) and what its ABI is.
#[derive(ComponentType)]
#[component(record)]
#[allow(dead_code)]
pub(crate) struct Shape {
    agent: u32,
    load: u32,
    presence: router::Presence,
    #[component(name = "last-assigned-at")]
    last_assigned_at: Option<u64>,
}

impl CandidateRow {
    /// The row of operator `agent` (the instance's handle) with this live state.
    #[inline]
    pub(crate) fn new(
        agent: u32,
        load: u32,
        presence: Presence,
        last_assigned_at: Option<u64>,
    ) -> Self {
        let presence = match presence {
            Presence::Online => 0,
            Presence::Away => 1,
            Presence::Offline => 2,
        };
        let (tag, value) = match last_assigned_at {
            Some(at) => (1, at),
            None => (0, 0),
        };
        CandidateRow([
            u64::from(agent) | u64::from(load) << 32,
            presence,
            tag,
            value,
        ])
    }

    /// The row as the generated bindings take it (their fallback call).
    pub(crate) fn owned(&self) -> router::Candidate {
        let [first, presence, tag, value] = self.0;
        router::Candidate {
            agent: first as u32,
            load: (first >> 32) as u32,
            presence: match presence {
                0 => router::Presence::Online,
                1 => router::Presence::Away,
                _ => router::Presence::Offline,
            },
            last_assigned_at: (tag == 1).then_some(value),
        }
    }

    fn store_all<T>(
        cx: &mut LowerContext<'_, T>,
        offset: usize,
        rows: &[Self],
    ) -> wasmtime::Result<()> {
        let len = rows.len() * ROW_SIZE;
        let Some(target) = cx
            .as_slice_mut()
            .get_mut(offset..)
            .and_then(|m| m.get_mut(..len))
        else {
            wasmtime::bail!("the candidates' list lies outside the guest's memory");
        };
        Self::write_all(target, rows);
        Ok(())
    }

    /// Writes `rows` into `target`, `ROW_SIZE` bytes each (`target` holds them exactly).
    pub(crate) fn write_all(target: &mut [u8], rows: &[Self]) {
        for (row, bytes) in rows.iter().zip(target.chunks_exact_mut(ROW_SIZE)) {
            for (word, out) in row.0.iter().zip(bytes.chunks_exact_mut(8)) {
                out.copy_from_slice(&word.to_le_bytes());
            }
        }
    }
}

// SAFETY: the ABI and the type check are the derived record's (`Shape`), so wasmtime
// allocates and checks exactly what it would for it.
#[allow(unsafe_code)]
unsafe impl ComponentType for CandidateRow {
    type Lower = <Shape as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <Shape as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Shape as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: every row is written at exactly `ROW_SIZE` bytes (the derived record's size,
// which wasmtime allocated per list element, checked by `roster::self_check`) at the
// canonical ABI's offsets for `router.candidate`, with the values the derived lowering
// would write; the write is bounds-checked against the guest's memory.
lower_in_lists_only!(CandidateRow, "router.candidate");

#[cfg(test)]
mod tests {
    use super::CandidateRow;
    use crate::types::Presence;

    #[test]
    fn a_row_is_the_canonical_abis_bytes_and_reads_back() {
        let row = CandidateRow::new(7, 3, Presence::Away, Some(0x0102_0304_0506_0708));
        let mut bytes = [0xAAu8; 32];
        CandidateRow::write_all(&mut bytes, &[row]);
        let mut expected = [0u8; 32];
        expected[0] = 7;
        expected[4] = 3;
        expected[8] = 1;
        expected[16] = 1;
        expected[24..32].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(bytes, expected);
        let owned = row.owned();
        assert_eq!((owned.agent, owned.load), (7, 3));
        assert_eq!(owned.last_assigned_at, Some(0x0102_0304_0506_0708));
        let none = CandidateRow::new(u32::MAX, u32::MAX, Presence::Offline, None).owned();
        assert_eq!(
            (none.agent, none.load, none.last_assigned_at),
            (u32::MAX, u32::MAX, None)
        );
    }
}
