//! Integer prices: the text of a price (`2.5e-06`, `"0.0000025"`, a YAML number) becomes a
//! whole number of pico-dollars once, exactly, so a request is billed with integer arithmetic
//! and no binary rounding ever creeps in.

use serde_json::Value;

/// A price in pico-dollars (10⁻¹² USD) per unit: per token, per image or per second.
///
/// Pico-dollars hold every price LiteLLM's map lists exactly (its smallest, 1.3e-10 $/token,
/// is 130); the few with more digits are float noise upstream (`2.9999900000000002e-06`) and
/// round to what was meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pico(pub u64);

impl Pico {
    /// A price written as decimal text, rounded half up to a whole pico-dollar. `None` for
    /// anything that is not a finite, non-negative decimal number (a malformed price is
    /// skipped, never guessed).
    pub fn parse(text: &str) -> Option<Pico> {
        let scaled = parse_scaled(text, 12)?;
        u64::try_from(scaled).ok().map(Pico)
    }

    /// A price from config: a number, or a string holding one (`os.environ/` values arrive as
    /// strings). A number is read through its shortest decimal form (`2.5e-6`), so the price
    /// is the one written, not its nearest binary double.
    pub fn from_json(value: &Value) -> Option<Pico> {
        match value {
            Value::Number(n) => Pico::parse(&n.to_string()),
            Value::String(s) => Pico::parse(s),
            _ => None,
        }
    }
}

/// `text` × 10^`scale` as an integer, rounded half up (away from zero for negatives). Reads
/// `[+-]digits[.digits][e[+-]digits]`, surrounding blanks allowed; `None` when malformed or
/// out of `i128`'s range.
///
/// Works on the digits themselves: the value is `digits × 10^exp`, so scaling only moves the
/// decimal point, and rounding half up needs only the first digit dropped.
pub(crate) fn parse_scaled(text: &str, scale: u32) -> Option<i128> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], parse_exponent(&rest[at + 1..])?),
        None => (rest, 0),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // value = digits × 10^shift, digits being whole and fraction run together.
    let digits = || {
        whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| i128::from(b - b'0'))
    };
    let shift = exponent
        .saturating_sub(fraction.len() as i64)
        .saturating_add(i64::from(scale));
    let count = whole.len() + fraction.len();
    let magnitude = if shift >= 0 {
        let mut n: i128 = 0;
        for d in digits() {
            n = n.checked_mul(10)?.checked_add(d)?;
        }
        if n != 0 {
            for _ in 0..shift {
                n = n.checked_mul(10)?;
            }
        }
        n
    } else {
        // Keep the digits left of the new decimal point; the first one dropped rounds.
        let dropped = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        let kept = count.saturating_sub(dropped);
        let mut n: i128 = 0;
        for d in digits().take(kept) {
            n = n.checked_mul(10)?.checked_add(d)?;
        }
        let first_dropped = if dropped <= count {
            digits().nth(kept).unwrap_or(0)
        } else {
            0
        };
        if first_dropped >= 5 {
            n = n.checked_add(1)?;
        }
        n
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// The exponent after `e`: optional sign, at least one digit. Huge exponents saturate, which
/// then overflows (too large) or rounds to zero (too small) as it should.
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |n, b| {
        n.saturating_mul(10).saturating_add(i64::from(b - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// The prices one source (the shipped map, a deployment's `litellm_params` or `model_info`,
/// `general_settings.cost_per_token`) gives a model; `None` where it says nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prices {
    pub input_per_token: Option<Pico>,
    pub output_per_token: Option<Pico>,
    /// Prompt tokens read from the provider's cache.
    pub cache_read_per_token: Option<Pico>,
    /// Prompt tokens written to the provider's cache (Anthropic's cache creation).
    pub cache_creation_per_token: Option<Pico>,
    /// The reasoning share of the completion tokens, when priced apart.
    pub reasoning_per_token: Option<Pico>,
    /// Output tokens of image models that have no plain output price (`gpt-image-*`).
    pub output_per_image_token: Option<Pico>,
    pub output_per_image: Option<Pico>,
    /// Per image; for image-generation entries LiteLLM uses it as the price of an image made.
    pub input_per_image: Option<Pico>,
    pub input_per_second: Option<Pico>,
    pub output_per_second: Option<Pico>,
}

/// Where each price sits in a [`Prices`].
type Slot = fn(&mut Prices) -> &mut Option<Pico>;

/// LiteLLM's names for the prices, in the shipped map's column order (`gen_prices.py`'s
/// `PRICE_FIELDS`); the same names set a deployment's own prices in `litellm_params` or
/// `model_info`.
pub const PRICE_FIELDS: [(&str, Slot); 10] = [
    ("input_cost_per_token", |p| &mut p.input_per_token),
    ("output_cost_per_token", |p| &mut p.output_per_token),
    ("cache_read_input_token_cost", |p| {
        &mut p.cache_read_per_token
    }),
    ("cache_creation_input_token_cost", |p| {
        &mut p.cache_creation_per_token
    }),
    ("output_cost_per_reasoning_token", |p| {
        &mut p.reasoning_per_token
    }),
    ("output_cost_per_image_token", |p| {
        &mut p.output_per_image_token
    }),
    ("output_cost_per_image", |p| &mut p.output_per_image),
    ("input_cost_per_image", |p| &mut p.input_per_image),
    ("input_cost_per_second", |p| &mut p.input_per_second),
    ("output_cost_per_second", |p| &mut p.output_per_second),
];

impl Prices {
    /// Whether this source prices nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Prices::default()
    }

    /// Sets the price LiteLLM calls `name`; false for a name that is not a price.
    pub fn set(&mut self, name: &str, price: Pico) -> bool {
        match PRICE_FIELDS.iter().find(|(n, _)| *n == name) {
            Some((_, slot)) => {
                *slot(self) = Some(price);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_in_every_spelling() {
        for (text, pico) in [
            ("2.5e-06", 2_500_000),
            ("2.5E-6", 2_500_000),
            ("0.0000025", 2_500_000),
            ("+0.0000025", 2_500_000),
            (" 1.3e-10 ", 130),
            ("0.06", 60_000_000_000),
            ("3", 3_000_000_000_000),
            ("3.", 3_000_000_000_000),
            (".5e-11", 5),
            ("0", 0),
            ("0e999999999999999999999", 0),
            ("1e-9999999999999999999", 0),
        ] {
            assert_eq!(Pico::parse(text), Some(Pico(pico)), "{text}");
        }
    }

    #[test]
    fn sub_pico_digits_round_half_up() {
        assert_eq!(Pico::parse("2.9999900000000002e-06"), Some(Pico(2_999_990)));
        assert_eq!(Pico::parse("1.5e-12"), Some(Pico(2)));
        assert_eq!(Pico::parse("1.49999e-12"), Some(Pico(1)));
        assert_eq!(Pico::parse("4.9e-13"), Some(Pico(0)));
        assert_eq!(Pico::parse("5e-13"), Some(Pico(1)));
        assert_eq!(parse_scaled("-1.5", 0), Some(-2), "half away from zero");
        assert_eq!(parse_scaled("-1.4", 0), Some(-1));
    }

    #[test]
    fn malformed_or_negative_prices_are_refused() {
        for text in [
            "",
            " ",
            "-",
            "+",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1_000",
            "0x10",
            "nan",
            "inf",
            "1,5",
            "--1",
            "1e5e5",
            "-0.000001",
            "١",
        ] {
            assert_eq!(Pico::parse(text), None, "{text:?}");
        }
        assert_eq!(Pico::parse("1e400"), None, "out of range");
        assert_eq!(Pico::parse(&"9".repeat(60)), None, "out of range");
    }

    #[test]
    fn config_values_read_as_written() {
        assert_eq!(
            Pico::from_json(&serde_json::json!(0.000002)),
            Some(Pico(2_000_000))
        );
        assert_eq!(
            Pico::from_json(&serde_json::json!("3e-7")),
            Some(Pico(300_000))
        );
        assert_eq!(
            Pico::from_json(&serde_json::json!(1)),
            Some(Pico(1_000_000_000_000))
        );
        assert_eq!(Pico::from_json(&serde_json::json!(true)), None);
        assert_eq!(Pico::from_json(&serde_json::json!(null)), None);
        assert_eq!(Pico::from_json(&serde_json::json!(-1)), None);
    }
}
