//! Short strings (operator ids, a conversation's channel and account) held inline and
//! compared without a loop: the roster's check of each candidate and the conversation's
//! names run on every routing call.

/// The longest string an [`InlineStr`] holds in itself.
pub(crate) const INLINE: usize = 16;

/// A string as a per-call check compares it: its length, and its bytes when at most
/// [`INLINE`] (zero-padded). A longer string is known by its length only.
#[derive(Clone, Copy)]
pub(crate) struct InlineStr {
    head: [u8; INLINE],
    /// The string's length; `u32::MAX` for [`InlineStr::NONE`].
    len: u32,
}

impl Default for InlineStr {
    /// [`InlineStr::NONE`].
    fn default() -> Self {
        InlineStr::NONE
    }
}

impl InlineStr {
    /// Holds no string: equal to none.
    pub(crate) const NONE: InlineStr = InlineStr {
        head: [0; INLINE],
        len: u32::MAX,
    };

    pub(crate) fn new(s: &str) -> Self {
        let mut head = [0; INLINE];
        if let Some(inline) = head.get_mut(..s.len()) {
            inline.copy_from_slice(s.as_bytes());
        }
        InlineStr {
            head,
            len: u32::try_from(s.len()).unwrap_or(u32::MAX - 1),
        }
    }

    /// Whether this is `s`, when that can be told from what is held: `None` for a string
    /// longer than [`INLINE`] of the same length.
    #[inline]
    pub(crate) fn is(&self, s: &str) -> Option<bool> {
        if self.len as usize != s.len() {
            return Some(false);
        }
        let head = self.head.get(..s.len())?;
        Some(same_id(s.as_bytes(), head))
    }
}

/// `a == b`, without a loop for the short ids operators have: the positional check runs
/// once per operator per call. The library `memcmp` call was 13% of a decision over 200
/// operators in the profile, and a byte loop over the id 14%; two overlapping word loads
/// from each end cover every length from 4 to 16 bytes.
#[inline]
pub(crate) fn same_id(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..=3 => a == b,
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

/// The 4 bytes of `s` at `at` (the caller keeps `at + 4 <= s.len()`).
#[inline]
fn word4(s: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(word)
}

/// The 8 bytes of `s` at `at` (the caller keeps `at + 8 <= s.len()`).
#[inline]
fn word8(s: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::{InlineStr, same_id};

    #[test]
    fn same_id_agrees_with_string_equality_at_every_length_and_position() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same_id(a.as_bytes(), a.clone().as_bytes()), "length {n}");
            assert!(
                !same_id(a.as_bytes(), format!("{a}x").as_bytes()),
                "length {n} against {}",
                n + 1
            );
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'#';
                assert!(!same_id(a.as_bytes(), &b), "length {n}, differing at {at}");
            }
        }
    }

    #[test]
    fn an_inline_str_is_its_string_and_none_is_nothing() {
        for s in ["", "a", "op-7", "TIM_Official", "sixteen-bytes-id"] {
            assert_eq!(InlineStr::new(s).is(s), Some(true), "{s:?}");
            assert_eq!(InlineStr::new(s).is("other"), Some(false), "{s:?}");
            assert_eq!(InlineStr::NONE.is(s), Some(false), "{s:?}");
        }
        let long = "seventeen-bytes-x";
        assert_eq!(InlineStr::new(long).is(long), None);
        assert_eq!(InlineStr::new(long).is("seventeen-bytes-y"), None);
        assert_eq!(InlineStr::new(long).is("short"), Some(false));
    }
}
