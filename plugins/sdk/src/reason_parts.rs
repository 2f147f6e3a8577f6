//! A decision's reason, written without `core::fmt`: [`reason!`](crate::reason) and the
//! pieces it takes ([`ReasonPart`]).

use std::ops::{Div, Rem};

/// A piece of a decision's reason for [`reason!`](crate::reason): text (`&str`, `String`,
/// `char`) or an integer, written in decimal.
///
/// A reason is written on every decision, and in wasm `format!` is expensive: its
/// machinery (`core::fmt::write`, the `Formatter`, the integers' padding) cost about
/// 1,500 instructions of a 13,500-instruction decision of `least-loaded` over 9 operators
/// (`BENCHMARKS.md` §1), more than the policy itself. `reason!` appends each piece in
/// turn instead.
pub trait ReasonPart {
    /// Appends this piece to `reason`.
    fn push_to(&self, reason: &mut String);
}

impl ReasonPart for str {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        reason.push_str(self);
    }
}

impl ReasonPart for String {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        reason.push_str(self);
    }
}

impl ReasonPart for char {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        reason.push(*self);
    }
}

impl<T: ReasonPart + ?Sized> ReasonPart for &T {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        (**self).push_to(reason);
    }
}

/// Appends `n` in decimal.
fn push_decimal(reason: &mut String, n: u64) {
    // A single digit (most loads and capacities in a reason) is one character: the
    // general loop below cost about 100 instructions per number in wasm.
    if let Ok(digit @ 0..=9) = u8::try_from(n) {
        reason.push(char::from(b'0' + digit));
        return;
    }
    // Most numbers in a reason (loads, capacities, counts) fit in 32 bits, whose division
    // by ten wasm does with a multiplication; a 64-bit one is a division instruction.
    let mut digits = [0u8; 20];
    let at = match u32::try_from(n) {
        Ok(small) => fill_digits(small, &mut digits),
        Err(_) => fill_digits(n, &mut digits),
    };
    for &digit in &digits[at..] {
        reason.push(char::from(digit));
    }
}

/// Writes `n`'s decimal digits at the end of `digits` (room for any `u64`); returns where
/// they start.
fn fill_digits<T>(mut n: T, digits: &mut [u8; 20]) -> usize
where
    T: Copy + PartialEq + From<u8> + Rem<Output = T> + Div<Output = T> + TryInto<u8>,
{
    let (zero, ten) = (T::from(0), T::from(10));
    let mut at = digits.len();
    while at > 0 {
        at -= 1;
        digits[at] = b'0' + (n % ten).try_into().unwrap_or(0);
        n = n / ten;
        if n == zero {
            break;
        }
    }
    at
}

macro_rules! unsigned_parts {
    ($($t:ty),*) => {$(
        impl ReasonPart for $t {
            #[inline]
            fn push_to(&self, reason: &mut String) {
                push_decimal(reason, u64::from(*self));
            }
        }
    )*};
}

unsigned_parts!(u8, u16, u32, u64);

impl ReasonPart for usize {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        push_decimal(reason, u64::try_from(*self).unwrap_or(u64::MAX));
    }
}

macro_rules! signed_parts {
    ($($t:ty),*) => {$(
        impl ReasonPart for $t {
            #[inline]
            fn push_to(&self, reason: &mut String) {
                if *self < 0 {
                    reason.push('-');
                }
                push_decimal(reason, i64::from(*self).unsigned_abs());
            }
        }
    )*};
}

signed_parts!(i8, i16, i32, i64);

impl ReasonPart for isize {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        if *self < 0 {
            reason.push('-');
        }
        push_decimal(reason, self.unsigned_abs() as u64);
    }
}

/// Builds a decision's reason from pieces, text or integers, without `format!`
/// (see [`ReasonPart`] for why):
///
/// ```
/// # use centralino_sdk::reason;
/// let (id, load, capacity) = ("op-3", 2u32, 4u32);
/// let text = reason!("least-loaded: ", id, " holds ", load, " of ", capacity);
/// assert_eq!(text, "least-loaded: op-3 holds 2 of 4");
/// ```
#[macro_export]
macro_rules! reason {
    ($($part:expr),+ $(,)?) => {{
        let mut reason = ::std::string::String::with_capacity(64);
        $( $crate::routing::ReasonPart::push_to(&$part, &mut reason); )+
        reason
    }};
}
