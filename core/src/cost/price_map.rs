//! The price map shipped in the binary: LiteLLM's `model_prices_and_context_window.json` cut
//! by `gen_prices.py` to the prices Tollgate bills with (`prices.tsv`, one line per model).
//!
//! It is parsed once per instance, on first use, so an instance that never prices anything
//! never pays for it. Keys borrow from the embedded text: parsing allocates only the table.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::prices::{Pico, Prices, PRICE_FIELDS};

/// The cut map, as committed (regenerate with `gen_prices.py`, see docs/cost.md).
const SHIPPED: &str = include_str!("prices.tsv");

/// The first line: the columns, in order. A file written for another layout is refused.
const HEADER: &str = "# key\tprovider\tmode\tmax_output_tokens\tinput_cost_per_token\toutput_cost_per_token\tcache_read_input_token_cost\tcache_creation_input_token_cost\toutput_cost_per_reasoning_token\toutput_cost_per_image_token\toutput_cost_per_image\tinput_cost_per_image\tinput_cost_per_second\toutput_cost_per_second";

/// What the map says of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry<'a> {
    /// LiteLLM's `litellm_provider` (`openai`, `bedrock_converse`, ...); may be empty.
    pub provider: &'a str,
    /// LiteLLM's `mode` (`chat`, `embedding`, `image_generation`, ...); may be empty.
    pub mode: &'a str,
    pub max_output_tokens: Option<u64>,
    pub prices: Prices,
}

/// Model name → its entry.
#[derive(Debug, Default)]
pub struct PriceMap<'a> {
    entries: HashMap<&'a str, MapEntry<'a>>,
    /// Lines left out because a value did not parse.
    pub skipped: usize,
}

impl PriceMap<'static> {
    /// The shipped map, parsed on first use.
    pub fn shipped() -> &'static PriceMap<'static> {
        static MAP: OnceLock<PriceMap<'static>> = OnceLock::new();
        MAP.get_or_init(|| {
            let map = PriceMap::parse(SHIPPED);
            if map.entries.is_empty() {
                tracing::error!(
                    "the shipped price map is empty or of another layout; every model is unpriced"
                );
            } else if map.skipped > 0 {
                tracing::warn!(
                    skipped = map.skipped,
                    "price map lines left out (malformed)"
                );
            }
            map
        })
    }
}

impl<'a> PriceMap<'a> {
    /// Reads the map's text. A malformed line is left out (and counted); a file without the
    /// expected header yields an empty map: never a panic, whatever the text.
    pub fn parse(text: &'a str) -> PriceMap<'a> {
        let mut lines = text.lines();
        if lines.next().map(str::trim_end) != Some(HEADER) {
            return PriceMap::default();
        }
        // Sized once: growing a table of thousands of entries would rehash it a dozen times.
        let mut map = PriceMap {
            entries: HashMap::with_capacity(text.bytes().filter(|b| *b == b'\n').count()),
            skipped: 0,
        };
        for line in lines {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                // Upstream keys are unique; should one repeat, the first stays.
                Some((key, entry)) => {
                    map.entries.entry(key).or_insert(entry);
                }
                None => map.skipped += 1,
            }
        }
        map
    }

    /// The entry under exactly `key`, with the key as the map holds it.
    pub fn get(&self, key: &str) -> Option<(&'a str, &MapEntry<'a>)> {
        self.entries.get_key_value(key).map(|(k, e)| (*k, e))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One line: `key provider mode max_output_tokens price...` separated by tabs, trailing
/// empty columns left out. `None` if any value is malformed or there are too many columns.
fn parse_line(line: &str) -> Option<(&str, MapEntry<'_>)> {
    let mut columns = line.trim_end_matches('\r').split('\t');
    let key = columns.next().filter(|k| !k.is_empty())?;
    let provider = columns.next().unwrap_or("");
    let mode = columns.next().unwrap_or("");
    let max_output_tokens = match columns.next().unwrap_or("") {
        "" => None,
        n => Some(n.parse::<u64>().ok()?),
    };
    let mut prices = Prices::default();
    for (i, text) in columns.enumerate() {
        let (_, slot) = PRICE_FIELDS.get(i)?;
        if !text.is_empty() {
            *slot(&mut prices) = Some(Pico::parse(text)?);
        }
    }
    Some((
        key,
        MapEntry {
            provider,
            mode,
            max_output_tokens,
            prices,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns before the prices: key, provider, mode, max_output_tokens.
    const LEADING: usize = 4;

    #[test]
    fn the_header_names_the_price_fields_in_order() {
        let names: Vec<&str> = HEADER.split('\t').skip(LEADING).collect();
        let fields: Vec<&str> = PRICE_FIELDS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, fields);
    }

    #[test]
    fn the_shipped_map_parses_whole() {
        let map = PriceMap::shipped();
        assert_eq!(map.skipped, 0);
        assert!(map.len() > 1000, "{} models", map.len());
        let (key, gpt) = map.get("gpt-4o").unwrap();
        assert_eq!((key, gpt.provider, gpt.mode), ("gpt-4o", "openai", "chat"));
        assert_eq!(gpt.max_output_tokens, Some(16_384));
        assert_eq!(gpt.prices.input_per_token, Some(Pico(2_500_000)));
    }

    #[test]
    fn malformed_lines_are_left_out_and_the_rest_kept() {
        let text = format!(
            "{HEADER}\n# a comment\n\
             good\topenai\tchat\t100\t1e-6\t2e-6\n\
             bad-price\topenai\tchat\t\tabc\n\
             negative\topenai\tchat\t\t-1e-6\n\
             bad-cap\topenai\tchat\tlots\t1e-6\n\
             too-many\topenai\tchat\t\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\n\
             \topenai\tchat\t\t1e-6\n\
             only-key\n\
             \n"
        );
        let map = PriceMap::parse(&text);
        assert_eq!(map.skipped, 5);
        assert_eq!(map.len(), 2);
        let (_, good) = map.get("good").unwrap();
        assert_eq!(good.max_output_tokens, Some(100));
        assert_eq!(good.prices.output_per_token, Some(Pico(2_000_000)));
        assert!(map.get("only-key").unwrap().1.prices.is_empty());
    }

    #[test]
    fn another_layout_is_refused_whole() {
        assert!(PriceMap::parse("# key\tprice\ngpt\t1\n").is_empty());
        assert!(PriceMap::parse("").is_empty());
        assert!(PriceMap::parse("\u{0}\u{ffff}\t\t\n\n").is_empty());
    }
}
